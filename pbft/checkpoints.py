"""Checkpoints, the watermark window and garbage collection (OSDI'99 4.3).

Every K executed batches a replica signs a CHECKPOINT of its chained head
digest; Q matching ones (the quorum: 2f+1 for n = 3f+1) make it stable, which
moves the low watermark h, discards the log, votes and stash below it, compacts
what was persisted into one snapshot, and starts state transfer if we have not
executed that far.
Votes beyond the window are bounded to one per replica (TOCS'02 6.2).
"""

from __future__ import annotations

from ledger.codec import encode_unshared
from pbft.messages import (
    Checkpoint,
)
from pbft.rules import ReplicaRules


class Checkpointing(ReplicaRules):
    """Checkpoint votes, stable checkpoints and garbage collection."""

    def _take_checkpoint(self, seq: int) -> None:
        cp = self._signed(Checkpoint, seq, self.app.head_digest, self.id)
        self._my_cp[seq] = cp
        self._broadcast(cp)
        self._add_checkpoint_vote(cp)

    def _on_checkpoint(self, cp: Checkpoint, _sender: int) -> None:
        if cp.seq <= self._h:
            self._drop("stale-checkpoint")
            return
        if cp.seq % self.config.checkpoint_interval:
            self._drop("checkpoint-off-interval")
            return
        self._add_checkpoint_vote(cp)

    def _add_checkpoint_vote(self, cp: Checkpoint) -> None:
        if cp.seq > self._h + self.config.watermark_window:
            # Beyond H each replica keeps only its newest vote: bounded, yet enough to
            # notice that Q replicas have moved on and fetch state (TOCS'02 6.2).
            prior = self._far_cp.get(cp.replica)
            if prior is not None:
                if prior >= cp.seq:
                    self._drop("stale-checkpoint")
                    return
                self._forget_checkpoint_vote(prior, cp.replica)
            self._far_cp[cp.replica] = cp.seq
        # get-then-create rather than setdefault, which builds a default dict on every vote.
        by_digest = self._cp_votes.get(cp.seq)
        if by_digest is None:
            by_digest = self._cp_votes[cp.seq] = {}
        for voters in by_digest.values():  # a loop, not any(): no generator per vote
            if cp.replica in voters:
                self._drop("duplicate")
                return
        votes = by_digest.get(cp.digest)
        if votes is None:
            votes = by_digest[cp.digest] = {}
        votes[cp.replica] = cp
        proof = self.stable_proof(votes)
        if proof is not None:
            self._make_stable(cp.seq, cp.digest, proof)

    def _forget_checkpoint_vote(self, seq: int, replica: int) -> None:
        by_digest = self._cp_votes.get(seq)
        if by_digest is None:
            return
        for digest in list(by_digest):
            by_digest[digest].pop(replica, None)
            if not by_digest[digest]:
                del by_digest[digest]
        if not by_digest:
            del self._cp_votes[seq]

    def _make_stable(self, seq: int, digest: bytes, proof: tuple[Checkpoint, ...]) -> None:
        """Advance h and garbage-collect everything at or below it (OSDI'99 4.3)."""
        if seq <= self._h:
            return
        mine = self._my_cp.get(seq)
        if mine is not None and mine.digest != digest:
            self.stats["checkpoint-mismatch"] += 1
        self._h = seq
        self._stable_proof = proof
        for s in [s for s in self._log if s <= seq]:
            del self._log[s]
        for s in [s for s in self._cp_votes if s <= seq]:
            del self._cp_votes[s]
        for s in [s for s in self._my_cp if s < seq]:
            del self._my_cp[s]
        high = seq + self.config.watermark_window
        self._far_cp = {r: s for r, s in self._far_cp.items() if s > high}
        self._stash = [m for m in self._stash if m.seq > seq]
        if self._seq_next <= seq:
            self._seq_next = seq + 1
        self._out.persist = [encode_unshared(self._snapshot())]
        self._out.compact = True
        if self.app.last_executed < seq:
            self._start_fetch()
        self._try_propose()
