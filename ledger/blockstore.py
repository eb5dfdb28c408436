"""The block store: an append-only file of framed blocks plus an offset index.

Layout of the data file (``blocks.dat``): one frame per block, in block order::

    b"LB" | length (u32 BE) | CRC-32 of the block bytes (u32 BE) | encode(Block)

Layout of the index file (``blocks.idx``): one 16-byte entry per block::

    offset (u64 BE) | length (u32 BE) | CRC-32 of those 12 bytes (u32 BE)

Crash safety. A node may die anywhere inside :meth:`BlockStore.append`. The
frame is written (and, by default, fsynced) *before* its index entry, so an
index entry vouches for a complete frame. On reopen the store keeps every
block whose frame is intact and drops the tail from the first frame that is
not: that frame was being written when the node died. One exception turns a
bad frame from "torn" into "corrupt": when the index vouches for it (the
entry exists and the data file is long enough). A torn write never looks like
that; a flipped byte or a tampered file does, and the store refuses to open
(:class:`BlockStoreCorrupt`, naming the block) rather than silently shortening
the chain.

fsync policy: ``sync=True`` (the default) fsyncs the data file after each
frame and the index after each entry, so a committed block survives power
loss. ``sync=False`` leaves flushing to the OS: a process crash loses nothing,
a power cut may lose the last blocks (never more than a tail, which the
recovery above drops), which is what simulations and benchmarks want.
:meth:`BlockStore.defer_syncs` is the live node's middle way: appends only
write the frame, and the owner calls :meth:`BlockStore.sync_pending` once
before anything that depends on the new blocks leaves the process, which
fsyncs the data file once for however many blocks were appended (grouped with
the node's other fsync) and only then writes their index entries. The index
is not fsynced in that mode: it is derived, and reopening rebuilds a stale
one from the intact frames.

The store reads and writes through :class:`StoreFile` objects, so the host
decides where bytes live: :class:`DiskFile` for node directories,
:class:`MemoryFile` for simulations (which keep them across simulated crashes).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ledger.block import Block
from ledger.codec import CodecError, decode, encode

DATA_FILE = "blocks.dat"
INDEX_FILE = "blocks.idx"
MAGIC = b"LB"
_FRAME = struct.Struct(">2sII")
_ENTRY = struct.Struct(">QI")
_ENTRY_SIZE = _ENTRY.size + 4
MAX_BLOCK_BYTES = 64 * 1024 * 1024


class BlockStoreCorrupt(Exception):
    """A block the index vouches for is unreadable: tampering or media failure, not a crash."""

    def __init__(self, number: int, reason: str) -> None:
        super().__init__(f"block {number}: {reason}")
        self.number = number
        self.reason = reason


class StoreFile(Protocol):
    """The few operations the store needs from a file."""

    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes: ...

    def append(self, data: bytes) -> None: ...

    def truncate(self, size: int) -> None: ...

    def sync(self) -> None: ...

    def close(self) -> None: ...


class MemoryFile:
    """A file kept in memory; ``content`` is public so tests can tear or corrupt it."""

    def __init__(self, content: bytes = b"") -> None:
        self.content = bytearray(content)

    def size(self) -> int:
        return len(self.content)

    def read_at(self, offset: int, length: int) -> bytes:
        return bytes(self.content[offset : offset + length])

    def append(self, data: bytes) -> None:
        self.content += data

    def truncate(self, size: int) -> None:
        del self.content[size:]

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


class DiskFile:
    """A real file opened for reading and appending (or read-only)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._handle: BinaryIO
        if readonly:
            self._handle = open(path, "rb")  # noqa: SIM115 - lives as long as the store
        else:
            if not path.exists():
                path.touch()
            self._handle = open(path, "r+b")  # noqa: SIM115
        self._readonly = readonly

    def size(self) -> int:
        return os.fstat(self._handle.fileno()).st_size

    def read_at(self, offset: int, length: int) -> bytes:
        self._handle.seek(offset)
        return self._handle.read(length)

    def append(self, data: bytes) -> None:
        self._handle.seek(0, os.SEEK_END)
        self._handle.write(data)
        self._handle.flush()

    def truncate(self, size: int) -> None:
        self._handle.truncate(size)
        self._handle.flush()

    def sync(self) -> None:
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


@dataclass(frozen=True, slots=True)
class Recovery:
    """What reopening found: bytes dropped from a torn tail, and why."""

    dropped_bytes: int = 0
    reason: str = ""


def _frame(payload: bytes) -> bytes:
    return _FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _entry(offset: int, length: int) -> bytes:
    body = _ENTRY.pack(offset, length)
    return body + struct.pack(">I", zlib.crc32(body))


def _read_index(raw: bytes) -> list[tuple[int, int]]:
    """Index entries up to the first torn or garbled one, each continuing the previous."""
    entries: list[tuple[int, int]] = []
    expected_offset = 0
    for pos in range(0, len(raw) - _ENTRY_SIZE + 1, _ENTRY_SIZE):
        body = raw[pos : pos + _ENTRY.size]
        (crc,) = struct.unpack_from(">I", raw, pos + _ENTRY.size)
        if zlib.crc32(body) != crc:
            break
        offset, length = _ENTRY.unpack(body)
        if offset != expected_offset:
            break
        entries.append((offset, length))
        expected_offset = offset + length
    return entries


class BlockStore:
    """Blocks ``0 .. height-1``, appended in order, readable by number."""

    def __init__(
        self,
        data: StoreFile,
        index: StoreFile,
        *,
        sync: bool = True,
        readonly: bool = False,
    ) -> None:
        self._data = data
        self._index = index
        self._sync = sync
        self._readonly = readonly
        self._frames: list[tuple[int, int]] = []
        self._last: Block | None = None
        self._deferred = False
        self._unsynced: list[bytes] = []
        """Index entries of frames appended since the last :meth:`sync_pending`."""
        self.recovery = self._recover()

    # ------------------------------------------------------------- constructors

    @classmethod
    def open(cls, directory: Path, *, sync: bool = True, readonly: bool = False) -> BlockStore:
        """The store in ``directory`` (created when missing, unless ``readonly``)."""
        directory = Path(directory)
        if not readonly:
            directory.mkdir(parents=True, exist_ok=True)
        data = DiskFile(directory / DATA_FILE, readonly=readonly)
        index_path = directory / INDEX_FILE
        index: StoreFile
        if readonly and not index_path.exists():
            index = MemoryFile()
        else:
            index = DiskFile(index_path, readonly=readonly)
        return cls(data, index, sync=sync, readonly=readonly)

    @classmethod
    def memory(cls) -> BlockStore:
        """A store in memory, for simulations and tests."""
        return cls(MemoryFile(), MemoryFile(), sync=False)

    # ------------------------------------------------------------------ reading

    @property
    def height(self) -> int:
        """Number of blocks stored (the next block's number)."""
        return len(self._frames)

    @property
    def last(self) -> Block | None:
        return self._last

    def get(self, number: int) -> Block:
        if not 0 <= number < len(self._frames):
            raise IndexError(f"no block {number} (height {self.height})")
        if number == len(self._frames) - 1 and self._last is not None:
            return self._last
        offset, length = self._frames[number]
        payload = self._data.read_at(offset + _FRAME.size, length - _FRAME.size)
        return decode(payload, Block, max_size=MAX_BLOCK_BYTES)

    def raw(self, number: int) -> bytes:
        """The stored canonical bytes of block ``number``."""
        if not 0 <= number < len(self._frames):
            raise IndexError(f"no block {number} (height {self.height})")
        offset, length = self._frames[number]
        return self._data.read_at(offset + _FRAME.size, length - _FRAME.size)

    def blocks(self, start: int = 0) -> Iterator[Block]:
        for number in range(start, self.height):
            yield self.get(number)

    # ------------------------------------------------------------------ writing

    def append(self, block: Block) -> None:
        """Durably add the next block (frame first, then its index entry)."""
        if self._readonly:
            raise PermissionError("block store opened read-only")
        if block.number != self.height:
            raise ValueError(f"expected block {self.height}, got {block.number}")
        if self._last is not None and block.header.previous_hash != self._last.hash:
            raise ValueError(f"block {block.number} does not chain to block {self._last.number}")
        payload = encode(block)
        frame = _frame(payload)
        offset = self._frames[-1][0] + self._frames[-1][1] if self._frames else 0
        self._data.append(frame)
        self._frames.append((offset, len(frame)))
        self._last = block
        if self._deferred:
            self._unsynced.append(_entry(offset, len(frame)))
            return
        if self._sync:
            self._data.sync()
        self._index.append(_entry(offset, len(frame)))
        if self._sync:
            self._index.sync()

    def defer_syncs(self) -> None:
        """From now on, blocks are durable only after :meth:`sync_pending` (see the module)."""
        self._deferred = True

    @property
    def pending(self) -> int:
        """Blocks appended but not yet made durable by :meth:`sync_pending`."""
        return len(self._unsynced)

    def sync_pending(self) -> None:
        """Make every block appended so far durable: one fsync, then their index entries."""
        if not self._unsynced:
            return
        if self._sync:
            self._data.sync()
        self._index.append(b"".join(self._unsynced))
        self._unsynced.clear()

    def close(self) -> None:
        if not self._readonly:
            self.sync_pending()
        self._data.close()
        self._index.close()

    # ----------------------------------------------------------------- recovery

    def _recover(self) -> Recovery:
        """Rebuild the frame list from the files; drop a torn tail; refuse corruption."""
        size = self._data.size()
        raw = self._data.read_at(0, size)
        vouched = _read_index(self._index.read_at(0, self._index.size()))
        pos = 0
        reason = ""
        while pos < size:
            number = len(self._frames)
            parsed = self._parse_frame(raw, pos, number)
            if isinstance(parsed, str):
                if number < len(vouched):
                    vouched_offset, vouched_length = vouched[number]
                    if vouched_offset == pos and pos + vouched_length <= size:
                        raise BlockStoreCorrupt(number, parsed)
                reason = f"torn tail at block {number}: {parsed}"
                break
            block, length = parsed
            self._frames.append((pos, length))
            self._last = block
            pos += length
        dropped = size - pos
        if not self._readonly:
            if dropped:
                self._data.truncate(pos)
            index_stale = vouched != self._frames
            if index_stale:
                self._index.truncate(0)
                self._index.append(b"".join(_entry(o, n) for o, n in self._frames))
            if self._sync and (dropped or index_stale):
                self._data.sync()
                self._index.sync()
        return Recovery(dropped, reason)

    @staticmethod
    def _parse_frame(raw: bytes, pos: int, number: int) -> tuple[Block, int] | str:
        if pos + _FRAME.size > len(raw):
            return "incomplete frame header"
        magic, length, crc = _FRAME.unpack_from(raw, pos)
        if magic != MAGIC:
            return "bad frame magic"
        if length > MAX_BLOCK_BYTES:
            return "frame length out of range"
        end = pos + _FRAME.size + length
        if end > len(raw):
            return "incomplete frame"
        payload = raw[pos + _FRAME.size : end]
        if zlib.crc32(payload) != crc:
            return "checksum mismatch"
        try:
            block = decode(payload, Block, max_size=MAX_BLOCK_BYTES)
        except CodecError as exc:
            return f"undecodable block ({exc.reason})"
        if block.number != number:
            return f"frame holds block {block.number}"
        return block, _FRAME.size + length
