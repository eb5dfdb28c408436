"""Removing patch files no release refers to, after a grace period (issue 15, item 8).

A file is placed on the peers *before* its upload transaction is ordered (a
device could not fetch a release whose file is nowhere), so a peer holds
files the ledger does not know yet. Most become a pending or released version;
some never do (the upload was refused or never submitted) and others stop
mattering (the version was withdrawn). Without a sweep each of those would
stay on every peer for ever, and anyone allowed to place files could fill
the peers' disks with them.

So each peer keeps, beside its store, when it placed each file
(``placed.json``), and a sweep removes every file that is older than the
grace period and is not the file of a pending or released version in *that
peer's own* world state. The grace period covers the time between placing a
file and committing its upload; a file seen by a sweep with no placement time
(stored before this existed) gets the grace period from that sweep on.
Time is the caller's: the virtual clock on a simulated network, the wall
clock on a live node.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

from chaincode.keyspace import MAX_UNICODE, create_composite_key
from chaincode.patchset.state import PATCH, PENDING, RELEASED
from sim.errors import InputError
from sim.fabric.blobs import DirectoryBlobStore

GRACE_MS = 600_000
"""Default grace period: ten minutes from placing a file to committing its upload."""
PLACED_FILE = "placed.json"
NAMESPACE = "patchset"


def check_grace(value: Any, where: str) -> int:
    """A configured grace period, or one line saying why it cannot be one."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"{where}: file_grace_ms must be a whole number of ms >= 0, got {value!r}")
    return value


def kept_files(ledger: Any) -> set[str]:
    """SHA-256 of every pending or released version's file in ``ledger``'s world state.

    ``ledger`` is a :class:`ledger.peer.PeerLedger` (anything with ``get_range``).
    """
    prefix = create_composite_key(PATCH, [])
    kept = set()
    for _key, raw in ledger.get_range(NAMESPACE, prefix, prefix + MAX_UNICODE):
        try:
            record = json.loads(raw)
            if record["status"] in (PENDING, RELEASED):
                kept.add(str(record["manifest"]["file"]["sha256"]))
        except (ValueError, KeyError, TypeError):
            continue  # not a record this sweep understands: it keeps nothing
    return kept


class FileSweeper:
    """One peer's store and its placement times."""

    def __init__(self, store: DirectoryBlobStore, grace_ms: int = GRACE_MS) -> None:
        if grace_ms < 0:
            raise ValueError(f"grace period must be >= 0 ms, got {grace_ms}")
        self.store = store
        self.grace_ms = grace_ms
        self._path = store.root / PLACED_FILE

    def _read(self) -> dict[str, int]:
        try:
            raw = json.loads(self._path.read_text())
        except (OSError, ValueError, RecursionError):  # garbled: every file restarts its grace
            return {}
        if not isinstance(raw, dict):
            return {}
        return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, int)}

    def _write(self, placed: dict[str, int]) -> None:
        self.store.root.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(placed, sort_keys=True))
        os.replace(tmp, self._path)

    def placed(self, digest: str, now_ms: int) -> None:
        """Note that ``digest`` was (re)placed at ``now_ms``: its grace period starts again."""
        times = self._read()
        times[digest] = now_ms
        self._write(times)

    def sweep(self, keep: set[str], now_ms: int) -> list[tuple[str, int]]:
        """Remove the unkept files past their grace period; each one removed, with its size."""
        times = self._read()
        before = dict(times)
        removed: list[tuple[str, int]] = []
        present = self.store.digests()
        for digest in present:
            if digest in keep:
                continue
            since = times.setdefault(digest, now_ms)
            if since > now_ms:
                # Placed "later than now": the clock stepped back, or placed.json was
                # tampered with. Counting from now keeps the full grace period without
                # letting a far-future time keep the file for ever.
                times[digest] = since = now_ms
            if now_ms - since < self.grace_ms:
                continue
            size = self.store.size(digest) or 0
            with contextlib.suppress(OSError):
                self.store.remove(digest)
                removed.append((digest, size))
                del times[digest]
        for gone in set(times) - set(present):
            del times[gone]  # removed by hand, or never stored (a refused put)
        if times != before:
            self._write(times)
        return removed


def sweep_peer(sweeper: FileSweeper, open_ledger: Callable[[], Any], now_ms: int) -> list[str]:
    """Sweep one peer's store against its own ledger (opened only if there is anything to judge,
    and closed after); the digests removed."""
    if not sweeper.store.digests():
        return []
    ledger = open_ledger()
    try:
        keep = kept_files(ledger)
    finally:
        ledger.close()
    return [digest for digest, _size in sweeper.sweep(keep, now_ms)]
