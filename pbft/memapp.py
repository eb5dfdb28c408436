"""An in-memory :class:`pbft.api.Application` for PBFT-only runs and unit tests.

It keeps exactly what the ledger would keep for the protocol's sake (every
executed batch, the chained head digest of ``ledger.hashing``) and nothing
else, so checkpoint digests computed here equal the block header hashes a real
ledger would produce for the same batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger.hashing import GENESIS_HASH, header_hash
from pbft.messages import CommittedBatch, Request


class MemoryApplication:
    """Executes batches by hashing operations; result of a request = SHA-256(operation).

    A stale request (see ``pbft.api.Application``) stays in the batch but is
    not executed: its result is empty and it is absent from :attr:`requests`.
    """

    def __init__(self) -> None:
        self._batches: list[CommittedBatch] = []
        self._fresh: list[tuple[bool, ...]] = []
        self._head = GENESIS_HASH

    @property
    def last_executed(self) -> int:
        return len(self._batches)

    @property
    def head_digest(self) -> bytes:
        return self._head

    def execute(
        self, batch: CommittedBatch, fresh: Sequence[bool] | None = None
    ) -> Sequence[bytes]:
        if batch.seq != len(self._batches) + 1:
            # Executing out of order is the replica's bug, never a peer's: raise.
            raise ValueError(f"execute({batch.seq}) after {len(self._batches)}")
        mask = (True,) * len(batch.requests) if fresh is None else tuple(fresh)
        if len(mask) != len(batch.requests):
            raise ValueError(f"fresh has {len(mask)} entries for {len(batch.requests)} requests")
        self._batches.append(batch)
        self._fresh.append(mask)
        self._head = header_hash(batch.seq, self._head, batch.digest)
        return _results(batch, mask)

    def batch_at(self, seq: int) -> CommittedBatch | None:
        if 1 <= seq <= len(self._batches):
            return self._batches[seq - 1]
        return None

    def results_at(self, seq: int) -> Sequence[bytes] | None:
        """What ``execute`` returned for ``seq``, so a restarted replica can rebuild replies."""
        batch = self.batch_at(seq)
        if batch is None:
            return None
        return _results(batch, self._fresh[seq - 1])

    @property
    def batches(self) -> tuple[CommittedBatch, ...]:
        """Everything executed so far (for tests and invariant checks)."""
        return tuple(self._batches)

    @property
    def requests(self) -> tuple[tuple[int, Request], ...]:
        """(seq, request) for every request actually executed, in order."""
        return tuple(
            (batch.seq, req)
            for batch, mask in zip(self._batches, self._fresh, strict=True)
            for req, new in zip(batch.requests, mask, strict=True)
            if new
        )


RESULTS_KEPT = 256
"""Batches whose results are kept for the other replicas executing them (see ``_results``)."""

_recent: dict[int, tuple[tuple[Request, ...], tuple[bool, ...], tuple[bytes, ...]]] = {}
"""id(requests) -> (requests, fresh mask, results); the entry keeps the tuple, so its id is
not reused while the entry lives."""


def _results(batch: CommittedBatch, fresh: Sequence[bool]) -> list[bytes]:
    """One result per request: SHA-256 of its operation, or empty for a stale one.

    Every replica of a simulated group executes the very same requests tuple
    (the decoder shares it), so the hashes are computed once per batch, not
    once per replica; a fresh list is handed out each time.
    """
    requests = batch.requests
    mask = tuple(fresh)
    known = _recent.get(id(requests))
    if known is not None and known[0] is requests and known[1] == mask:
        return list(known[2])
    results = [
        hashlib.sha256(r.operation).digest() if new else b""
        for r, new in zip(requests, mask, strict=True)
    ]
    if type(requests) is tuple:  # only an immutable sequence can be memoised
        if len(_recent) >= RESULTS_KEPT:
            _recent.clear()
        _recent[id(requests)] = (requests, mask, tuple(results))
    return results
