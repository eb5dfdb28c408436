"""A Byzantine new primary cannot hold the view change open by claiming to work in its view.

``view_installed_elsewhere`` lets a replica whose view-change timer expires
wait one more timeout when f+1 replicas showed they work in the view it is
changing to. The attack: the primary of that view withholds its NEW-VIEW and
keeps broadcasting a STATUS that says it is working in the view (not in a
view change), so that, if its word alone were evidence, every correct replica
would wait for a NEW-VIEW that never comes, for ever. With f+1 distinct
signers required (one of them then correct, and a correct replica works in a
view only after installing its NEW-VIEW, which it hands on when asked), the
f = 1 liar is not enough: the correct replicas move on to the next view and
order there. The mutant that counts f signers as evidence is stalled by it.
"""

from __future__ import annotations

import pytest
from pbft_harness import TIMEOUT, VIEW_CHANGE_SETTINGS, Cluster

from pbft.messages import Request, Status
from pbft.replica import Replica

SETTINGS = VIEW_CHANGE_SETTINGS
LIAR = 1
"""Primary of view 1, the view the others change to."""


class ClaimsItsViewWithoutNewView(Replica):
    """Never sends its NEW-VIEW, never leaves its view; every R says it works in that view."""

    def _maybe_send_new_view(self) -> None:
        pass

    def _start_view_change(self, new_view: int) -> None:
        if new_view <= LIAR:  # it stays in the view it leads, to keep vouching for it
            super()._start_view_change(new_view)

    def _status(self, ask: bool) -> Status:
        honest = super()._status(ask)
        return self._sign(
            Status(
                honest.view,
                False,
                honest.stable_seq,
                honest.last_executed,
                (),
                (),
                (),
                ask,
                self.id,
                b"",
            )
        )

    def _status_due(self) -> bool:
        return True


class CountsFSignersAsEvidence(Replica):
    """The weakened rule: f replicas (possibly all faulty) showing the view are enough."""

    def view_installed_elsewhere(self) -> bool:
        return len(self._active_in_view) >= self.f


@pytest.mark.parametrize("cls", [Replica, CountsFSignersAsEvidence])
def test_f_liars_claiming_the_view_do_not_hold_the_correct_replicas_in_it(
    cls: type[Replica],
) -> None:
    c = Cluster(n=4, clients=2, settings=SETTINGS, latency=(1, 5), replica_class=cls)
    c.replicas[LIAR] = ClaimsItsViewWithoutNewView(
        LIAR, c.config, c.keyring.authenticator(LIAR), c.apps[LIAR]
    )
    c.run_requests(2)
    # Primary 0 never sees a request: the backups suspect it and change to view 1.
    c.filters.append(lambda _s, to, msg: not (to == 0 and isinstance(msg, Request)))
    c.run_requests(1, max_ms=40 * TIMEOUT)
    correct = [r for i, r in enumerate(c.replicas) if i != LIAR]
    if cls is Replica:
        # View 1 never starts; the correct replicas move on to view 2 (primary 2 is
        # correct) and order there.
        assert all((r.view, r.in_view_change) == (2, False) for r in correct)
        assert {c.apps[i].last_executed for i in (0, 2, 3)} == {6}
        c.assert_safe()
    else:
        # Stalled: every correct replica waits in the view change to view 1 for good.
        assert all((r.view, r.in_view_change) == (1, True) for r in correct)
        assert all(r.stats["view-change.awaits-new-view"] >= 5 for r in correct)
        assert {c.apps[i].last_executed for i in (0, 2, 3)} == {4}
