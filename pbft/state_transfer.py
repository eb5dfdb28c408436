"""State transfer: fetching committed batches up to a stable checkpoint we lag behind.

A replica whose h passed its last executed batch (it missed messages or was
down) asks f+1 peers for the batches, in bounded chunks. Each batch must carry
a valid commit certificate, and the chunk ending at the proven checkpoint must
reproduce its digest (TOCS'02 6.2, simplified to whole batches).
"""

from __future__ import annotations

from pbft.messages import (
    FetchState,
    StateChunk,
)
from pbft.rules import ReplicaRules


class StateTransfer(ReplicaRules):
    """FETCH-STATE requests and the STATE-CHUNK answers to them."""

    def _start_fetch(self) -> None:
        if self._fetch_deadline is not None and self._fetch_seq >= self._h:
            return
        self._fetch_seq = self._h
        self._fetch_attempt = 0
        self._send_fetch()

    def _send_fetch(self) -> None:
        """Ask f+1 peers at once: with at most f faulty, one of them is correct and up."""
        peers = [cp.replica for cp in self._stable_proof if cp.replica != self.id]
        if not peers:
            peers = [r for r in range(self.n) if r != self.id]
        fetch = self._sign(FetchState(self.app.last_executed, self.id, b""))
        start = self._fetch_attempt * (self.f + 1)
        for k in range(min(self.f + 1, len(peers))):
            self._send(peers[(start + k) % len(peers)], fetch)
        self._fetch_attempt += 1
        self._fetch_deadline = self._now + self.config.view_change_timeout_ms

    def _on_fetch_state(self, fetch: FetchState, _sender: int) -> None:
        if fetch.replica == self.id:
            self._drop("own-message")
            return
        if fetch.from_seq >= self._h or self.app.last_executed < self._h:
            self._drop("nothing-to-serve")
            return
        # A bounded chunk: a replica far behind asks again from where this one ends.
        last = min(self._h, fetch.from_seq + self.config.chunk_batches)
        batches = []
        for seq in range(fetch.from_seq + 1, last + 1):
            batch = self.app.batch_at(seq)
            if batch is None:
                self._drop("cannot-serve")
                return
            batches.append(batch)
        chunk = StateChunk(self._stable_proof, tuple(batches), self.id, b"")
        self._send(fetch.replica, self._sign(chunk))

    def _on_state_chunk(self, chunk: StateChunk, _sender: int) -> None:
        if self._fetch_deadline is None:
            self._drop("unsolicited-state")
            return
        proven = self.valid_checkpoint_proof(chunk.checkpoint_proof)
        if proven is None:
            self._drop("state-bad-proof")
            return
        problem = self.state_chunk_problem(chunk, proven)
        if problem is not None:
            self._drop(problem)
            return
        seq, digest = proven
        for batch in chunk.batches:
            self._apply(batch, reply=False)
        self._fetch_deadline = None
        self.stats["state-transfer"] += 1
        if seq > self._h:
            self._make_stable(seq, digest, chunk.checkpoint_proof)  # fetches on if behind
        elif self.app.last_executed < self._h:
            self._start_fetch()
        self._execute_ready()
