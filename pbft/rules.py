"""The rules that PBFT's safety rests on, each in one small method a mutant can override.

Quorum sizes, who may assign sequence numbers, the watermark window, the order
of execution, and the validity of everything a peer can hand us as proof: a
batch and its agreed time (OSDI'99 4.2, 4.6), a checkpoint proof (4.3), a
commit certificate, a prepared certificate, a VIEW-CHANGE and the O of a
NEW-VIEW (OSDI'99 4.4; TOCS'02 4.5). They only read the replica's state, so
tests/pbft_mutants.py can break exactly one rule per subclass and the
property suite must notice. Kept together so a reviewer reads every safety
predicate in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pbft.api import (
    CLIENT_ID_BASE,
)
from pbft.log import Slot, vote_key
from pbft.messages import (
    Checkpoint,
    CommittedBatch,
    NewView,
    PreparedProof,
    PrePrepare,
    Request,
    ViewChange,
    batch_digest,
    signing_bytes,
)
from pbft.newview import NewViewPlan, plan_new_view
from pbft.replica_state import ReplicaState


class ReplicaRules(ReplicaState):
    """Safety predicates and quorum sizes (the hooks mutants override)."""

    def prepared_quorum(self) -> int:
        """2f PREPAREs from distinct backups, plus the pre-prepare (OSDI'99 4.2).

        In general a quorum less one (the pre-prepare stands for the primary's
        vote); see ``PBFTConfig.quorum`` for n other than 3f+1.
        """
        return self.config.quorum - 1

    def commit_quorum(self) -> int:
        """2f+1 COMMITs for committed-local (OSDI'99 4.2); a quorum in general."""
        return self.config.quorum

    def checkpoint_quorum(self) -> int:
        """2f+1 matching CHECKPOINTs make a checkpoint stable (OSDI'99 4.3)."""
        return self.config.quorum

    def view_evidence_quorum(self) -> int:
        """f+1 distinct replicas seen in a later view include a correct one (OSDI'99 4.5.2)."""
        return self.f + 1

    def accepts_pre_prepare_from(self, pre_prepare: PrePrepare) -> bool:
        """Only the primary of the pre-prepare's view may assign sequence numbers (OSDI'99 4.2)."""
        return pre_prepare.replica == self.config.primary(pre_prepare.view)

    def in_watermarks(self, seq: int) -> bool:
        """h < n <= H = h + L (OSDI'99 4.2/4.3): bounds the log and stops seq exhaustion."""
        return self._h < seq <= self._h + self.config.watermark_window

    def next_executable(self) -> Slot | None:
        """Execution is strictly in sequence order: only last_executed+1, once committed-local."""
        slot = self._log.get(self.app.last_executed + 1)
        if slot is not None and slot.committed and not slot.executed:
            return slot
        return None

    def _batch_problem(self, pp: PrePrepare) -> str | None:
        """Why no correct primary would have proposed this batch (None if one could).

        Checked wherever a batch is accepted: a fresh PRE-PREPARE, a prepared
        certificate in a VIEW-CHANGE (hence every batch in a NEW-VIEW's O).
        Only clients order requests; replica ids are not clients (OSDI'99 4.1),
        and one (client, timestamp) twice in a batch is a replay.
        """
        if len(pp.requests) > self.config.batch_size:
            return "batch-too-large"
        seen: set[tuple[int, int]] = set()
        for req in pp.requests:
            if req.client < CLIENT_ID_BASE:
                return "request-from-replica-in-batch"
            key = (req.client, req.timestamp)
            if key in seen:
                return "duplicate-request-in-batch"
            seen.add(key)
        if batch_digest(pp.requests) != pp.digest:
            return "bad-digest"
        return None

    def _time_problem(self, pp: PrePrepare) -> str | None:
        """The primary's agreed time must not run backwards nor ahead of our clock + skew.

        OSDI'99 4.6: the primary picks non-deterministic values and backups
        check them deterministically. Without the upper bound one faulty
        primary could stamp blocks with a time far in the future, and every
        later primary would have to carry it on to keep block times monotone.
        """
        floor = self._last_agreed
        below = self._log.get(pp.seq - 1)
        if below is not None and below.pre_prepare is not None:
            floor = max(floor, below.pre_prepare.timestamp_ms)
        if pp.timestamp_ms < floor:
            return "timestamp-regressed"
        if pp.timestamp_ms > self._now + self.config.max_skew_ms:
            return "timestamp-ahead"
        return None

    def _request_ok(self, req: Request) -> bool:
        known = self._waiting.get(req.client)
        if known is not None and known == req:
            return True
        return self.auth.verify(req.client, signing_bytes(req), req.signature)

    def valid_checkpoint_proof(self, proof: Sequence[Checkpoint]) -> tuple[int, bytes] | None:
        """(seq, digest) if ``proof`` holds a quorum of distinct, validly signed, matching votes."""
        if not proof:
            return None
        seq, digest = proof[0].seq, proof[0].digest
        signers = set()
        for cp in proof:
            if cp.seq != seq or cp.digest != digest or not 0 <= cp.replica < self.n:
                return None
            if cp.replica in signers:
                return None
            if not self.auth.verify(cp.replica, signing_bytes(cp), cp.signature):
                return None
            signers.add(cp.replica)
        if len(signers) < self.checkpoint_quorum():
            return None
        return seq, digest

    def _valid_certificate(self, batch: CommittedBatch) -> bool:
        """2f+1 distinct, validly signed COMMITs for the batch's view, seq, digest and time.

        The time matters: a server could otherwise hand us the right batch with
        another block timestamp, and the chained digest would not notice.
        """
        agreed = (batch.view, batch.seq, batch.digest, batch.timestamp_ms)
        signers: set[int] = set()
        for c in batch.certificate:
            if (c.view, c.seq, c.digest, c.timestamp_ms) != agreed:
                return False
            if c.replica in signers or not 0 <= c.replica < self.n:
                return False
            if not self.auth.verify(c.replica, signing_bytes(c), c.signature):
                return False
            signers.add(c.replica)
        return len(signers) >= self.commit_quorum()

    def view_change_signature_ok(self, vc: ViewChange, payload: bytes | None = None) -> bool:
        """The VIEW-CHANGE itself is signed by its sender (TOCS'02 4.5)."""
        if payload is None:
            payload = signing_bytes(vc)
        return self.auth.verify(vc.replica, payload, vc.signature)

    def valid_view_change(self, vc: ViewChange, payload: bytes | None = None) -> bool:
        """Signature, checkpoint proof C and every prepared certificate in P (TOCS'02 4.5)."""
        if not self.view_change_signature_ok(vc, payload):
            return False
        if vc.stable_seq:
            proven = self.valid_checkpoint_proof(vc.checkpoint_proof)
            if proven is None or proven[0] != vc.stable_seq:
                return False
        elif vc.checkpoint_proof:
            return False
        seen: set[int] = set()
        high = vc.stable_seq + self.config.watermark_window
        for proof in vc.prepared:
            pp = proof.pre_prepare
            if not vc.stable_seq < pp.seq <= high or pp.seq in seen or pp.view >= vc.new_view:
                return False
            seen.add(pp.seq)
            if not self._valid_prepared_proof(proof):
                return False
        return True

    def _valid_prepared_proof(self, proof: PreparedProof) -> bool:
        pp = proof.pre_prepare
        if not self.accepts_pre_prepare_from(pp) or not 0 <= pp.replica < self.n:
            return False
        if self._batch_problem(pp) is not None:
            return False
        if not self.auth.verify(pp.replica, signing_bytes(pp), pp.signature):
            return False
        signers: set[int] = set()
        for p in proof.prepares:
            if p.seq != pp.seq or vote_key(p) != vote_key(pp):
                return False
            if p.replica == pp.replica or p.replica in signers or not 0 <= p.replica < self.n:
                return False
            if not self.auth.verify(p.replica, signing_bytes(p), p.signature):
                return False
            signers.add(p.replica)
        return len(signers) >= self.prepared_quorum()

    def compute_new_view(self, view_changes: Iterable[ViewChange]) -> NewViewPlan:
        """min-s, max-s and O from V (OSDI'99 4.4); backups recompute and compare."""
        return plan_new_view(view_changes)

    def new_view_o_ok(self, nv: NewView, plan: NewViewPlan) -> bool:
        """O in the NEW-VIEW is exactly what we compute from its V (OSDI'99 4.4)."""
        if len(plan.proposals) != len(nv.pre_prepares):
            return False
        return all(
            pp.view == nv.view
            and pp.replica == nv.replica
            and prop.matches(pp)
            and self.auth.verify(pp.replica, signing_bytes(pp), pp.signature)
            for prop, pp in zip(plan.proposals, nv.pre_prepares, strict=True)
        )
