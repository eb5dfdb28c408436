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
from pbft.messages import CommittedBatch


class MemoryApplication:
    """Executes batches by hashing operations; result of a request = SHA-256(operation)."""

    def __init__(self) -> None:
        self._batches: list[CommittedBatch] = []
        self._head = GENESIS_HASH

    @property
    def last_executed(self) -> int:
        return len(self._batches)

    @property
    def head_digest(self) -> bytes:
        return self._head

    def execute(self, batch: CommittedBatch) -> Sequence[bytes]:
        if batch.seq != len(self._batches) + 1:
            # Executing out of order is the replica's bug, never a peer's: raise.
            raise ValueError(f"execute({batch.seq}) after {len(self._batches)}")
        self._batches.append(batch)
        self._head = header_hash(batch.seq, self._head, batch.digest)
        return _results(batch)

    def batch_at(self, seq: int) -> CommittedBatch | None:
        if 1 <= seq <= len(self._batches):
            return self._batches[seq - 1]
        return None

    def results_at(self, seq: int) -> Sequence[bytes] | None:
        """What ``execute`` returned for ``seq``, so a restarted replica can rebuild replies."""
        batch = self.batch_at(seq)
        if batch is None:
            return None
        return _results(batch)

    @property
    def batches(self) -> tuple[CommittedBatch, ...]:
        """Everything executed so far (for tests and invariant checks)."""
        return tuple(self._batches)


def _results(batch: CommittedBatch) -> list[bytes]:
    return [hashlib.sha256(r.operation).digest() for r in batch.requests]
