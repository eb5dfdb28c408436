"""The PBFT replica as a pure state machine (Castro & Liskov, OSDI'99; TOCS'02).

``Replica.step(event) -> Output`` is the whole interface: a received message or
a timer tick goes in; what to persist, whom to send what, which batches were
executed and when to wake up come out. Nothing here reads a clock, draws random
numbers or touches the network, so the same events give the same outputs.

The rules that safety rests on sit in small public methods (``prepared_quorum``,
``commit_quorum``, ``checkpoint_quorum``, ``accepts_pre_prepare_from``,
``in_watermarks``, ``view_change_signature_ok``, ``valid_view_change``,
``new_view_o_ok``,
``compute_new_view``, ``next_executable``), so tests/pbft_mutants.py can break
exactly one rule per subclass and the property suite must notice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from ledger.codec import CodecError, decode, encode
from ledger.hashing import GENESIS_HASH, header_hash
from pbft.api import (
    BROADCAST,
    CLIENT_ID_BASE,
    Application,
    Authenticator,
    Deliver,
    Event,
    Output,
    PBFTConfig,
    Send,
)
from pbft.log import Slot, vote_key
from pbft.messages import (
    Checkpoint,
    Commit,
    CommittedBatch,
    FetchState,
    Message,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    Request,
    StateChunk,
    Status,
    ViewChange,
    batch_digest,
    signer_of,
    signing_bytes,
    wire_signing_bytes,
)
from pbft.newview import NewViewPlan, plan_new_view
from pbft.records import Snapshot, StableRecord, ViewRecord

M = TypeVar("M")

MAX_BACKOFF_DOUBLINGS = 10
"""Cap on the view-change timeout's exponent (2**10 times the base at most)."""

VoteMessage = PrePrepare | Prepare | Commit


class Replica:
    """One PBFT replica; see the module docstring and docs/contracts.md."""

    def __init__(
        self, replica_id: int, config: PBFTConfig, auth: Authenticator, app: Application
    ) -> None:
        if not 0 <= replica_id < config.n:
            raise ValueError(f"replica_id {replica_id} not in 0..{config.n - 1}")
        self.id = replica_id
        self.config = config
        self.auth = auth
        self.app = app
        self.stats: Counter[str] = Counter()
        self.n = config.n
        self.f = config.f
        self._view = 0
        self._in_view_change = False
        # Stable checkpoint: low watermark h, its digest and its 2f+1 proof (OSDI'99 4.3).
        self._h = 0
        self._stable_digest = GENESIS_HASH
        self._stable_proof: tuple[Checkpoint, ...] = ()
        self._log: dict[int, Slot] = {}
        # Primary side of batching.
        self._seq_next = app.last_executed + 1
        # Agreed time of the newest executed batch: the floor for the next one.
        head = app.batch_at(app.last_executed) if app.last_executed else None
        self._last_agreed = head.timestamp_ms if head is not None else 0
        self._last_pp_time = self._last_agreed
        self._pending: dict[int, Request] = {}
        self._proposed: set[tuple[int, int]] = set()
        self._batch_deadline: int | None = None
        self._flush_owed = False
        # Requests known and not yet executed (one per client: PBFT clients have one
        # outstanding request); they keep the view-change timer running.
        self._waiting: dict[int, Request] = {}
        self._last_ts: dict[int, int] = {}
        self._replies: dict[int, Reply] = {}
        self._replies_seq = 0
        # Checkpoint votes: seq -> digest -> replica -> message.
        self._cp_votes: dict[int, dict[bytes, dict[int, Checkpoint]]] = {}
        self._far_cp: dict[int, int] = {}
        self._my_cp: dict[int, Checkpoint] = {}
        # View change.
        self._vc_latest: dict[int, ViewChange] = {}
        self._new_view: NewView | None = None
        self._vc_deadline: int | None = None
        self._vc_attempts = 0
        self._vc_resend_at: int | None = None
        self._ahead: dict[int, int] = {}
        """Replica -> highest view it was seen working in (validly signed evidence)."""
        self._catch_up_asked = 0
        """Highest view whose NEW-VIEW we asked the replicas seen in it for (one ask per view)."""
        self._stash: list[VoteMessage] = []
        self._stash_limit = 4 * config.n * config.watermark_window
        self._stash_quota = 2 * config.watermark_window
        """Per sender: a correct replica has at most a pre-prepare/prepare/commit... per slot
        of one window ahead of us; 2L leaves room for two views' worth of PREPARE+COMMIT."""
        # State transfer.
        self._fetch_seq = 0
        self._fetch_attempt = 0
        self._fetch_deadline: int | None = None
        # Retransmission (TOCS'02 5.2): STATUS every R while stalled.
        self._status_at: int | None = None
        self._seen_above = False
        self._status_answered: dict[int, int] = {}
        """Sender -> when we last answered its STATUS (one answer per sender per R)."""
        # Per-step context.
        self._now = 0
        self._out = Output()
        self._wire = b""
        self._arm_pending = False
        self._handlers: dict[type, Callable[[Any, int], None]] = {
            Request: self._on_request,
            PrePrepare: self._on_pre_prepare,
            Prepare: self._on_prepare,
            Commit: self._on_commit,
            Checkpoint: self._on_checkpoint,
            ViewChange: self._on_view_change,
            NewView: self._on_new_view,
            FetchState: self._on_fetch_state,
            StateChunk: self._on_state_chunk,
            Status: self._on_status,
        }
        if app.last_executed:
            self._rescan_clients(0)

    # ------------------------------------------------------------ read-only view

    @property
    def view(self) -> int:
        return self._view

    @property
    def in_view_change(self) -> bool:
        return self._in_view_change

    @property
    def last_executed(self) -> int:
        return self.app.last_executed

    @property
    def stable_checkpoint(self) -> int:
        return self._h

    @property
    def primary(self) -> int:
        return self.config.primary(self._view)

    def memory_footprint(self) -> dict[str, int]:
        """Sizes of every growing structure, for bounded-memory tests."""
        return {
            "slots": len(self._log),
            "slot_messages": sum(s.size() for s in self._log.values()),
            "checkpoint_votes": sum(
                len(v) for by_d in self._cp_votes.values() for v in by_d.values()
            ),
            "my_checkpoints": len(self._my_cp),
            "stash": len(self._stash),
            "waiting": len(self._waiting),
            "pending": len(self._pending),
            "proposed": len(self._proposed),
            "replies": len(self._replies),
            "view_changes": len(self._vc_latest),
        }

    # ------------------------------------------------------------- rule hooks

    def prepared_quorum(self) -> int:
        """2f PREPAREs from distinct backups, plus the pre-prepare (OSDI'99 4.2)."""
        return 2 * self.f

    def commit_quorum(self) -> int:
        """2f+1 COMMITs for committed-local (OSDI'99 4.2)."""
        return 2 * self.f + 1

    def checkpoint_quorum(self) -> int:
        """2f+1 matching CHECKPOINTs make a checkpoint stable (OSDI'99 4.3)."""
        return 2 * self.f + 1

    def accepts_pre_prepare_from(self, pre_prepare: PrePrepare) -> bool:
        """Only the primary of the pre-prepare's view may assign sequence numbers (OSDI'99 4.2)."""
        return pre_prepare.replica == self.config.primary(pre_prepare.view)

    def in_watermarks(self, seq: int) -> bool:
        """h < n <= H = h + L (OSDI'99 4.2/4.3): bounds the log and stops seq exhaustion."""
        return self._h < seq <= self._h + self.config.watermark_window

    def view_change_signature_ok(self, vc: ViewChange, payload: bytes | None = None) -> bool:
        """The VIEW-CHANGE itself is signed by its sender (TOCS'02 4.5)."""
        if payload is None:
            payload = signing_bytes(vc)
        return self.auth.verify(vc.replica, payload, vc.signature)

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

    def next_executable(self) -> Slot | None:
        """Execution is strictly in sequence order: only last_executed+1, once committed-local."""
        slot = self._log.get(self.app.last_executed + 1)
        if slot is not None and slot.committed and not slot.executed:
            return slot
        return None

    # -------------------------------------------------------------------- step

    def step(self, event: Event) -> Output:
        self._now = event.now_ms
        self._out = out = Output()
        if self._arm_pending:
            self._arm_after_restore()
        if type(event) is Deliver:
            self._receive(event.sender, event.data)
        self._fire_timers()
        out.wake_at_ms = self._next_deadline()
        return out

    def _receive(self, sender: int, data: bytes) -> None:
        try:
            msg: Any = decode(data)
        except CodecError as exc:
            self._drop(f"undecodable.{exc.reason}")
            return
        handler = self._handlers.get(type(msg))
        if handler is None:
            self._drop("unexpected-type")
            return
        if type(msg) is not Request and not 0 <= msg.replica < self.n:
            self._drop("unknown-sender")
            return
        if type(msg) is ViewChange:
            self._wire = data  # its handler checks the signature (a mutant hook)
        elif not self.auth.verify(
            signer_of(msg), wire_signing_bytes(data, msg.signature), msg.signature
        ):
            self._drop("bad-signature")
            return
        handler(msg, sender)

    def _drop(self, reason: str) -> None:
        self.stats["drop." + reason] += 1

    # ------------------------------------------------------------- output helpers

    def _sign(self, msg: M) -> M:
        return replace(msg, signature=self.auth.sign(encode(msg)))  # type: ignore[type-var]

    def _broadcast(self, msg: Message) -> None:
        self._out.send.append(Send(BROADCAST, msg))

    def _send(self, to: int, msg: Message) -> None:
        self._out.send.append(Send(to, msg))

    def _persist(self, record: Any) -> None:
        self._out.persist.append(encode(record))

    def _slot(self, seq: int) -> Slot:
        slot = self._log.get(seq)
        if slot is None:
            slot = self._log[seq] = Slot(seq, seq <= self.app.last_executed)
        return slot

    def _is_backup(self) -> bool:
        return self._in_view_change or self.config.primary(self._view) != self.id

    # ----------------------------------------------------------------- requests

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

    def _on_request(self, req: Request, sender: int) -> None:
        if req.client < CLIENT_ID_BASE:
            self._drop("request-from-replica")
            return
        from_client = sender == req.client
        last = self._last_ts.get(req.client, -1)
        if req.timestamp <= last:
            reply = self._replies.get(req.client)
            if from_client and reply is not None and reply.timestamp == req.timestamp:
                # Retransmission of an executed request: resend, never re-execute (OSDI'99 4.1).
                self.stats["resent.reply"] += 1
                self._send(req.client, reply)
            else:
                self._drop("old-request")
            return
        known = self._waiting.get(req.client)
        if known is not None and known.timestamp > req.timestamp:
            self._drop("old-request")
            return
        if known is None or known.timestamp < req.timestamp:
            self._learn_request(req)
        if not self._is_backup():
            if (req.client, req.timestamp) not in self._proposed:
                self._pending[req.client] = req
                self._try_propose()
        elif from_client and not self._in_view_change:
            # A backup relays to the primary and watches it (OSDI'99 4.4 liveness).
            self._send(self.config.primary(self._view), req)

    def _learn_request(self, req: Request) -> None:
        self._waiting[req.client] = req
        if self._status_at is None:
            self._arm_status()
        # In a view change the timer waits for 2f+1 VIEW-CHANGEs (OSDI'99 4.5.2): arming it
        # here would let a replica climb views alone with every new request.
        if self._is_backup() and not self._in_view_change and self._vc_deadline is None:
            self._vc_deadline = self._now + self._vc_timeout()

    def _vc_timeout(self) -> int:
        """T after progress and in the first view change, then 2T, 4T, ... (OSDI'99 4.5.2)."""
        doublings = min(max(self._vc_attempts - 1, 0), MAX_BACKOFF_DOUBLINGS)
        return self.config.view_change_timeout_ms << doublings

    # ------------------------------------------------------- normal case: primary

    def _try_propose(self, flush: bool = False) -> None:
        if self._is_backup():
            return
        cfg = self.config
        flush = flush or self._flush_owed or cfg.batch_timeout_ms == 0
        self._flush_owed = False
        while self._pending and (flush or len(self._pending) >= cfg.batch_size):
            if not self.in_watermarks(self._seq_next):
                self._flush_owed = flush
                self._batch_deadline = None
                return
            clients = list(self._pending)[: cfg.batch_size]
            self._propose(tuple(self._pending.pop(c) for c in clients))
            flush = False
        if not self._pending:
            self._batch_deadline = None
        elif self._batch_deadline is None:
            self._batch_deadline = self._now + cfg.batch_timeout_ms

    def _propose(self, requests: tuple[Request, ...]) -> None:
        seq = self._seq_next
        self._seq_next += 1
        # The agreed time is the primary's clock, kept non-decreasing across batches.
        self._last_pp_time = max(self._now, self._last_pp_time)
        pp = self._sign(
            PrePrepare(
                self._view, seq, batch_digest(requests), self._last_pp_time, requests, self.id, b""
            )
        )
        for r in requests:
            self._proposed.add((r.client, r.timestamp))
        slot = self._slot(seq)
        slot.pre_prepare = pp
        self._persist(pp)
        self._broadcast(pp)
        self._check_prepared(slot)

    # ------------------------------------------------------- normal case: votes

    def _admit(self, msg: VoteMessage) -> bool:
        """View and watermark gate shared by PRE-PREPARE, PREPARE and COMMIT."""
        if msg.view < self._view:
            self._drop("old-view")
            return False
        if msg.view > self._view or self._in_view_change:
            self._stash_message(msg)
            return False
        if not self.in_watermarks(msg.seq):
            self._drop("outside-watermarks")
            if msg.seq > self._h:
                # Others work above our window: we probably missed checkpoints.
                self._seen_above = True
                self._arm_status()
            return False
        if self._status_at is None and msg.seq > self.app.last_executed:
            self._arm_status()
        return True

    def _stash_message(self, msg: VoteMessage) -> None:
        """Keep a message for a view we have not entered yet, within bounds a peer cannot abuse.

        Only views up to K above ours and sequence numbers inside our window
        are worth keeping (anything else is garbage-collected at the next view
        or checkpoint, or never usable), an oversized batch is refused before
        it takes memory, and each sender gets a quota, so one faulty replica
        cannot crowd out the correct ones' messages. A far-ahead view is still
        noted as evidence for catching up.
        """
        if msg.view > self._view:
            self._notice_view_ahead(msg.replica, msg.view)
        if msg.view > self._view + self.config.stash_views_ahead:
            self._drop("stash-view-too-far")
            return
        if not self.in_watermarks(msg.seq):
            self._drop("outside-watermarks")
            return
        if type(msg) is PrePrepare and len(msg.requests) > self.config.batch_size:
            self._drop("batch-too-large")
            return
        if len(self._stash) >= self._stash_limit:
            self._drop("stash-full")
            return
        if sum(1 for m in self._stash if m.replica == msg.replica) >= self._stash_quota:
            self._drop("stash-quota")
            return
        self.stats["stash.future-view"] += 1
        self._stash.append(msg)

    def _notice_view_ahead(self, replica: int, view: int) -> None:
        """Record that ``replica`` works in ``view``, above ours, and catch up once f+1 do."""
        if self._ahead.get(replica, -1) >= view:
            return
        self._ahead[replica] = view
        self._catch_up()

    def view_evidence_quorum(self) -> int:
        """f+1 distinct replicas seen in a later view include a correct one (OSDI'99 4.5.2)."""
        return self.f + 1

    def _view_behind(self) -> int | None:
        """The highest view that enough replicas were seen in, if it is above ours.

        It is the (f+1)-th highest view in the evidence, so at least one correct
        replica has reached it; one faulty replica alone, claiming any view,
        never moves it.
        """
        views = sorted((v for v in self._ahead.values() if v > self._view), reverse=True)
        quorum = self.view_evidence_quorum()
        return views[quorum - 1] if len(views) >= quorum else None

    def _catch_up(self) -> None:
        """Learn a view the others entered while we were away (crashed, partitioned).

        Outside a view change we ask for the NEW-VIEW rather than start one,
        as Castro's implementation does with status messages (TOCS'02 5.2):
        every replica in the later view holds that NEW-VIEW (it carries its own
        proof, so any of them may forward it), and we install it exactly as in
        a view change (``_on_new_view``). The first ask goes at once to the
        replicas seen in that view; while we stay behind the STATUS timer
        repeats it to everyone, which also repairs a lost answer. During a view
        change the f+1 join rule applies instead: we move our VIEW-CHANGE to
        that view, and its primary answers a late one with its NEW-VIEW.
        """
        target = self._view_behind()
        if target is None:
            return
        if self._in_view_change:
            self._start_view_change(target)
            return
        if target > self._catch_up_asked:
            self._catch_up_asked = target
            self.stats["catch-up.asked"] += 1
            status = self._status(ask=True)
            for peer in sorted(r for r, v in self._ahead.items() if v >= target):
                self._send(peer, status)
        self._arm_status()

    def _on_pre_prepare(self, pp: PrePrepare, _sender: int) -> None:
        if not self._admit(pp):
            return
        if not self.accepts_pre_prepare_from(pp):
            self._drop("pre-prepare-not-from-primary")
            return
        slot = self._slot(pp.seq)
        held = slot.pre_prepare
        mine = slot.sent_prepare
        if held is not None:
            self._drop("duplicate" if held == pp else "conflicting-pre-prepare")
            return
        if mine is not None and mine.view == pp.view and vote_key(mine) != vote_key(pp):
            # We prepared another digest or time here before a restart: never equivocate.
            self._drop("conflicting-pre-prepare")
            return
        problem = self._batch_problem(pp) or self._time_problem(pp)
        if problem is not None:
            self._drop(problem)
            return
        for req in pp.requests:
            if not self._request_ok(req):
                self._drop("bad-request-in-batch")
                return
        slot.pre_prepare = pp
        for req in pp.requests:
            known = self._waiting.get(req.client)
            if req.timestamp > self._last_ts.get(req.client, -1) and (
                known is None or known.timestamp < req.timestamp
            ):
                self._learn_request(req)
        if pp.replica != self.id:
            prepare = mine
            if prepare is None or prepare.view != pp.view:
                prepare = self._sign(
                    Prepare(pp.view, pp.seq, pp.digest, pp.timestamp_ms, self.id, b"")
                )
                slot.sent_prepare = prepare
                self._persist(prepare)
            slot.add_prepare(prepare)
            self._broadcast(prepare)
        self._check_prepared(slot)

    def _on_prepare(self, prepare: Prepare, _sender: int) -> None:
        if not self._admit(prepare):
            return
        if prepare.replica == self.config.primary(prepare.view):
            self._drop("prepare-from-primary")
            return
        slot = self._slot(prepare.seq)
        if not slot.add_prepare(prepare):
            self._drop("duplicate")
            return
        self._check_prepared(slot)

    def _on_commit(self, commit: Commit, _sender: int) -> None:
        if not self._admit(commit):
            return
        slot = self._slot(commit.seq)
        if not slot.add_commit(commit):
            self._drop("duplicate")
            return
        self._check_committed(slot)

    def _check_prepared(self, slot: Slot) -> None:
        pp = slot.pre_prepare
        if pp is None or slot.prepared:
            return
        votes = slot.prepare_votes(pp)
        if len(votes) < self.prepared_quorum():
            return
        slot.prepared = True
        chosen = tuple(votes[r] for r in sorted(votes)[: self.prepared_quorum()])
        slot.prepared_proof = PreparedProof(pp, chosen)
        self._persist(slot.prepared_proof)
        commit = slot.sent_commit
        if commit is None or vote_key(commit) != vote_key(pp):
            commit = self._sign(Commit(pp.view, pp.seq, pp.digest, pp.timestamp_ms, self.id, b""))
            slot.sent_commit = commit
            self._persist(commit)
        slot.add_commit(commit)
        self._broadcast(commit)
        self._check_committed(slot)

    def _check_committed(self, slot: Slot) -> None:
        pp = slot.pre_prepare
        if pp is None or not slot.prepared or slot.committed:
            return
        if len(slot.commit_votes(pp)) < self.commit_quorum():
            return
        slot.committed = True
        self._execute_ready()

    # ---------------------------------------------------------------- execution

    def _execute_ready(self) -> None:
        while (slot := self.next_executable()) is not None:
            pp = slot.pre_prepare
            assert pp is not None
            votes = slot.commit_votes(pp)
            cert = tuple(votes[r] for r in sorted(votes)[: self.commit_quorum()])
            slot.executed = True
            self._apply(
                CommittedBatch(pp.seq, pp.view, pp.timestamp_ms, pp.requests, cert), reply=True
            )

    def _apply(self, batch: CommittedBatch, reply: bool) -> None:
        """Execute one batch and do the bookkeeping every execution path shares."""
        fresh = self._freshness(batch.requests)
        results = self.app.execute(batch, fresh)
        self._out.executed.append(batch)
        self._out.fresh.append(fresh)
        self._vc_attempts = 0
        self._last_agreed = max(self._last_agreed, batch.timestamp_ms)
        for req, result, new in zip(batch.requests, results, fresh, strict=True):
            if not new:
                continue
            self._last_ts[req.client] = req.timestamp
            self._proposed.discard((req.client, req.timestamp))
            waiting = self._waiting.get(req.client)
            if waiting is not None and waiting.timestamp <= req.timestamp:
                del self._waiting[req.client]
            pending = self._pending.get(req.client)
            if pending is not None and pending.timestamp <= req.timestamp:
                del self._pending[req.client]
            if reply:
                answer = self._sign(
                    Reply(self._view, req.timestamp, req.client, self.id, result, b"")
                )
                self._replies[req.client] = answer
                self._send(req.client, answer)
            else:
                self._replies.pop(req.client, None)
        self._replies_seq = batch.seq
        if self._status_at is not None:
            self._status_at = self._now + self.config.status_interval_ms
        # The view-change timer runs only while some request waits (OSDI'99 4.4).
        if not self._in_view_change:
            watching = bool(self._waiting) and self._is_backup()
            self._vc_deadline = self._now + self._vc_timeout() if watching else None
        if batch.seq % self.config.checkpoint_interval == 0:
            self._take_checkpoint(batch.seq)

    def _freshness(self, requests: Sequence[Request]) -> tuple[bool, ...]:
        """Exactly-once (OSDI'99 4.1), decided from the chain alone so correct replicas agree.

        A request is stale if its client already had this timestamp or a later
        one executed, earlier in the chain or earlier in the same batch.
        """
        latest: dict[int, int] = {}
        fresh: list[bool] = []
        for req in requests:
            last = latest.get(req.client)
            if last is None:
                last = self._last_ts.get(req.client, -1)
            new = req.timestamp > last
            fresh.append(new)
            if new:
                latest[req.client] = req.timestamp
        return tuple(fresh)

    # -------------------------------------------------------------- checkpoints

    def _take_checkpoint(self, seq: int) -> None:
        cp = self._sign(Checkpoint(seq, self.app.head_digest, self.id, b""))
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
            # notice that 2f+1 replicas have moved on and fetch state (TOCS'02 6.2).
            prior = self._far_cp.get(cp.replica)
            if prior is not None:
                if prior >= cp.seq:
                    self._drop("stale-checkpoint")
                    return
                self._forget_checkpoint_vote(prior, cp.replica)
            self._far_cp[cp.replica] = cp.seq
        by_digest = self._cp_votes.setdefault(cp.seq, {})
        if any(cp.replica in voters for voters in by_digest.values()):
            self._drop("duplicate")
            return
        votes = by_digest.setdefault(cp.digest, {})
        votes[cp.replica] = cp
        if len(votes) >= self.checkpoint_quorum():
            proof = tuple(votes[r] for r in sorted(votes)[: self.checkpoint_quorum()])
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
        self._stable_digest = digest
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
        self._out.persist = [encode(self._snapshot())]
        self._out.compact = True
        if self.app.last_executed < seq:
            self._start_fetch()
        self._try_propose()

    def _snapshot(self) -> Snapshot:
        prepared: list[PreparedProof] = []
        sent: list[PrePrepare | Prepare | Commit] = []
        for seq in sorted(self._log):
            slot = self._log[seq]
            if slot.prepared_proof is not None:
                prepared.append(slot.prepared_proof)
            pp = slot.pre_prepare
            if pp is not None and pp.replica == self.id:
                sent.append(pp)
            if slot.sent_prepare is not None:
                sent.append(slot.sent_prepare)
            if slot.sent_commit is not None:
                sent.append(slot.sent_commit)
        return Snapshot(
            self._view,
            self._in_view_change,
            self._h,
            self._stable_proof,
            tuple(prepared),
            tuple(sent),
            self._vc_latest.get(self.id),
            self._new_view,
            tuple(self._replies[c] for c in sorted(self._replies)),
            self._replies_seq,
            tuple(sorted(self._last_ts.items())),
        )

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

    # ----------------------------------------------------------- state transfer

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
        seq, digest = proven
        start = self.app.last_executed
        batches = chunk.batches
        if seq <= start or (batches and batches[-1].seq <= start):
            self._drop("stale-state")
            return
        if not batches or [b.seq for b in batches] != list(
            range(start + 1, min(seq, start + len(batches)) + 1)
        ):
            self._drop("state-bad-range")
            return
        if batches[-1].seq == seq:
            # The last chunk also matches the proven checkpoint digest; every batch
            # is already vouched for by its own 2f+1 commit certificate.
            head = self.app.head_digest
            for batch in batches:
                head = header_hash(batch.seq, head, batch.digest)
            if head != digest:
                self._drop("state-bad-digest")
                return
        if not all(self._valid_certificate(b) for b in batches):
            self._drop("state-bad-certificate")
            return
        for batch in batches:
            slot = self._log.get(batch.seq)
            if slot is not None:
                slot.executed = True
            self._apply(batch, reply=False)
        self._fetch_deadline = None
        self.stats["state-transfer"] += 1
        if seq > self._h:
            self._make_stable(seq, digest, chunk.checkpoint_proof)  # fetches on if behind
        elif self.app.last_executed < self._h:
            self._start_fetch()
        self._execute_ready()

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

    # ----------------------------------------------------------- retransmission

    def _arm_status(self) -> None:
        """Start the stall timer; execution pushes it back, so a healthy run never fires it.

        No back-off: a stall with requests waiting ends in a view change after T
        (which disarms STATUS), so a stall costs at most T/R rounds per view.
        """
        if self._status_at is None:
            self._status_at = self._now + self.config.status_interval_ms

    def _stalled(self) -> bool:
        """Some work is known and unfinished: a request waits, or a slot in this view holds
        the primary's PRE-PREPARE or votes from f+1 replicas (one of them correct)."""
        if self._waiting or self._pending:
            return True
        last = self.app.last_executed
        return any(
            seq > last
            and not slot.executed
            and (slot.pre_prepare is not None or slot.voters(self._view) > self.f)
            for seq, slot in self._log.items()
        )

    def _status(self, ask: bool) -> Status:
        last = self.app.last_executed
        held = [(seq, self._log[seq]) for seq in sorted(self._log) if seq > last]
        return self._sign(
            Status(
                self._view,
                self._in_view_change,
                self._h,
                last,
                tuple(seq for seq, slot in held if slot.pre_prepare is not None),
                tuple(seq for seq, slot in held if slot.prepared),
                tuple(seq for seq, slot in held if slot.committed),
                ask,
                self.id,
                b"",
            )
        )

    def _broadcast_status(self) -> None:
        """Tell everyone what we hold, so each can send what we lack (TOCS'02 5.2).

        Only a stall triggers this: in a run without loss every slot executes
        within R of being seen, and the message pattern is exactly the paper's.
        """
        self.stats["status.sent"] += 1
        self._broadcast(self._status(ask=True))
        self._arm_status()

    def _on_status(self, st: Status, _sender: int) -> None:
        if st.replica == self.id:
            self._drop("own-message")
            return
        peer = st.replica
        if st.view > self._view:
            self._notice_view_ahead(peer, st.view)  # evidence counts even if rate-limited
        # Each answer may cost up to ~3L messages, so a sender gets one per R/2. A correct
        # stalled replica broadcasts every R and may send one STATUS in answer to ours;
        # half of R leaves room for both and for latency jitter.
        last = self._status_answered.get(peer)
        if last is not None and self._now < last + max(1, self.config.status_interval_ms // 2):
            self._drop("status-rate-limited")
            return
        self._status_answered[peer] = self._now
        self._resend_checkpoints(peer, st.stable_seq)
        if st.view != self._view or st.in_view_change or self._in_view_change:
            nv = self._new_view
            if nv is not None and st.view < nv.view:
                # The peer missed a view change: the NEW-VIEW proves itself, so any
                # replica holding it may hand it on (see ``_catch_up``). What we hold
                # in this view follows; the peer stashes it until the NEW-VIEW is in.
                self.stats["resent.new-view"] += 1
                self._send(peer, nv)
                if nv.view == self._view and not self._in_view_change:
                    self._resend_slots(peer, st.last_executed, (), (), ())
            return
        self._resend_slots(peer, st.last_executed, st.pre_prepared, st.prepared, st.committed)
        if st.ask and self._lacks_what_peer_has(st):
            self._send(peer, self._status(ask=False))

    def _resend_slots(
        self,
        peer: int,
        last_executed: int,
        pre_prepared: Iterable[int],
        prepared_seqs: Iterable[int],
        committed_seqs: Iterable[int],
    ) -> None:
        """Send ``peer`` what it lacks above ``last_executed`` in our view, by its STATUS."""
        has_pp, prepared, committed = set(pre_prepared), set(prepared_seqs), set(committed_seqs)
        for seq in sorted(self._log):
            slot = self._log[seq]
            pp = slot.pre_prepare
            if seq <= last_executed or pp is None:
                continue
            if seq not in has_pp and pp.replica != peer:
                self.stats["resent.pre-prepare"] += 1
                self._send(peer, pp)
            mine = slot.sent_prepare
            if seq not in prepared and mine is not None and vote_key(mine) == vote_key(pp):
                self.stats["resent.prepare"] += 1
                self._send(peer, mine)
            vote = slot.sent_commit
            if seq not in committed and vote is not None and vote_key(vote) == vote_key(pp):
                self.stats["resent.commit"] += 1
                self._send(peer, vote)

    def _lacks_what_peer_has(self, st: Status) -> bool:
        """The peer executed, checkpointed or was pre-prepared beyond us: ask it in turn."""
        last = self.app.last_executed
        if st.last_executed > last or st.stable_seq > self._h:
            return True
        for seq in st.pre_prepared:
            if seq > last and self.in_watermarks(seq):
                slot = self._log.get(seq)
                if slot is None or slot.pre_prepare is None:
                    return True
        return False

    def _resend_checkpoints(self, peer: int, stable_seq: int) -> None:
        """Our CHECKPOINTs the peer still needs; the stable proof if we hold none of our own."""
        for seq in sorted(self._my_cp):
            if seq > stable_seq:
                self.stats["resent.checkpoint"] += 1
                self._send(peer, self._my_cp[seq])
        if self._h > stable_seq and self._h not in self._my_cp:
            for cp in self._stable_proof:
                if cp.replica != peer:
                    self.stats["resent.checkpoint"] += 1
                    self._send(peer, cp)

    # -------------------------------------------------------------- view change

    def _start_view_change(self, new_view: int) -> None:
        """Move to ``new_view`` and send VIEW-CHANGE with C and P (OSDI'99 4.4)."""
        self._view = new_view
        self._in_view_change = True
        self._batch_deadline = None
        self._flush_owed = False
        self._pending.clear()
        self._proposed.clear()
        for slot in self._log.values():
            slot.enter_view(new_view)
        prepared = tuple(
            proof
            for s in sorted(self._log)
            if s > self._h and (proof := self._log[s].prepared_proof) is not None
        )
        vc = self._sign(ViewChange(new_view, self._h, self._stable_proof, prepared, self.id, b""))
        self._vc_latest[self.id] = vc
        self._persist(ViewRecord(new_view, True))
        self._persist(vc)
        self._broadcast(vc)
        self._vc_deadline = None
        self._vc_resend_at = self._now + self.config.view_change_timeout_ms
        self._vc_attempts += 1
        self.stats["view-change"] += 1
        self._arm_view_change_timer()
        self._maybe_send_new_view()

    def _arm_view_change_timer(self) -> None:
        """In a view change, wait for NEW-VIEW only once 2f+1 VIEW-CHANGEs for it arrived.

        OSDI'99 4.5.2: starting the timer earlier lets a replica whose timer
        expired alone run through views by itself, and then the others can
        never gather 2f+1 VIEW-CHANGEs for a common view.
        """
        if not self._in_view_change or self._vc_deadline is not None:
            return
        view = self._view
        votes = sum(1 for vc in self._vc_latest.values() if vc.new_view == view)
        if votes >= 2 * self.f + 1:
            self._vc_deadline = self._now + self._vc_timeout()

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

    def _on_view_change(self, vc: ViewChange, _sender: int) -> None:
        payload = wire_signing_bytes(self._wire, vc.signature)
        if vc.replica == self.id:
            self._drop("own-message")
            return
        nv = self._new_view
        if (
            vc.new_view == self._view
            and not self._in_view_change
            and nv is not None
            and nv.view == self._view
            and nv.replica == self.id
        ):
            # A replica late to a view we lead (partitioned, restarted): hand it
            # the NEW-VIEW, which carries its own proof.
            if self.view_change_signature_ok(vc, payload):
                self.stats["resent.new-view"] += 1
                self._send(vc.replica, nv)
            else:
                self._drop("bad-view-change")
            return
        prior = self._vc_latest.get(vc.replica)
        if prior is not None and prior.new_view >= vc.new_view:
            self._drop("duplicate")
            return
        if vc.new_view < self._view:
            self._drop("old-view")
            return
        if not self.valid_view_change(vc, payload):
            self._drop("bad-view-change")
            return
        self._vc_latest[vc.replica] = vc
        # Join rule (OSDI'99 4.5.2): f+1 replicas want views above ours, so a correct
        # one does; move to the smallest of them without waiting for our timer.
        above = [v.new_view for r, v in self._vc_latest.items() if r != self.id]
        above = [v for v in above if v > self._view]
        if len(above) > self.f:
            self._start_view_change(min(above))
            return
        self._arm_view_change_timer()
        self._maybe_send_new_view()

    def _maybe_send_new_view(self) -> None:
        view = self._view
        if not self._in_view_change or self.config.primary(view) != self.id:
            return
        own = self._vc_latest.get(self.id)
        if own is None or own.new_view != view:
            return
        others = sorted(
            r for r, vc in self._vc_latest.items() if vc.new_view == view and r != self.id
        )
        quorum = 2 * self.f + 1
        if len(others) + 1 < quorum:
            return
        chosen = (own, *(self._vc_latest[r] for r in others[: quorum - 1]))
        plan = self.compute_new_view(chosen)
        pre_prepares = tuple(
            self._sign(PrePrepare(view, p.seq, p.digest, p.timestamp_ms, p.requests, self.id, b""))
            for p in plan.proposals
        )
        nv = self._sign(NewView(view, chosen, pre_prepares, self.id, b""))
        self._persist(nv)
        self._broadcast(nv)
        self._enter_view(nv, plan)

    def _on_new_view(self, nv: NewView, _sender: int) -> None:
        if nv.view < self._view or (nv.view == self._view and not self._in_view_change):
            self._drop("old-view")
            return
        if nv.replica != self.config.primary(nv.view) or nv.replica == self.id:
            self._drop("new-view-not-from-primary")
            return
        signers: set[int] = set()
        for vc in nv.view_changes:
            if vc.new_view != nv.view or vc.replica in signers or not 0 <= vc.replica < self.n:
                self._drop("new-view-bad-view-changes")
                return
            if self._vc_latest.get(vc.replica) != vc and not self.valid_view_change(vc):
                self._drop("new-view-bad-view-changes")
                return
            signers.add(vc.replica)
        if len(signers) < 2 * self.f + 1:
            self._drop("new-view-bad-view-changes")
            return
        plan = self.compute_new_view(nv.view_changes)
        if not self.new_view_o_ok(nv, plan):
            self._drop("new-view-bad-o")
            return
        if not self._in_view_change:
            self.stats["catch-up.new-view"] += 1
        self._enter_view(nv, plan)

    def _enter_view(self, nv: NewView, plan: NewViewPlan) -> None:
        """Install O and resume normal operation in the new view (OSDI'99 4.4)."""
        view = nv.view
        if view != self._view:
            for slot in self._log.values():
                slot.enter_view(view)
        self._view = view
        self._in_view_change = False
        self._vc_resend_at = None
        self._status_at = None
        self._new_view = nv
        self._pending.clear()
        self._proposed.clear()
        self._persist(ViewRecord(view, False))
        if nv.replica != self.id:
            # Kept so we can hand it to a replica that missed this view change, also
            # after our own restart (the primary persisted it before sending).
            self._persist(nv)
        self.stats["new-view"] += 1
        if plan.min_s > self._h:
            for vc in nv.view_changes:
                if vc.stable_seq == plan.min_s:
                    proof = vc.checkpoint_proof
                    self._make_stable(plan.min_s, proof[0].digest, proof)
                    break
        primary = nv.replica == self.id
        for pp in nv.pre_prepares:
            if not self.in_watermarks(pp.seq):
                continue
            slot = self._slot(pp.seq)
            slot.pre_prepare = pp
            for req in pp.requests:
                self._proposed.add((req.client, req.timestamp))
            if not primary:
                prepare = self._sign(
                    Prepare(view, pp.seq, pp.digest, pp.timestamp_ms, self.id, b"")
                )
                slot.sent_prepare = prepare
                slot.add_prepare(prepare)
                self._persist(prepare)
                self._broadcast(prepare)
        self._seq_next = max(plan.max_s, self._h, self.app.last_executed) + 1
        # Keep block times monotone over what is executed and what O re-proposes (each O
        # entry was prepared, so f+1 correct replicas bounded its time); never carry on
        # our own earlier choices, which no one vouched for.
        self._last_pp_time = max([self._last_agreed, *(pp.timestamp_ms for pp in nv.pre_prepares)])
        stash, self._stash = self._stash, []
        for msg in stash:
            if msg.view >= view:
                self._stash.append(msg)
        self._replay_stash()
        for pp in nv.pre_prepares:
            installed = self._log.get(pp.seq)
            if installed is not None:
                self._check_prepared(installed)
        if primary:
            for client, req in self._waiting.items():
                if (client, req.timestamp) not in self._proposed:
                    self._pending[client] = req
            self._vc_deadline = None
            self._try_propose(flush=True)
        else:
            self._vc_deadline = self._now + self._vc_timeout() if self._waiting else None
        if self._waiting or self._view_behind() is not None:
            self._arm_status()

    def _replay_stash(self) -> None:
        ready = [m for m in self._stash if m.view == self._view]
        if not ready:
            return
        self._stash = [m for m in self._stash if m.view != self._view]
        for msg in ready:
            self.stats["stash.replayed"] += 1
            self._handlers[type(msg)](msg, msg.replica)

    # ------------------------------------------------------------------- timers

    def _fire_timers(self) -> None:
        now = self._now
        if self._batch_deadline is not None and now >= self._batch_deadline:
            self._batch_deadline = None
            self._try_propose(flush=True)
        if self._vc_deadline is not None and now >= self._vc_deadline:
            self._vc_deadline = None
            if self._in_view_change or (self._waiting and self._is_backup()):
                self._start_view_change(self._view + 1)
        if self._vc_resend_at is not None and now >= self._vc_resend_at:
            self._resend_view_change()
        if self._status_at is not None and now >= self._status_at:
            self._status_at = None
            behind = self._view_behind() is not None
            if not self._in_view_change and (self._seen_above or behind or self._stalled()):
                self._broadcast_status()
            self._seen_above = False
        if self._fetch_deadline is not None and now >= self._fetch_deadline:
            if self.app.last_executed >= self._fetch_seq:
                self._fetch_deadline = None
            else:
                self._send_fetch()

    def _resend_view_change(self) -> None:
        """Repeat our VIEW-CHANGE while the view change lasts (lost messages, late peers).

        The network may drop messages; PBFT retransmits rather than assume
        delivery. A primary already in that view answers with its NEW-VIEW.
        """
        own = self._vc_latest.get(self.id)
        if not self._in_view_change or own is None or own.new_view != self._view:
            self._vc_resend_at = None
            return
        self.stats["resent.view-change"] += 1
        self._broadcast(own)
        self._vc_resend_at = self._now + self.config.view_change_timeout_ms

    def _next_deadline(self) -> int | None:
        deadlines = [
            d
            for d in (
                self._batch_deadline,
                self._vc_deadline,
                self._vc_resend_at,
                self._status_at,
                self._fetch_deadline,
            )
            if d is not None
        ]
        return min(deadlines) if deadlines else None

    # -------------------------------------------------------------- persistence

    def _rescan_clients(self, after: int) -> None:
        """Rebuild each client's last executed timestamp, and its reply, from the application.

        Replies to requests executed after ``after`` were never persisted. If the
        application can say what those requests returned (the optional
        ``results_at(seq)``, see ``pbft.api.Application``) the reply cache is
        rebuilt, so a client retransmitting after our restart is answered
        rather than ignored. Otherwise the entry is dropped, which is still
        safe and live: with at most f faulty (crashed ones included), f+1
        correct replicas that did not restart hold the reply.
        """
        results_at = getattr(self.app, "results_at", None)
        latest: dict[int, tuple[Request, bytes]] = {}
        for seq in range(after + 1, self.app.last_executed + 1):
            batch = self.app.batch_at(seq)
            if batch is None:
                continue
            results = results_at(seq) if results_at is not None else None
            fresh = self._freshness(batch.requests)
            for k, req in enumerate(batch.requests):
                if not fresh[k]:
                    continue
                self._last_ts[req.client] = req.timestamp
                self._replies.pop(req.client, None)
                if results is not None and len(results) == len(batch.requests):
                    latest[req.client] = (req, results[k])
                else:
                    latest.pop(req.client, None)
        for client in sorted(latest):
            req, result = latest[client]
            self._replies[client] = self._sign(
                Reply(self._view, req.timestamp, client, self.id, result, b"")
            )
        self._replies_seq = self.app.last_executed

    @classmethod
    def restore(
        cls,
        replica_id: int,
        config: PBFTConfig,
        auth: Authenticator,
        app: Application,
        records: Iterable[bytes],
    ) -> Replica:
        """Rebuild a replica from what it persisted (a storage error raises: the node stops)."""
        replica = cls(replica_id, config, auth, app)
        # Client bookkeeping comes from the snapshot (if any) plus a rescan after it.
        replica._last_ts.clear()
        replica._replies.clear()
        replica._replies_seq = 0
        for data in records:
            replica._load_record(decode(data))
        replica._rescan_clients(replica._replies_seq)
        if not replica._in_view_change and replica.primary == replica.id:
            top = max(
                (
                    s.seq
                    for s in replica._log.values()
                    if s.pre_prepare is not None and s.pre_prepare.view == replica._view
                ),
                default=0,
            )
            replica._seq_next = max(top, replica._h, app.last_executed) + 1
            held = (s.pre_prepare for s in replica._log.values() if s.pre_prepare is not None)
            mine = [pp.timestamp_ms for pp in held if pp.replica == replica.id]
            replica._last_pp_time = max([replica._last_agreed, *mine])
        replica._arm_pending = True
        return replica

    def _load_record(self, rec: Any) -> None:
        kind = type(rec)
        if kind is Snapshot:
            self._log.clear()
            self._view, self._in_view_change = rec.view, rec.in_view_change
            self._set_stable(rec.stable_seq, rec.proof)
            self._replies = {r.client: r for r in rec.replies}
            self._last_ts = dict(rec.client_timestamps)
            self._replies_seq = rec.replies_seq
            self._vc_latest.clear()
            if rec.view_change is not None:
                self._vc_latest[self.id] = rec.view_change
            self._new_view = rec.new_view
            for proof in rec.prepared:
                self._load_record(proof)
            for msg in rec.sent:
                self._load_record(msg)
        elif kind is ViewRecord:
            if rec.view != self._view:
                for slot in self._log.values():
                    slot.enter_view(rec.view)
            self._view, self._in_view_change = rec.view, rec.in_view_change
        elif kind is StableRecord:
            self._set_stable(rec.seq, rec.proof)
        elif kind is PreparedProof:
            pp = rec.pre_prepare
            if pp.seq <= self._h:
                return
            slot = self._slot(pp.seq)
            held = slot.prepared_proof
            if held is None or held.pre_prepare.view <= pp.view:
                slot.prepared_proof = rec
            if pp.view == self._view:
                slot.pre_prepare = pp
                for p in rec.prepares:
                    slot.add_prepare(p)
                slot.prepared = True
        elif kind in (PrePrepare, Prepare, Commit):
            if rec.seq <= self._h or rec.view != self._view:
                return
            slot = self._slot(rec.seq)
            if kind is PrePrepare:
                slot.pre_prepare = rec
            elif kind is Prepare:
                slot.sent_prepare = rec
                slot.add_prepare(rec)
            else:
                slot.sent_commit = rec
                slot.add_commit(rec)
        elif kind is ViewChange:
            self._vc_latest[self.id] = rec
        elif kind is NewView:
            self._new_view = rec
            for pp in rec.pre_prepares:
                if pp.seq > self._h and rec.view == self._view:
                    self._slot(pp.seq).pre_prepare = pp
        else:
            raise ValueError(f"unexpected persisted record {kind.__name__}")

    def _set_stable(self, seq: int, proof: tuple[Checkpoint, ...]) -> None:
        self._h = seq
        self._stable_proof = proof
        self._stable_digest = proof[0].digest if proof else GENESIS_HASH
        for s in [s for s in self._log if s <= seq]:
            del self._log[s]

    def _arm_after_restore(self) -> None:
        self._arm_pending = False
        own = self._vc_latest.get(self.id)
        if self._in_view_change and own is not None and own.new_view == self._view:
            # Others may have moved on while we were down: announce where we are, so
            # the primary of that view answers with its NEW-VIEW.
            self._broadcast(own)
            self._vc_resend_at = self._now + self.config.view_change_timeout_ms
            self._arm_view_change_timer()
        if self.app.last_executed < self._h:
            self._start_fetch()
        self._arm_status()
