"""PBFT's normal case: requests, batching by the primary, and PRE-PREPARE, PREPARE, COMMIT.

A request is learned (and starts the backups' view-change timer), the primary
batches pending requests under the watermark window and pre-prepares them,
and each slot moves through prepared (pre-prepare plus Q - 1 matching
PREPAREs) to committed-local (Q COMMITs), after which ``Execution`` runs it
(OSDI'99 4.1-4.2; Q is the quorum, 2f+1 for n = 3f+1). Messages for a view we
have not entered go to the stash (``CatchUp``); the acceptance rules and the
prepared and committed-local predicates live in ``ReplicaRules``.
"""

from __future__ import annotations

from typing import Any

from ledger.codec import encode
from pbft.api import (
    CLIENT_ID_BASE,
    Application,
    Authenticator,
    PBFTConfig,
)
from pbft.log import Slot, VoteKey, record_vote, vote_key
from pbft.messages import (
    Commit,
    Prepare,
    PrePrepare,
    Request,
    batch_digest,
)
from pbft.rules import ReplicaRules


class NormalCase(ReplicaRules):
    """Requests, batching and the three-phase agreement on each slot."""

    _timer_status_at: int | None
    """Where ``Replica._status_at`` keeps its value (``pbft.replica._deadline``)."""

    def __init__(
        self, replica_id: int, config: PBFTConfig, auth: Authenticator, app: Application
    ) -> None:
        super().__init__(replica_id, config, auth, app)
        # Asked once: quorum sizes follow from the frozen config, and every vote is
        # compared with them (a subclass overriding the hooks is still the one asked).
        self._prepares_needed = self.prepared_quorum()
        self._commits_needed = self.commit_quorum()

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
        new = known is None or known.timestamp < req.timestamp
        if new:
            self._learn_request(req)
        if not self._is_backup():
            if (req.client, req.timestamp) not in self._proposed:
                self._pending[req.client] = req
                self._try_propose()
        elif (from_client or new) and not self.in_view_change:
            # A backup relays to the primary and watches it (OSDI'99 4.4 liveness); a
            # request another backup forwarded (``_forward_waiting``) is relayed once.
            self._send(self.config.primary(self.view), req)

    def _learn_request(self, req: Request) -> None:
        self._waiting[req.client] = req
        self._watch_waiting()

    def _watch_waiting(self) -> None:
        """Timers that run while requests wait: STATUS, and a backup's view-change timer."""
        if self._status_at is None:
            self._arm_status()
        # In a view change the timer waits for Q VIEW-CHANGEs (OSDI'99 4.5.2): arming it
        # here would let a replica climb views alone with every new request.
        if self._vc_deadline is None and not self.in_view_change and self._is_backup():
            self._vc_deadline = self._now + self._vc_timeout()

    def _try_propose(self, flush: bool = False, executed: bool = False) -> None:
        """Cut batches; ``executed``: called because a batch just executed (pipelining)."""
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
            if self._pipeline_full(len(self._pending) >= cfg.batch_size, executed):
                break  # the next execution, or the timeout with none in flight, cuts it
            clients = list(self._pending)[: cfg.batch_size]
            self._propose(tuple(self._pending.pop(c) for c in clients))
            flush = False
        if not self._pending:
            self._batch_deadline = None
        elif self._batch_deadline is None:
            self._batch_deadline = self._now + cfg.batch_timeout_ms

    def _pipeline_full(self, full_batch: bool, executed: bool) -> bool:
        """Whether bounded pipelining holds the next batch back (never without the option)."""
        bound = self.config.max_batches_in_flight
        if bound is None:
            return False
        in_flight = self._seq_next - 1 - self.app.last_executed
        if in_flight >= bound:
            return True
        # A partial batch waits while others are in flight, unless one just executed.
        return in_flight > 0 and not full_batch and not executed

    def _propose(self, requests: tuple[Request, ...]) -> None:
        seq = self._seq_next
        self._seq_next += 1
        # The agreed time is the primary's clock, kept non-decreasing across batches.
        self._last_pp_time = max(self._now, self._last_pp_time)
        pp = self._sign(
            PrePrepare(
                self.view, seq, batch_digest(requests), self._last_pp_time, requests, self.id, b""
            )
        )
        for r in requests:
            self._proposed.add((r.client, r.timestamp))
        slot = self._slot(seq)
        slot.pre_prepare = pp
        self._persist(pp)
        self._broadcast(pp)
        self._check_prepared(slot)

    def _on_agreement(self, msg: Any, _sender: int) -> None:
        """The handler of PRE-PREPARE, PREPARE and COMMIT: their shared gate, then their part.

        ``msg`` is one of the three (the ``VoteMessage`` the handler table sends here),
        typed ``Any`` because the branches below tell them apart by ``type()``.

        The gate is the view (a message for a later view goes to the stash) and
        the watermark window. One handler rather than a gate method that three
        handlers call: the gate runs for every vote, most of which decide nothing,
        and a call is a good part of what such a vote costs.
        """
        view = msg.view
        if view != self.view or self.in_view_change:  # one test for the usual case
            if view < self.view:
                self._drop("old-view")
            else:
                self._stash_message(msg)
            return
        seq = msg.seq
        if not self.in_watermarks(seq):
            self._drop("outside-watermarks")
            if seq > self._h:
                # Others work above our window: we probably missed checkpoints.
                self._seen_above = True
                self._arm_status()
            return
        # The STATUS timer's stored value, read without its property (``Replica._status_at``):
        # this runs for every vote, and only setting a timer needs to go through it.
        if self._timer_status_at is None and seq > self.app.last_executed:
            self._arm_status()
        kind = type(msg)  # type() rather than isinstance(): cheaper, and decoding gives exact types
        if kind is PrePrepare:
            self._accept_pre_prepare(msg)
            return
        is_prepare = kind is Prepare
        if is_prepare and not self.accepts_prepare_from(msg):
            self._drop("prepare-from-primary")
            return
        try:  # a subscript, not get(): the slot is there for all but the first vote
            slot = self._log[seq]
        except KeyError:
            slot = self._slot(seq)
        table: dict[VoteKey, dict[int, Any]] = slot.prepares if is_prepare else slot.commits
        voters = table.get((view, msg.digest, msg.timestamp_ms))
        replica = msg.replica
        if voters is not None and len(table) == 1 and replica not in voters:
            # The usual vote: its key is the only one voted for here, so the sender has
            # not voted in this view unless it is among these voters (``record_vote``
            # checks every key; taking the shortcut here saves a call per vote).
            voters[replica] = msg
        else:
            voters = record_vote(table, msg)
            if voters is None:
                self._drop("duplicate")
                return
        # The common case, a matching vote short of the quorum, decides nothing: skip the check.
        pp = slot.pre_prepare
        if pp is None:
            return
        if is_prepare:
            if slot.prepared or self.decides_nothing(voters, msg, pp, self._prepares_needed):
                return
            self._check_prepared(slot)
        elif (
            slot.prepared
            and not slot.committed
            and not self.decides_nothing(voters, msg, pp, self._commits_needed)
        ):
            self._check_committed(slot)

    _on_pre_prepare = _on_prepare = _on_commit = _on_agreement

    def _accept_pre_prepare(self, pp: PrePrepare) -> None:
        """A PRE-PREPARE inside our view and window (``_on_agreement``)."""
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
        waiting, last_ts = self._waiting, self._last_ts
        learned = False
        for req in pp.requests:
            known = waiting.get(req.client)
            if req.timestamp > last_ts.get(req.client, -1) and (
                known is None or known.timestamp < req.timestamp
            ):
                waiting[req.client] = req
                learned = True
        if learned:  # they depend on the time alone: armed once per batch, not per request
            self._watch_waiting()
        if pp.replica != self.id:
            prepare = mine
            if prepare is None or prepare.view != pp.view:
                prepare = self._signed(
                    Prepare, pp.view, pp.seq, pp.digest, pp.timestamp_ms, self.id
                )
                slot.sent_prepare = prepare
                self._persist(prepare)
            slot.add_prepare(prepare)
            self._broadcast(prepare)
        self._check_prepared(slot)

    def _check_prepared(self, slot: Slot) -> None:
        if slot.prepared:
            return
        proof = self.prepared_certificate(slot)
        if proof is None:
            return
        pp = proof.pre_prepare
        slot.prepared = True
        slot.prepared_proof = proof
        # ``encode`` remembers the bytes (``_persist`` does not): the replicas sharing this
        # certificate (``rules.shared_proof``) and every snapshot holding it reuse them.
        self._out.persist.append(encode(proof))
        commit = slot.sent_commit
        if commit is None or vote_key(commit) != vote_key(pp):
            commit = self._signed(Commit, pp.view, pp.seq, pp.digest, pp.timestamp_ms, self.id)
            slot.sent_commit = commit
            self._persist(commit)
        slot.add_commit(commit)
        self._broadcast(commit)
        self._check_committed(slot)

    def _check_committed(self, slot: Slot) -> None:
        if slot.committed or not self.committed_local(slot):
            return
        slot.committed = True
        self._execute_ready()
        if self.config.max_batches_in_flight is not None and self._pending:
            self._try_propose(flush=True, executed=True)
