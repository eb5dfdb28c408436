"""The node's PBFT record log on disk, fsynced before any dependent message leaves.

Same file and framing as the simulator's data directories
(``replica-<id>/pbft-records.bin``, see :mod:`sim.world.disk`), so a directory left by
``ledgersim run --data-dir`` and one left by a live node read the same way.
A ``kill -9`` can leave a torn last record; opening the log drops it (and
truncates the file there, so later appends are not hidden behind garbage).
A compaction writes a fresh file and renames it over the old one, so a crash
leaves either the old log or the new one, never a mix.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

from sim.world.disk import RECORDS_FILE

_LENGTH = struct.Struct(">I")


def _frame(records: Sequence[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(r)) + r for r in records)


def _scan(data: bytes) -> tuple[list[bytes], int]:
    """Complete records and the length of the prefix they occupy."""
    records: list[bytes] = []
    pos = 0
    while pos + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, pos)
        end = pos + _LENGTH.size + length
        if end > len(data):
            break
        records.append(data[pos + _LENGTH.size : end])
        pos = end
    return records, pos


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RecordLog:
    """Append-only, fsynced log of PBFT records in ``node_dir``."""

    def __init__(self, node_dir: Path) -> None:
        self.dir = node_dir
        self.path = node_dir / RECORDS_FILE
        node_dir.mkdir(parents=True, exist_ok=True)
        data = self.path.read_bytes() if self.path.exists() else b""
        self.recovered, good = _scan(data)
        self.torn_bytes = len(data) - good
        self._file = open(self.path, "r+b" if self.path.exists() else "w+b")  # noqa: SIM115
        if self.torn_bytes:
            self._file.truncate(good)
        self._file.seek(good)
        self.syncs = 0

    def append(self, records: Sequence[bytes], compact: bool = False) -> None:
        """Durably add ``records`` (with ``compact``: replace the whole log by them)."""
        if compact:
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as out:
                out.write(_frame(records))
                out.flush()
                os.fsync(out.fileno())
            self._file.close()
            os.replace(tmp, self.path)
            _fsync_dir(self.dir)
            self._file = open(self.path, "r+b")  # noqa: SIM115
            self._file.seek(0, os.SEEK_END)
        elif records:
            self._file.write(_frame(records))
            self._file.flush()
            os.fsync(self._file.fileno())
        else:
            return
        self.syncs += 1

    def close(self) -> None:
        self._file.close()
