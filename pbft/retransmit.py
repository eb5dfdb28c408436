"""Retransmission after a stall: STATUS messages (TOCS'02 5.2).

The network may lose messages, and PBFT retransmits rather than assume
delivery. A stalled replica broadcasts what it holds every R; a peer answers
with the pre-prepares, votes, checkpoints or NEW-VIEW it lacks (at most once
per R/2 per sender, so answering cannot be abused), and asks in turn when the
peer holds more than it does.
"""

from __future__ import annotations

from collections.abc import Iterable

from pbft.log import vote_key
from pbft.messages import (
    Request,
    Status,
)
from pbft.rules import ReplicaRules


class Retransmission(ReplicaRules):
    """The stall timer, STATUS messages and the answers to them."""

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
            and (slot.pre_prepare is not None or slot.voters(self.view) > self.f)
            for seq, slot in self._log.items()
        )

    def _status(self, ask: bool) -> Status:
        last = self.app.last_executed
        held = [(seq, self._log[seq]) for seq in sorted(self._log) if seq > last]
        return self._sign(
            Status(
                self.view,
                self.in_view_change,
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
        if self._is_backup() and not self.in_view_change:
            self._relay_waiting()
        self._arm_status()

    def _relay_waiting(self) -> None:
        """Relay the requests we wait for to the primary again (OSDI'99 4.4's relay, repeated).

        A relay lost on the way (a broker restart) of a request whose client
        has given up never reaches the primary otherwise, and only we know the
        request. At most one batch per round.
        """
        primary = self.config.primary(self.view)
        for req in self._unordered_waiting()[: self.config.batch_size]:
            self.stats["resent.request"] += 1
            self._send(primary, req)

    def _forward_waiting(self) -> None:
        """First expiry of the request timer: forward what we wait for to every replica.

        Only requests no PRE-PREPARE we hold carries, at most one batch; each
        receiver learns them (its own timer starts) and relays them to the
        primary. Those, and the waiting requests the primary did pre-prepare,
        are marked: if one still waits at the next expiry, ``suspects_primary``.
        """
        unordered = self._unordered_waiting()
        forwarded = unordered[: self.config.batch_size]
        for req in forwarded:
            self.stats["forwarded.request"] += 1
            self._broadcast(req)
        left = {(req.client, req.timestamp) for req in unordered[len(forwarded) :]}
        self._forwarded = {
            (req.client, req.timestamp)
            for req in self._waiting.values()
            if (req.client, req.timestamp) not in left
        }

    def _unordered_waiting(self) -> list[Request]:
        """What we wait for that no PRE-PREPARE we hold carries (the primary may lack it)."""
        last = self.app.last_executed
        carried = {
            (req.client, req.timestamp)
            for seq, slot in self._log.items()
            if seq > last and slot.pre_prepare is not None
            for req in slot.pre_prepare.requests
        }
        return [r for r in self._waiting.values() if (r.client, r.timestamp) not in carried]

    def _on_status(self, st: Status, _sender: int) -> None:
        if st.replica == self.id:
            self._drop("own-message")
            return
        peer = st.replica
        if st.view > self.view:
            self._notice_view_ahead(peer, st.view)  # evidence counts even if rate-limited
        elif self.in_view_change and st.view == self.view and not st.in_view_change:
            self._active_in_view.add(peer)
        if not self._may_answer(peer):
            return
        self._resend_checkpoints(peer, st.stable_seq)
        if st.view != self.view or st.in_view_change or self.in_view_change:
            nv = self.owed_new_view(st.view, st.in_view_change)
            if nv is not None:
                # The peer missed a view change, or is still in the one to the view
                # we hold the NEW-VIEW of: it proves itself, so any replica holding
                # it may hand it on (see ``_catch_up``). What we hold in this view
                # follows; the peer stashes it until the NEW-VIEW is in.
                self.stats["resent.new-view"] += 1
                self._send(peer, nv)
                if nv.view == self.view and not self.in_view_change:
                    self._resend_slots(peer, st.last_executed, (), (), ())
            return
        self._resend_slots(peer, st.last_executed, st.pre_prepared, st.prepared, st.committed)
        if st.ask and self._lacks_what_peer_has(st):
            self._send(peer, self._status(ask=False))

    def _may_answer(self, peer: int, answered: dict[int, int] | None = None) -> bool:
        """At most one answer per R/2 per sender, in each of two books.

        Each answer may cost up to ~3L messages or a whole NEW-VIEW, so a sender
        cannot make us repeat it at will. A correct stalled replica broadcasts
        every R and may send one STATUS in answer to ours; half of R leaves room
        for both and for latency jitter. Late VIEW-CHANGEs are answered from a
        book of their own (``answered``): a VIEW-CHANGE is a signed message
        anyone can replay, and sharing the STATUS book let a faulty replica
        replaying a peer's old VIEW-CHANGE every R/2 spend that peer's answers
        on NEW-VIEWs it already has, so its real STATUS was never answered.
        """
        book = self._status_answered if answered is None else answered
        last = book.get(peer)
        if last is not None and self._now < last + max(1, self.config.status_interval_ms // 2):
            self._drop("status-rate-limited")
            return False
        book[peer] = self._now
        return True

    def _status_due(self) -> bool:
        """Whether the STATUS timer, on firing, should broadcast.

        Outside a view change: a stall, a view seen ahead, or messages from
        above our window. In a view change: once Q VIEW-CHANGEs promise a
        NEW-VIEW (the timer for it runs), so a lost NEW-VIEW is asked for
        every R instead of waiting out the timeout that would send us alone
        into the next view (Castro's thesis 5.2: status messages during a
        view change; answered by ``owed_new_view``).
        """
        if self.in_view_change:
            return self._vc_deadline is not None
        return self._seen_above or self._view_behind() is not None or self._stalled()

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
