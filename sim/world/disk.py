"""A replica's durable storage as the simulator models it.

PBFT asks its host to append ``Output.persist`` records durably before any of
that step's messages leave (``pbft.api``). In the simulator a write is
instantaneous and never torn, so "durable" just means "survives the crash of
the :class:`~pbft.replica.Replica` object": the records live here, outside the
replica, and :meth:`Replica.restore` is fed them after a restart.

With a data directory the records are also written to
``DIR/replica-<id>/pbft-records.bin`` (each record prefixed by its length as a
4-byte big-endian integer) so a run can be inspected afterwards, and the
application (the ledger's block store) gets the same directory through
:attr:`NodeDisk.path`. Applications that have no files keep what must survive
a crash in :attr:`NodeDisk.state`.

A new run starts the record file afresh, unless it resumes (``resume=True``):
then the records an earlier run left there are loaded, so the replica can be
rebuilt from them exactly as after a crash, and new records are appended.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORDS_FILE = "pbft-records.bin"
_LENGTH = struct.Struct(">I")


class NodeDisk:
    """One replica's disk: PBFT's record log plus room for the application."""

    def __init__(
        self, replica_id: int, data_dir: Path | None = None, *, resume: bool = False
    ) -> None:
        if resume and data_dir is None:
            raise ValueError("resume needs a data directory to resume from")
        self.replica_id = replica_id
        self.path: Path | None = None
        self.records: list[bytes] = []
        if data_dir is not None:
            self.path = Path(data_dir) / f"replica-{replica_id}"
            self.path.mkdir(parents=True, exist_ok=True)
            file = self.path / RECORDS_FILE
            if resume and file.is_file():
                self.records = list(read_records(file))
                whole = _frames(self.records)
                if len(whole) != file.stat().st_size:  # cut a torn tail before appending
                    file.write_bytes(whole)
            else:
                file.write_bytes(b"")
        self.state: dict[str, Any] = {}
        """Simulated persistence for applications without files (survives crashes)."""
        self.bytes_written = 0

    def append(self, records: list[bytes], compact: bool = False) -> None:
        """Durably add ``records``; with ``compact`` they replace everything before."""
        if not records and not compact:
            return
        if compact:
            self.records = list(records)
        else:
            self.records.extend(records)
        self.bytes_written += sum(map(len, records))
        if self.path is not None:
            mode = "wb" if compact else "ab"
            with open(self.path / RECORDS_FILE, mode) as out:
                out.write(_frames(records))


def _frames(records: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(r)) + r for r in records)


def read_records(path: Path) -> Iterator[bytes]:
    """The records of a ``pbft-records.bin`` file; a torn tail is ignored."""
    data = path.read_bytes()
    pos = 0
    while pos + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, pos)
        pos += _LENGTH.size
        if pos + length > len(data):
            return
        yield data[pos : pos + length]
        pos += length
