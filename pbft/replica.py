"""The PBFT replica as a pure state machine (Castro & Liskov, OSDI'99; TOCS'02).

``Replica.step(event) -> Output`` is the whole interface: a received message or
a timer tick goes in; what to persist, whom to send what, which batches were
executed and when to wake up come out. Nothing here reads a clock, draws random
numbers or touches the network, so the same events give the same outputs.

The rules that safety rests on sit in small methods of ``pbft.rules.ReplicaRules``
(quorum sizes, ``authentic``, ``accepts_pre_prepare_from``, ``in_watermarks``,
``prepared_certificate``, ``committed_local``, ``stable_proof``, the proof
validators, ``valid_new_view_certificate``, ``new_view_min_s``,
``certificate_wins``, ``new_view_o_ok``, ``next_executable``; docs/architecture.md
lists them all with their paper sections), so tests/pbft_mutants.py can break
exactly one rule per subclass and the property suite must notice.

``Replica`` is assembled from one mixin per part of the protocol, all sharing
the state created by ``pbft.replica_state.ReplicaState``:

* ``pbft.rules``: the safety rules above and the validity of every proof;
* ``pbft.normal_case``: requests, batching, PRE-PREPARE/PREPARE/COMMIT;
* ``pbft.execution``: in-order, exactly-once execution and replies;
* ``pbft.checkpoints``: checkpoints, watermarks, garbage collection;
* ``pbft.state_transfer``: fetching batches up to a stable checkpoint;
* ``pbft.retransmit``: STATUS messages after a stall;
* ``pbft.view_change``: the view-change timer, VIEW-CHANGE and NEW-VIEW;
* ``pbft.catch_up``: the future-view stash and catching up with a missed view;
* ``pbft.persistence``: snapshots and restoring after a crash.

This module holds what ties them together: message dispatch and the timers.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from ledger.codec import CodecError, decode
from pbft.api import (
    Application,
    Authenticator,
    Deliver,
    Event,
    Output,
    PBFTConfig,
)
from pbft.catch_up import CatchUp
from pbft.checkpoints import Checkpointing
from pbft.execution import Execution
from pbft.messages import (
    Checkpoint,
    Commit,
    FetchState,
    NewView,
    Prepare,
    PrePrepare,
    Request,
    StateChunk,
    Status,
    ViewChange,
)
from pbft.normal_case import NormalCase
from pbft.persistence import Persistence
from pbft.retransmit import Retransmission
from pbft.state_transfer import StateTransfer
from pbft.view_change import ViewChanging

STALE: Any = object()
"""``Replica._soonest`` after a timer was set, until the soonest one is worked out again."""


def _deadline(name: str) -> Any:
    """The property ``name`` of ``Replica``: a timer (absolute ms, or None) that tells ``step``.

    The five timers (``_batch_deadline``, ``_vc_deadline``, ``_vc_resend_at``,
    ``_status_at``, ``_fetch_deadline``) are set all over the replica's parts,
    and ``step`` needs the soonest of them after every event. Reading five
    attributes per event cost about 1% of a run at n = 16, yet a timer is set
    only a few times per batch. So each is a property: its value lives in
    ``_timer<name>``, reading goes straight to C (``attrgetter``), and setting
    it also marks ``_soonest`` stale; ``step`` reads one attribute and works the
    soonest out again only when it is stale. A property read still costs more
    than a plain attribute, so the one read made per vote (``_status_at`` in
    ``NormalCase._on_agreement``) reads the stored value directly.
    """
    stored = "_timer" + name

    def set_deadline(replica: Replica, value: int | None) -> None:
        setattr(replica, stored, value)
        replica._soonest = STALE

    return property(attrgetter(stored), set_deadline, doc=f"A timer (``{name}``).")


class Replica(
    NormalCase,
    Execution,
    Checkpointing,
    StateTransfer,
    Retransmission,
    ViewChanging,
    CatchUp,
    Persistence,
):
    """One PBFT replica; see the module docstring and docs/contracts.md."""

    # Every attribute of a replica, in slots rather than an instance dict. A replica
    # has about 60 attributes, more than the 30 that CPython 3.11 keeps as inline
    # values sharing their class's keys, so with a dict every ``self.x`` of every
    # message went through a hashed dict (the handlers read about 20 per message).
    # A slot is read at a fixed offset: this saves about 4.5% of the instructions of
    # a run at n = 16. The mixins set these names in their ``__init__``; a name not
    # listed still works (it lands in the instance dict, as in a subclass), and
    # tests/test_slots.py fails if the replica's own code sets one.
    __slots__ = (
        "_active_in_view",
        "_ahead",
        "_arm_pending",
        "_blank",
        "_catch_up_asked",
        "_commits_needed",
        "_cp_votes",
        "_far_cp",
        "_fetch_attempt",
        "_fetch_seq",
        "_flush_owed",
        "_forwarded",
        "_h",
        "_handlers",
        "_idle",
        "_last_agreed",
        "_last_pp_time",
        "_last_ts",
        "_late_vc_answered",
        "_log",
        "_my_cp",
        "_new_view",
        "_now",
        "_out",
        "_pending",
        "_prepares_needed",
        "_primary_of",
        "_proposed",
        "_quorum",
        "_replies",
        "_replies_seq",
        "_seen_above",
        "_seq_next",
        "_soonest",
        "_stable_proof",
        "_stash",
        "_stash_limit",
        "_stash_quota",
        "_status_answered",
        "_timer_batch_deadline",
        "_timer_fetch_deadline",
        "_timer_status_at",
        "_timer_vc_deadline",
        "_timer_vc_resend_at",
        "_vc_attempts",
        "_vc_latest",
        "_waiting",
        "_window",
        "_wire",
        "app",
        "auth",
        "config",
        "f",
        "id",
        "in_view_change",
        "n",
        "stats",
        "view",
    )

    _batch_deadline = _deadline("_batch_deadline")
    _vc_deadline = _deadline("_vc_deadline")
    _vc_resend_at = _deadline("_vc_resend_at")
    _status_at = _deadline("_status_at")
    _fetch_deadline = _deadline("_fetch_deadline")
    _timer_batch_deadline: int | None
    _timer_vc_deadline: int | None
    _timer_vc_resend_at: int | None
    _timer_status_at: int | None
    _timer_fetch_deadline: int | None

    def __init__(
        self, replica_id: int, config: PBFTConfig, auth: Authenticator, app: Application
    ) -> None:
        super().__init__(replica_id, config, auth, app)
        self._handlers = {
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
        self._blank: Output | None = None
        """An Output no one else has seen, for the next step to write into (see ``step``)."""
        self._idle = Output()
        """The Output of the last idle step (nothing but a timer), handed out again while
        the timer is the same."""
        self._soonest: int | None = STALE
        """The soonest of the five timers (the ``_deadline`` properties), or ``STALE``
        after one was set."""

    def step(self, event: Event) -> Output:
        """One event in, the host's orders out (see ``pbft.api``).

        Most steps (a vote that completes nothing) order nothing but a timer. Such
        an idle step returns the previous idle step's Output when it names the same
        timer and is still untouched, and the blank Output it wrote into is kept for
        the next step: no Output is built per vote. Outputs are never changed after
        they are returned.
        """
        now = self._now = event.now_ms
        self._out = out = self._blank or Output()
        if self._arm_pending:
            self._arm_after_restore()
        if type(event) is Deliver:
            self._receive(event.sender, event.data)
        # The soonest timer. Most steps (a vote arriving) set no timer, and find the
        # soonest known and not due: one test, and no call, for them.
        soonest = self._soonest
        if soonest is STALE or (soonest is not None and soonest <= now):
            soonest = self._due_timers()
        # Three lists tell whether this step ordered anything: the replica never sets
        # ``compact`` without a snapshot in ``persist`` (``_make_stable``) nor adds to
        # ``fresh`` without ``executed`` (``Execution._apply``), and no one else has seen
        # ``out`` yet.
        if out.send or out.persist or out.executed:
            self._blank = None
            out.wake_at_ms = soonest
            return out
        self._blank = out
        idle = self._idle
        # Untouched since it was handed out (the test above, on the Output it would be).
        if idle.wake_at_ms != soonest or (
            idle.send or idle.persist or idle.executed or idle.compact or idle.fresh
        ):
            idle = self._idle = Output(wake_at_ms=soonest)
        # Between steps ``_out`` is what was returned, as after a busy step.
        self._out = idle
        return idle

    def _due_timers(self) -> int | None:
        """Fire the timers if one is due, then return the soonest (``step``'s rare case).

        Called when a timer was set (``_soonest`` is stale) or the soonest is due.
        Timers fire at most once per step; what they set is worked out after.
        """
        soonest = self._soonest = self._soonest_deadline()
        if soonest is not None and soonest <= self._now:
            self._fire_timers()
            soonest = self._soonest
            if soonest is STALE:
                soonest = self._soonest = self._soonest_deadline()
        return soonest

    def _soonest_deadline(self) -> int | None:
        """The soonest timer, None if none is set.

        Worked out only after a timer was set (a few times per batch, see the
        timer properties), so a loop: no longer unrolled as when it ran every step.
        """
        soonest = None
        for deadline in (
            self._timer_batch_deadline,
            self._timer_vc_deadline,
            self._timer_vc_resend_at,
            self._timer_status_at,
            self._timer_fetch_deadline,
        ):
            if deadline is not None and (soonest is None or deadline < soonest):
                soonest = deadline
        return soonest

    def _receive(self, sender: int, data: bytes) -> None:
        try:
            msg: Any = decode(data)
        except CodecError as exc:
            self._drop(f"undecodable.{exc.reason}")
            return
        kind = type(msg)
        try:  # a subscript, not get(): cheaper for every message, and a miss is rare
            handler = self._handlers[kind]
        except KeyError:
            self._drop("unexpected-type")
            return
        if kind is not Request and not 0 <= msg.replica < self.n:
            self._drop("unknown-sender")
            return
        if kind is ViewChange:
            self._wire = data  # its handler checks the signature (a mutant hook)
        elif not self.authentic(msg, data):
            self._drop("bad-signature")
            return
        handler(msg, sender)

    def _fire_timers(self) -> None:
        now = self._now
        if self._batch_deadline is not None and now >= self._batch_deadline:
            self._batch_deadline = None
            self._try_propose(flush=True)
        if self._vc_deadline is not None and now >= self._vc_deadline:
            self._vc_deadline = None
            if self.in_view_change:
                self._view_change_expired()
            elif self._waiting and self._is_backup():
                if self.group_is_ahead():
                    self._vc_deadline = now + self._vc_timeout()
                    self.stats["view-change.deferred"] += 1
                elif self.suspects_primary():
                    self._start_view_change(self.view + 1)
                else:
                    self._forward_waiting()
                    self._vc_deadline = now + self._vc_timeout()
        if self._vc_resend_at is not None and now >= self._vc_resend_at:
            self._resend_view_change()
        if self._status_at is not None and now >= self._status_at:
            self._status_at = None
            if self._status_due():
                self._broadcast_status()
            self._seen_above = False
        if self._fetch_deadline is not None and now >= self._fetch_deadline:
            if self.app.last_executed >= self._fetch_seq:
                self._fetch_deadline = None
            else:
                self._send_fetch()
