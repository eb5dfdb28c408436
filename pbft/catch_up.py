"""Messages from views ahead of ours: the bounded stash and catching up with a missed view.

A replica that is slower to a view change, or was away during one, receives
votes for a view it has not entered. It keeps a bounded, per-sender-quota
stash of them to replay once it enters that view, and counts the senders as
evidence: once f+1 replicas are seen in a later view it asks for that view's
NEW-VIEW (outside a view change) or joins it (during one), OSDI'99 4.5.2 and
TOCS'02 5.2.
"""

from __future__ import annotations

from pbft.messages import (
    PrePrepare,
)
from pbft.replica_state import VoteMessage
from pbft.rules import ReplicaRules


class CatchUp(ReplicaRules):
    """The future-view stash and the evidence that we fell behind a view."""

    def _stash_message(self, msg: VoteMessage) -> None:
        """Keep a message for a view we have not entered yet, within bounds a peer cannot abuse.

        Only views up to K above ours and sequence numbers inside our window
        are worth keeping (anything else is garbage-collected at the next view
        or checkpoint, or never usable), an oversized batch is refused before
        it takes memory, and each sender gets a quota, so one faulty replica
        cannot crowd out the correct ones' messages. A far-ahead view is still
        noted as evidence for catching up.
        """
        if msg.view > self.view:
            self._notice_view_ahead(msg.replica, msg.view)
        elif self.in_view_change:
            self._active_in_view.add(msg.replica)  # it installed the view we are changing to
        if msg.view > self.view + self.config.stash_views_ahead:
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

    def _view_behind(self) -> int | None:
        """The highest view that enough replicas were seen in, if it is above ours.

        It is the (f+1)-th highest view in the evidence, so at least one correct
        replica has reached it; one faulty replica alone, claiming any view,
        never moves it.
        """
        views = sorted((v for v in self._ahead.values() if v > self.view), reverse=True)
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
        if self.in_view_change:
            self._start_view_change(target)
            return
        if target > self._catch_up_asked:
            self._catch_up_asked = target
            self.stats["catch-up.asked"] += 1
            status = self._status(ask=True)
            for peer in sorted(r for r, v in self._ahead.items() if v >= target):
                self._send(peer, status)
        self._arm_status()

    def _replay_stash(self) -> None:
        ready = [m for m in self._stash if m.view == self.view]
        if not ready:
            return
        self._stash = [m for m in self._stash if m.view != self.view]
        for msg in ready:
            self.stats["stash.replayed"] += 1
            self._handlers[type(msg)](msg, msg.replica)
