"""Replicas that judge proofs carelessly: each drops or weakens one condition of one check.

tests/pbft_mutants.py breaks PBFT's rules (quorum sizes, who may propose);
these keep the rules and slip in *checking the evidence* a peer hands over:
a commit certificate in state transfer, a checkpoint proof, the checkpoint
proof and prepared certificates inside a VIEW-CHANGE, the authentication of
COMMITs, and the VIEW-CHANGEs a NEW-VIEW carries. Each is a slip an
implementer could plausibly make, and each is exposed by one behaviour of
``sim.world.adversaries`` (tests/test_adversaries.py runs the pairs and
expects the simulator's safety or liveness checks to fire).

The proof checks are small re-implementations with one knob turned off
(``certificate_ok``, ``checkpoint_proof_ok``, ``prepared_proof_ok``), so
each mutant names the one condition it drops; the VIEW-CHANGE, NEW-VIEW and
COMMIT mutants wrap the real code instead. ``HOOKS`` lists the replica methods
overridden here, so a renamed hook fails a test instead of silently turning
a mutant into the real replica.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ledger.codec import CodecError, decode
from pbft.messages import (
    Checkpoint,
    Commit,
    CommittedBatch,
    PreparedProof,
    ViewChange,
    signing_bytes,
)
from pbft.replica import Replica

# ----------------------------------------------------------- checks with knobs


def certificate_ok(
    replica: Replica,
    batch: CommittedBatch,
    *,
    distinct: bool = True,
    digest: bool = True,
    signed: bool = True,
) -> bool:
    """A commit certificate check; each keyword, when False, drops one condition."""
    signers: list[int] = []
    for c in batch.certificate:
        if (c.view, c.seq, c.timestamp_ms) != (batch.view, batch.seq, batch.timestamp_ms):
            return False
        if digest and c.digest != batch.digest:
            return False
        if not 0 <= c.replica < replica.n or (distinct and c.replica in signers):
            return False
        if signed and not replica.auth.verify(c.replica, signing_bytes(c), c.signature):
            return False
        signers.append(c.replica)
    return len(signers) >= replica.commit_quorum()


def checkpoint_proof_ok(
    replica: Replica,
    proof: Sequence[Checkpoint],
    *,
    distinct: bool = True,
    signed: bool = True,
) -> tuple[int, bytes] | None:
    """A checkpoint proof check, with knobs as in :func:`certificate_ok`."""
    if not proof:
        return None
    seq, first = proof[0].seq, proof[0].digest
    signers: list[int] = []
    for cp in proof:
        if cp.seq != seq or cp.digest != first:
            return None
        if not 0 <= cp.replica < replica.n or (distinct and cp.replica in signers):
            return None
        if signed and not replica.auth.verify(cp.replica, signing_bytes(cp), cp.signature):
            return None
        signers.append(cp.replica)
    return (seq, first) if len(signers) >= replica.checkpoint_quorum() else None


def prepared_proof_ok(
    replica: Replica,
    proof: PreparedProof,
    *,
    digest: bool = True,
    signed: bool = True,
) -> bool:
    """A prepared certificate check whose PREPAREs may name another digest if told."""
    pp = proof.pre_prepare
    if not replica.accepts_pre_prepare_from(pp) or replica._batch_problem(pp) is not None:
        return False
    if not replica.auth.verify(pp.replica, signing_bytes(pp), pp.signature):
        return False
    signers: set[int] = set()
    for p in proof.prepares:
        if (p.view, p.seq, p.timestamp_ms) != (pp.view, pp.seq, pp.timestamp_ms):
            return False
        if digest and p.digest != pp.digest:
            return False
        if p.replica == pp.replica or p.replica in signers or not 0 <= p.replica < replica.n:
            return False
        if signed and not replica.auth.verify(p.replica, signing_bytes(p), p.signature):
            return False
        signers.add(p.replica)
    return len(signers) >= replica.prepared_quorum()


# ------------------------------------------------------- state transfer (forged-state)


class AcceptsUncertifiedState(Replica):
    """Takes state-transfer batches on the chunk's checkpoint proof alone, no certificate.

    Exposed by ``forged-state``: a chunk that stops short of the checkpoint is
    never compared with the checkpoint digest, so its forged batches execute.
    """

    def _valid_certificate(self, batch: CommittedBatch) -> bool:
        return True


class CertificateCountsVotes(Replica):
    """Counts a commit certificate's COMMITs, not its distinct signers.

    Exposed by ``forged-state`` (``repeated-signature``): one COMMIT of the
    Byzantine server, repeated 2f+1 times, certifies a forged batch.
    """

    def _valid_certificate(self, batch: CommittedBatch) -> bool:
        return certificate_ok(self, batch, distinct=False)


class CertificateIgnoresDigest(Replica):
    """Checks a commit certificate's view, seq and time but not that it names this batch.

    Exposed by ``forged-state`` (``other-digest``): the genuine certificate of
    the real batch vouches for a forged one.
    """

    def _valid_certificate(self, batch: CommittedBatch) -> bool:
        return certificate_ok(self, batch, digest=False)


class CertificateSkipsSignatures(Replica):
    """Trusts the COMMITs in a commit certificate without verifying their signatures.

    Exposed by ``forged-state`` (``unsigned``): 2f+1 unsigned COMMITs in
    distinct names certify a forged batch.
    """

    def _valid_certificate(self, batch: CommittedBatch) -> bool:
        return certificate_ok(self, batch, signed=False)


# ------------------------------------------------ VIEW-CHANGE (forged-view-change)


class TakesUnprovenStableSeq(Replica):
    """Accepts a VIEW-CHANGE whose checkpoint proof proves *a* checkpoint, not the claimed one.

    The NEW-VIEW's min-s is then an unproven stable_seq. Exposed by
    ``forged-view-change`` (``unproven-stable``): every replica jumps to a
    checkpoint nobody reached and no one can serve, and ordering stops.
    """

    def valid_view_change(self, vc: ViewChange, payload: bytes | None = None) -> bool:
        proven = self.valid_checkpoint_proof(vc.checkpoint_proof)
        if proven is None or not vc.stable_seq:
            return super().valid_view_change(vc, payload)
        payload = signing_bytes(vc) if payload is None else payload
        return super().valid_view_change(dataclasses.replace(vc, stable_seq=proven[0]), payload)


class CheckpointProofCountsVotes(Replica):
    """Counts a checkpoint proof's CHECKPOINTs, not its distinct signers.

    Exposed by ``forged-view-change`` (``duplicate-signer``): one CHECKPOINT
    repeated 2f+1 times proves a stable checkpoint a window ahead.
    """

    def valid_checkpoint_proof(self, proof: Sequence[Checkpoint]) -> tuple[int, bytes] | None:
        return checkpoint_proof_ok(self, proof, distinct=False)


class CheckpointProofSkipsSignatures(Replica):
    """Trusts the CHECKPOINTs of a proof without verifying their signatures.

    Exposed by ``forged-view-change`` (``fake-proof``).
    """

    def valid_checkpoint_proof(self, proof: Sequence[Checkpoint]) -> tuple[int, bytes] | None:
        return checkpoint_proof_ok(self, proof, signed=False)


class PreparedIgnoresDigest(Replica):
    """Accepts a prepared certificate whose PREPAREs are for another digest.

    Exposed by ``forged-view-change`` (``prepared-other-digest``): genuine
    PREPAREs for the real batch vouch for the stalled primary's forged one,
    which wins the NEW-VIEW's digest tie-break and executes.
    """

    def _valid_prepared_proof(self, proof: PreparedProof) -> bool:
        return prepared_proof_ok(self, proof, digest=False)


class PreparedSkipsSignatures(Replica):
    """Trusts a prepared certificate's PREPAREs without verifying their signatures.

    Exposed by ``forged-view-change`` (``prepared-unsigned``).
    """

    def _valid_prepared_proof(self, proof: PreparedProof) -> bool:
        return prepared_proof_ok(self, proof, signed=False)


# ------------------------------------------------------------ COMMITs (forged-commit)


class SkipsCommitSignatures(Replica):
    """Counts COMMITs without authenticating them (every other message is still checked).

    Exposed by ``forged-commit``: COMMITs in the names of replicas that told
    the victim nothing complete its 2f+1 for a batch the next view replaces.
    """

    def _receive(self, sender: int, data: bytes) -> None:
        try:
            message = decode(data)
        except CodecError:
            message = None
        if type(message) is Commit and 0 <= message.replica < self.n:
            self._on_commit(message, sender)
            return
        super()._receive(sender, data)


# --------------------------------------------------- NEW-VIEW (subset-new-view)


class TrustsViewChangesInNewView(Replica):
    """Checks each VIEW-CHANGE it receives, but trusts those a NEW-VIEW carries in V.

    The slip: "the primary already checked them". ``valid_view_change`` is
    called without the wire payload only for V's members
    (``pbft.view_change``), which is what this mutant keys on. Exposed by
    ``subset-new-view`` with ``strip = 1``: V's VIEW-CHANGEs lose their
    certificates, O loses the batches they prepared, and the primary's null
    batches take those slots at replicas that had not executed them.
    """

    def valid_view_change(self, vc: ViewChange, payload: bytes | None = None) -> bool:
        if payload is None:
            return True
        return super().valid_view_change(vc, payload)


PROOF_MUTANTS: dict[str, type[Replica]] = {
    "state-without-certificate": AcceptsUncertifiedState,
    "certificate-counts-votes": CertificateCountsVotes,
    "certificate-ignores-digest": CertificateIgnoresDigest,
    "certificate-skips-signatures": CertificateSkipsSignatures,
    "takes-unproven-stable-seq": TakesUnprovenStableSeq,
    "checkpoint-proof-counts-votes": CheckpointProofCountsVotes,
    "checkpoint-proof-skips-signatures": CheckpointProofSkipsSignatures,
    "prepared-ignores-digest": PreparedIgnoresDigest,
    "prepared-skips-signatures": PreparedSkipsSignatures,
    "skips-commit-signatures": SkipsCommitSignatures,
    "trusts-view-changes-in-new-view": TrustsViewChangesInNewView,
}

HOOKS: frozenset[str] = frozenset(
    name
    for cls in PROOF_MUTANTS.values()
    for name in vars(cls)
    if callable(vars(cls)[name]) and not name.startswith("__")
)
"""Replica methods the mutants override: each must exist on the real replica."""
