"""The rules that PBFT's safety rests on, each in one small method a mutant can override.

Quorum sizes, who may send what, the watermark window, the order of
execution, when a slot is prepared or committed-local and a checkpoint
stable, and the validity of everything a peer can hand us as proof: a signed
message, a batch and its agreed time (OSDI'99 4.2, 4.6), a checkpoint proof
(4.3), a prepared certificate, a commit certificate and a chunk of state
(TOCS'02 6.2), a VIEW-CHANGE, the V of a NEW-VIEW, and the choices that
make O: min-s and which prepared certificate wins a sequence number
(OSDI'99 4.4; TOCS'02 4.5). They only read the replica's state, so
tests/pbft_mutants.py can break exactly one rule per subclass and the
property suite must notice. Kept together so a reviewer reads every safety
predicate in one place; the handlers in the other mixins only call them.

Quorums. Q is ``PBFTConfig.quorum`` = ceil((n + f + 1) / 2), the smallest
size at which any two quorums share a correct replica; for the paper's
n = 3f + 1 it is 2f + 1. A prepared certificate is a pre-prepare plus Q - 1
PREPAREs (2f for n = 3f + 1), since the primary's vote is its pre-prepare.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ledger.hashing import header_hash
from pbft.api import (
    CLIENT_ID_BASE,
    Application,
    Authenticator,
    PBFTConfig,
)
from pbft.log import Slot, lowest_numbered, vote_key
from pbft.messages import (
    Checkpoint,
    Commit,
    CommittedBatch,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Request,
    StateChunk,
    ViewChange,
    batch_digest,
    signing_bytes,
    wire_signing_bytes,
)
from pbft.newview import NewViewPlan, plan_new_view
from pbft.replica_state import ReplicaState


def highest_stable_seq(view_changes: Iterable[ViewChange]) -> int:
    """The NEW-VIEW's min-s over VIEW-CHANGEs already checked (``new_view_min_s`` says why)."""
    return max((vc.stable_seq for vc in view_changes), default=0)


def later_certificate(candidate: PrePrepare, held: PrePrepare) -> bool:
    """Whether ``candidate`` beats ``held`` in O (``certificate_wins`` says why)."""
    return (candidate.view, candidate.digest) > (held.view, held.digest)


def honest_new_view_plan(view_changes: Iterable[ViewChange]) -> NewViewPlan:
    """O as every correct replica computes it from V: for whoever must predict it exactly
    (a Byzantine primary in the simulator building a NEW-VIEW that backups will accept)."""
    vcs = list(view_changes)
    return plan_new_view(vcs, highest_stable_seq(vcs), later_certificate)


def _batch_problem_of(requests: tuple[Request, ...], digest: bytes, limit: int) -> str | None:
    """``ReplicaRules._batch_problem`` for a batch of ``requests`` claiming ``digest``."""
    if len(requests) > limit:
        return "batch-too-large"
    seen: set[tuple[int, int]] = set()
    for req in requests:
        if req.client < CLIENT_ID_BASE:
            return "request-from-replica-in-batch"
        key = (req.client, req.timestamp)
        if key in seen:
            return "duplicate-request-in-batch"
        seen.add(key)
    if batch_digest(requests) != digest:
        return "bad-digest"
    return None


_last_batch_verdict: tuple[tuple[Request, ...] | None, bytes, int, str | None] = (
    None,
    b"",
    0,
    None,
)
"""(requests, digest, batch size, verdict) of the batch ``_batch_problem`` judged last."""


def shared_proof(pp: PrePrepare, prepares: tuple[Prepare, ...]) -> PreparedProof:
    """``PreparedProof(pp, prepares)``, one object for every replica picking these votes.

    The replicas of a simulated group hold the very same decoded messages, and
    most pick the same lowest-numbered votes: sharing the certificate lets its
    bytes be encoded once (``NormalCase._check_prepared``) and spliced into every
    snapshot that carries it. Keyed by identities, which the entry keeps alive.
    """
    key = (id(pp), *map(id, prepares))
    known = _proofs.get(key)
    if known is None:
        if len(_proofs) >= PROOFS_KEPT:
            _proofs.clear()
        known = _proofs[key] = PreparedProof(pp, prepares)
    return known


PROOFS_KEPT = 256
"""Certificates remembered: a few windows' worth of sequence numbers."""
_proofs: dict[tuple[int, ...], PreparedProof] = {}


def remember_request_payload(req: Request) -> tuple[Request, bytes]:
    """``(req, signing_bytes(req))``, remembered under ``id(req)`` (``_request_ok``'s miss).

    Every backup checks each request of a PRE-PREPARE (the decoder hands them the
    same objects), so the bytes are worked out once per request object rather
    than per replica; requests are immutable, and the entry holds the object, so
    an id in the table is never reused.
    """
    entry = (req, signing_bytes(req))
    if len(_request_payloads) >= REQUEST_PAYLOADS_KEPT:
        _request_payloads.clear()
    _request_payloads[id(req)] = entry
    return entry


REQUEST_PAYLOADS_KEPT = 4096
"""Requests whose signing bytes are remembered (a few hundred batches' worth)."""
_request_payloads: dict[int, tuple[Request, bytes]] = {}


class ReplicaRules(ReplicaState):
    """Safety predicates and quorum sizes (the hooks mutants override)."""

    def __init__(
        self, replica_id: int, config: PBFTConfig, auth: Authenticator, app: Application
    ) -> None:
        super().__init__(replica_id, config, auth, app)
        self._window = config.watermark_window
        """L, the watermark window, read by ``in_watermarks`` for every message."""
        self._primary_of = (0, config.primary(0))
        """(view, its primary) last asked by ``accepts_prepare_from``: a memo of
        ``config.primary``, a pure function of the view (always a true pair, so any
        view, even a forged negative one, gets the answer ``config.primary`` gives)."""

    # ---------------------------------------------------------------- quorum sizes

    def prepared_quorum(self) -> int:
        """Q - 1 PREPAREs from distinct backups, plus the pre-prepare (OSDI'99 4.2).

        The pre-prepare stands for the primary's vote; 2f for n = 3f + 1.
        """
        return self._quorum - 1

    def commit_quorum(self) -> int:
        """Q COMMITs for committed-local (OSDI'99 4.2); 2f + 1 for n = 3f + 1."""
        return self._quorum

    def checkpoint_quorum(self) -> int:
        """Q matching CHECKPOINTs make a checkpoint stable (OSDI'99 4.3)."""
        return self._quorum

    def view_change_quorum(self) -> int:
        """Q VIEW-CHANGEs for one view make the V of its NEW-VIEW (OSDI'99 4.4)."""
        return self._quorum

    def view_evidence_quorum(self) -> int:
        """f+1 distinct replicas seen in a later view include a correct one (OSDI'99 4.5.2)."""
        return self.f + 1

    # ------------------------------------------------------------- who sends what

    def authentic(self, msg: Any, data: bytes) -> bool:
        """``msg`` (received as ``data``) is signed by the principal it names (OSDI'99 4.1).

        Every vote is counted under its ``replica`` field, so this is what makes
        a PREPARE, COMMIT or CHECKPOINT count for that replica and no other.
        VIEW-CHANGEs are checked by ``valid_view_change`` instead, which mutants
        can weaken separately.
        """
        signature = msg.signature
        # ``signer_of(msg)`` written out: this runs for every message a replica receives.
        signer = msg.client if type(msg) is Request else msg.replica
        return self.auth.verify(signer, wire_signing_bytes(data, signature), signature)

    def accepts_pre_prepare_from(self, pre_prepare: PrePrepare) -> bool:
        """Only the primary of the pre-prepare's view may assign sequence numbers (OSDI'99 4.2)."""
        return pre_prepare.replica == self.config.primary(pre_prepare.view)

    def accepts_prepare_from(self, prepare: Prepare) -> bool:
        """PREPAREs come from backups: the primary's vote is its pre-prepare (OSDI'99 4.2).

        Counting a primary's PREPARE as well would let a faulty primary vote twice.
        """
        view = prepare.view
        known = self._primary_of
        if known[0] != view:  # asked once per view, not once per PREPARE
            known = self._primary_of = (view, self.config.primary(view))
        return prepare.replica != known[1]

    def in_watermarks(self, seq: int) -> bool:
        """h < n <= H = h + L (OSDI'99 4.2/4.3): bounds the log and stops seq exhaustion."""
        h = self._h
        return h < seq <= h + self._window

    # ------------------------------------------------- the normal case's predicates

    def prepared_certificate(self, slot: Slot) -> PreparedProof | None:
        """prepared(m, v, n, i): the slot's pre-prepare and Q - 1 matching PREPAREs (OSDI'99 4.2).

        Returns the certificate (the lowest-numbered senders' votes, so every
        replica holding the same votes keeps the same one), or None. Matching
        means the same view, digest and agreed time (``vote_key``); one vote per
        backup is enforced when votes are recorded (``Slot.record_prepare``).
        """
        pp = slot.pre_prepare
        if pp is None:
            return None
        votes = slot.prepare_votes(pp)
        if len(votes) < self.prepared_quorum():
            return None
        return shared_proof(pp, lowest_numbered(votes, self.prepared_quorum()))

    def committed_local(self, slot: Slot) -> bool:
        """committed-local(m, v, n, i): prepared, and Q matching COMMITs (OSDI'99 4.2)."""
        pp = slot.pre_prepare
        if pp is None or not slot.prepared:
            return False
        return len(slot.commit_votes(pp)) >= self.commit_quorum()

    def decides_nothing(
        self, voters: dict[int, Any], vote: Prepare | Commit, pp: PrePrepare, quorum: int
    ) -> bool:
        """True when a vote just recorded for ``pp``'s slot cannot complete its certificate.

        The handlers' fast path: ``voters`` is everyone who voted for the
        vote's key (``Slot.record_*``). A vote matching ``pp`` with fewer than
        ``quorum`` voters decides nothing, so the full check is skipped; any
        other vote leaves the decision to the full check.
        """
        return (
            len(voters) < quorum
            and vote.digest == pp.digest
            and vote.view == pp.view
            and vote.timestamp_ms == pp.timestamp_ms
        )

    def stable_proof(self, votes: dict[int, Checkpoint]) -> tuple[Checkpoint, ...] | None:
        """Q matching CHECKPOINTs (one seq and digest, distinct replicas) make it stable.

        OSDI'99 4.3. ``votes`` are one (seq, digest)'s votes by replica; the proof
        kept is the lowest-numbered Q of them, so replicas agree on its bytes.
        """
        if len(votes) < self.checkpoint_quorum():
            return None
        return lowest_numbered(votes, self.checkpoint_quorum())

    def next_executable(self) -> Slot | None:
        """Execution is strictly in sequence order: only last_executed+1, once committed-local.

        OSDI'99 4.2: every correct replica then applies the same batches in the
        same order, which is what makes their states agree.
        """
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
        global _last_batch_verdict
        requests, limit = pp.requests, self.config.batch_size
        # A function of the batch alone: the backups receiving one PRE-PREPARE in turn
        # share the verdict (the entry holds the tuple, so its identity stays its own).
        held, digest, held_limit, verdict = _last_batch_verdict
        if held is requests and digest == pp.digest and held_limit == limit:
            return verdict
        verdict = _batch_problem_of(requests, pp.digest, limit)
        if type(requests) is tuple:
            _last_batch_verdict = (requests, pp.digest, limit, verdict)
        return verdict

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
        """A batched request is signed by its client (OSDI'99 4.1), or is the one we hold."""
        known = self._waiting.get(req.client)
        # Usually the very object (the decoder shares it) or an older request:
        # identity and timestamp settle most cases before comparing every field.
        if known is req:
            return True
        if known is not None and known.timestamp == req.timestamp and known == req:
            return True
        # The signing bytes, looked up here rather than in a helper: a call per request
        # per backup was a good part of this check. Worked out only for a new request.
        entry = _request_payloads.get(id(req))
        if entry is None or entry[0] is not req:
            entry = remember_request_payload(req)
        return self.auth.verify(req.client, entry[1], req.signature)

    # ------------------------------------------------------------------ proofs

    def valid_checkpoint_proof(self, proof: Sequence[Checkpoint]) -> tuple[int, bytes] | None:
        """(seq, digest) if ``proof`` holds Q distinct, validly signed, matching CHECKPOINTs.

        OSDI'99 4.3: the proof that a checkpoint is stable, carried as C in a
        VIEW-CHANGE (4.4) and in a STATE-CHUNK (TOCS'02 6.2).
        """
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
        """A commit certificate: Q distinct, validly signed COMMITs for this batch (TOCS'02 6.2).

        They must agree on the batch's view, seq, digest and agreed time. The
        time matters: a server could otherwise hand us the right batch with
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

    def state_chunk_problem(self, chunk: StateChunk, proven: tuple[int, bytes]) -> str | None:
        """Why a STATE-CHUNK whose checkpoint proof proved ``proven`` is refused (None: taken).

        TOCS'02 6.2, with whole batches: the chunk continues from our last
        executed batch without gaps and without going past the proven
        checkpoint; the chunk reaching it must chain from our head to its
        digest; and every batch carries its own commit certificate, so no
        single server is trusted for any of them.
        """
        seq, digest = proven
        start = self.app.last_executed
        batches = chunk.batches
        if seq <= start or (batches and batches[-1].seq <= start):
            return "stale-state"
        if not batches or [b.seq for b in batches] != list(
            range(start + 1, min(seq, start + len(batches)) + 1)
        ):
            return "state-bad-range"
        if batches[-1].seq == seq:
            head = self.app.head_digest
            for batch in batches:
                head = header_hash(batch.seq, head, batch.digest)
            if head != digest:
                return "state-bad-digest"
        if not all(self._valid_certificate(b) for b in batches):
            return "state-bad-certificate"
        return None

    def view_change_signature_ok(self, vc: ViewChange, payload: bytes | None = None) -> bool:
        """The VIEW-CHANGE itself is signed by its sender (TOCS'02 4.5)."""
        if payload is None:
            payload = signing_bytes(vc)
        return self.auth.verify(vc.replica, payload, vc.signature)

    def valid_view_change(self, vc: ViewChange, payload: bytes | None = None) -> bool:
        """Signature, checkpoint proof C and every prepared certificate in P (TOCS'02 4.5).

        P holds at most one certificate per sequence number, each inside the
        window above the proven stable checkpoint and from a view before the
        one being asked for.
        """
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
        """A prepared certificate from P: what ``prepared_certificate`` keeps, checked (4.4).

        The pre-prepare is the view's primary's, signed, for a batch a correct
        primary could propose; Q - 1 PREPAREs from distinct backups, validly
        signed, match it in seq, view, digest and agreed time.
        """
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
            if (
                not self.accepts_prepare_from(p)
                or p.replica in signers
                or not 0 <= p.replica < self.n
            ):
                return False
            if not self.auth.verify(p.replica, signing_bytes(p), p.signature):
                return False
            signers.add(p.replica)
        return len(signers) >= self.prepared_quorum()

    # ---------------------------------------------------------------- NEW-VIEW

    def valid_new_view_certificate(self, nv: NewView) -> bool:
        """V: Q valid VIEW-CHANGEs for the NEW-VIEW's view from distinct replicas (TOCS'02 4.5).

        One we already accepted (the same message) need not be checked again.
        """
        signers: set[int] = set()
        for vc in nv.view_changes:
            if vc.new_view != nv.view or vc.replica in signers or not 0 <= vc.replica < self.n:
                return False
            if self._vc_latest.get(vc.replica) != vc and not self.valid_view_change(vc):
                return False
            signers.add(vc.replica)
        return len(signers) >= self.view_change_quorum()

    def owed_new_view(self, peer_view: int, peer_in_view_change: bool) -> NewView | None:
        """The NEW-VIEW we hold that a peer, by its STATUS or VIEW-CHANGE, has not installed.

        Retransmission (Castro's thesis 5.2, TOCS'02 5.2): a replica that
        missed a NEW-VIEW asks again, and any replica holding it may answer, since it
        proves itself (V and O are checked by the receiver). That covers a peer
        in an earlier view *and* a peer still in the view change to our view:
        the latter is exactly the replica whose NEW-VIEW was lost. Left
        unanswered, its timer moves it alone to the next view, which nobody
        joins (no f+1 evidence) and which it can never leave, since going back
        to a view after sending VIEW-CHANGE for a later one is unsafe.
        Liveness only: what we hand on is verified in full before use.
        """
        nv = self._new_view
        if nv is None or peer_view > nv.view:
            return None
        if peer_view < nv.view or peer_in_view_change:
            return nv
        return None

    def view_installed_elsewhere(self) -> bool:
        """f+1 replicas showed they work in the view we are still changing to.

        OSDI'99 4.5.2's f+1 argument, turned to the view we are in: of f+1
        replicas sending PRE-PREPAREs, PREPAREs, COMMITs or an active STATUS
        for that view, one is correct and installed its NEW-VIEW, which it
        hands on when asked (``owed_new_view``). So our timer expiring means
        our copy was lost, not that the new primary failed; see
        ``ViewChanging._view_change_expired``. Liveness only.
        """
        return len(self._active_in_view) >= self.view_evidence_quorum()

    def suspects_primary(self) -> bool:
        """The request timer expired a second time on a request it forwarded: suspect.

        The two-stage request timeout of BFT-SMaRt (Bessani, Sousa and
        Alchieri, DSN 2014): the first expiry only forwards the waiting
        requests to every replica (``Retransmission._forward_waiting``), since a
        request only we hold (its client's other copies lost or refused, our
        relay lost) says nothing about the primary, and suspecting on it alone
        sends us into a view nobody joins. The forwarded copies start the
        others' timers, so a primary that censors the request is replaced by
        all correct replicas together at the second expiry. Off in the
        configuration: PBFT's one-stage timer (OSDI'99 4.4), every expiry suspects.
        Liveness only.
        """
        if not self.config.two_stage_request_timer:
            return True
        return any((req.client, req.timestamp) in self._forwarded for req in self._waiting.values())

    def group_is_ahead(self) -> bool:
        """A backup fetching state up to a proven checkpoint must not suspect the primary.

        OSDI'99 4.5.2 starts a view change when a request waits too long. But a
        replica still fetching batches up to a stable checkpoint that Q replicas
        signed (``_fetch_seq``, above what it executed), or holding CHECKPOINTs
        from f+1 replicas above it (at least one correct replica executed that
        far), has proof that the group is ordering: its requests wait because
        *it* is behind, not because the primary stalls. Suspecting then sends it alone into a view
        nobody joins, where it stays (found by the live nemesis: a restarted
        replica fetching state under load). The timer is re-armed instead; once
        the fetch is done, a request that still waits triggers the view change
        as usual, so a primary that censors requests is still replaced.
        """
        executed = self.app.last_executed
        if self._fetch_deadline is not None and executed < self._fetch_seq:
            return True
        # Between fetches: f+1 replicas (so at least one correct one) checkpointed past
        # what we executed, so they ordered beyond us; we are catching up, not starved.
        for seq, by_digest in self._cp_votes.items():
            if seq > executed and len({r for votes in by_digest.values() for r in votes}) > self.f:
                return True
        return False

    def new_view_min_s(self, view_changes: Sequence[ViewChange]) -> int:
        """min-s: the latest stable checkpoint any VIEW-CHANGE in V proves (OSDI'99 4.4).

        Every C in V was checked (``valid_view_change``), so this checkpoint is
        stable at some correct replica and nothing at or below it need be redone.
        """
        return highest_stable_seq(view_changes)

    def certificate_wins(self, candidate: PrePrepare, held: PrePrepare) -> bool:
        """Of two prepared certificates for one sequence number, O takes the later view's.

        OSDI'99 4.4: a batch that committed in view v was prepared by a quorum in
        v, so every certificate from a later view at that seq is for the same
        batch, and the highest view's is the one that may have committed.
        Within one view (only possible beyond f faults) the larger digest wins,
        just so every replica computes the same O.
        """
        return later_certificate(candidate, held)

    def compute_new_view(self, view_changes: Iterable[ViewChange]) -> NewViewPlan:
        """min-s, max-s and O from V (OSDI'99 4.4); backups recompute and compare."""
        vcs = list(view_changes)
        return plan_new_view(vcs, self.new_view_min_s(vcs), self.certificate_wins)

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
