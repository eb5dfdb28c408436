"""View changes: the timer, VIEW-CHANGE and NEW-VIEW (OSDI'99 4.4-4.5; TOCS'02 4.5).

A backup whose request waits too long moves to the next view and sends its
stable checkpoint proof C and prepared certificates P; the new primary, once it
holds Q VIEW-CHANGEs (the quorum, 2f+1 for n = 3f+1), computes O and sends
NEW-VIEW; every backup checks V
and recomputes O before installing it. The timeout doubles with each attempt,
and f+1 replicas asking for later views pull a replica along (the join rule).
"""

from __future__ import annotations

from pbft.messages import (
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
    wire_signing_bytes,
)
from pbft.newview import NewViewPlan
from pbft.records import ViewRecord
from pbft.rules import ReplicaRules

MAX_BACKOFF_DOUBLINGS = 10
"""Cap on the view-change timeout's exponent (2**10 times the base at most)."""


class ViewChanging(ReplicaRules):
    """The view-change protocol, from timeout to installing a NEW-VIEW."""

    def _vc_timeout(self) -> int:
        """T after progress and in the first view change, then 2T, 4T, ... (OSDI'99 4.5.2)."""
        doublings = min(max(self._vc_attempts - 1, 0), MAX_BACKOFF_DOUBLINGS)
        return self.config.view_change_timeout_ms << doublings

    def _start_view_change(self, new_view: int) -> None:
        """Move to ``new_view`` and send VIEW-CHANGE with C and P (OSDI'99 4.4)."""
        self.view = new_view
        self.in_view_change = True
        self._active_in_view.clear()
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

    def _view_change_expired(self) -> None:
        """No NEW-VIEW in time: move on to the next view (OSDI'99 4.5.2), unless it exists.

        When f+1 replicas showed, since this view change began or last
        waited, that they work in the view we are changing to (a correct one
        among them installed its NEW-VIEW), the NEW-VIEW was lost on the way
        to us, not withheld.
        Moving on would send us alone into a view nobody joins, for good: a
        replica may not go back to a view below one it sent VIEW-CHANGE for.
        So we wait one more timeout and keep asking for it every R
        (``_status_due``); the correct one answers (``owed_new_view``). The
        evidence must be renewed for every extra timeout, so a group that
        stops working in that view lets the timer move us on as usual.
        Deferring a view change never touches safety.
        """
        if self.view_installed_elsewhere():
            self._active_in_view.clear()
            self._vc_deadline = self._now + self._vc_timeout()
            self.stats["view-change.awaits-new-view"] += 1
            self._arm_status()
            return
        self._start_view_change(self.view + 1)

    def _arm_view_change_timer(self) -> None:
        """In a view change, wait for NEW-VIEW only once Q VIEW-CHANGEs for it arrived.

        OSDI'99 4.5.2: starting the timer earlier lets a replica whose timer
        expired alone run through views by itself, and then the others can
        never gather Q VIEW-CHANGEs for a common view.
        """
        if not self.in_view_change or self._vc_deadline is not None:
            return
        view = self.view
        votes = sum(1 for vc in self._vc_latest.values() if vc.new_view == view)
        if votes >= self.view_change_quorum():
            self._vc_deadline = self._now + self._vc_timeout()
            self._arm_status()  # ask for the NEW-VIEW every R meanwhile (``_status_due``)

    def _resend_view_change(self) -> None:
        """Repeat our VIEW-CHANGE while the view change lasts (lost messages, late peers).

        The network may drop messages; PBFT retransmits rather than assume
        delivery. A primary already in that view answers with its NEW-VIEW.
        """
        own = self._vc_latest.get(self.id)
        if not self.in_view_change or own is None or own.new_view != self.view:
            self._vc_resend_at = None
            return
        self.stats["resent.view-change"] += 1
        self._broadcast(own)
        self._vc_resend_at = self._now + self.config.view_change_timeout_ms

    def _on_view_change(self, vc: ViewChange, _sender: int) -> None:
        payload = wire_signing_bytes(self._wire, vc.signature)
        if vc.replica == self.id:
            self._drop("own-message")
            return
        nv = self.owed_new_view(vc.new_view, True) if not self.in_view_change else None
        if nv is not None and nv.view == self.view:
            # A replica late to the view we are in (its NEW-VIEW lost, or it was
            # away): any of us hands it the NEW-VIEW, which carries its own proof.
            if not self.view_change_signature_ok(vc, payload):
                self._drop("bad-view-change")
            elif self._may_answer(vc.replica, self._late_vc_answered):
                self.stats["resent.new-view"] += 1
                self._send(vc.replica, nv)
            return
        prior = self._vc_latest.get(vc.replica)
        if prior is not None and prior.new_view >= vc.new_view:
            self._drop("duplicate")
            return
        if vc.new_view < self.view:
            self._drop("old-view")
            return
        if not self.valid_view_change(vc, payload):
            self._drop("bad-view-change")
            return
        self._vc_latest[vc.replica] = vc
        # Join rule (OSDI'99 4.5.2): f+1 replicas want views above ours, so a correct
        # one does; move to the smallest of them without waiting for our timer.
        above = [v.new_view for r, v in self._vc_latest.items() if r != self.id]
        above = [v for v in above if v > self.view]
        if len(above) >= self.view_evidence_quorum():
            self._start_view_change(min(above))
            return
        self._arm_view_change_timer()
        self._maybe_send_new_view()

    def _maybe_send_new_view(self) -> None:
        view = self.view
        if not self.in_view_change or self.config.primary(view) != self.id:
            return
        own = self._vc_latest.get(self.id)
        if own is None or own.new_view != view:
            return
        others = sorted(
            r for r, vc in self._vc_latest.items() if vc.new_view == view and r != self.id
        )
        quorum = self.view_change_quorum()
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
        if nv.view < self.view or (nv.view == self.view and not self.in_view_change):
            self._drop("old-view")
            return
        if nv.replica != self.config.primary(nv.view) or nv.replica == self.id:
            self._drop("new-view-not-from-primary")
            return
        if not self.valid_new_view_certificate(nv):
            self._drop("new-view-bad-view-changes")
            return
        plan = self.compute_new_view(nv.view_changes)
        if not self.new_view_o_ok(nv, plan):
            self._drop("new-view-bad-o")
            return
        if not self.in_view_change:
            self.stats["catch-up.new-view"] += 1
        self._enter_view(nv, plan)

    def _enter_view(self, nv: NewView, plan: NewViewPlan) -> None:
        """Install O and resume normal operation in the new view (OSDI'99 4.4)."""
        view = nv.view
        if view != self.view:
            for slot in self._log.values():
                slot.enter_view(view)
        self.view = view
        self.in_view_change = False
        self._vc_resend_at = None
        self._status_at = None
        self._active_in_view.clear()
        self._forwarded.clear()  # a new primary gets both stages of the request timer
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
                prepare = self._signed(Prepare, view, pp.seq, pp.digest, pp.timestamp_ms, self.id)
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
