"""A replica whose NEW-VIEW is lost must not end alone in a view change (issue 13).

Found by the live nemesis: a NEW-VIEW lost in a broker restart left one
replica in the view change while the others ordered in the new view. Its timer
then sent it alone into the next view, which nobody joins and which it may
never leave (going back below a view it sent VIEW-CHANGE for is unsafe), so it
followed only by state transfer, one fault from stalling the network.

Staged here deterministically: primary 0 is cut off from requests so the
backups change to view 1, and every NEW-VIEW to replica 3 is lost for a while.
Two rules bring it in (docs/architecture.md, rule table):

* ``owed_new_view``: any replica holding the NEW-VIEW hands it to a peer whose
  STATUS or VIEW-CHANGE shows it still in the view change to that view
  (retransmission, Castro's thesis 5.2), which repairs a loss shorter than the
  view-change timeout;
* ``view_installed_elsewhere``: a timer expiring while f+1 replicas showed they
  work in that view waits and asks again instead of moving on alone, which
  repairs a longer loss.

A backup can also suspect the primary alone, over a request only it holds
whose relay to the primary is lost. Two more rules keep it in the view: the
relay is repeated with each STATUS (``_relay_waiting``), and, with
``two_stage_request_timer`` (on in live networks), the timer's first expiry
forwards the request to every replica and only the second suspects
(``suspects_primary``, BFT-SMaRt's request timeout), which still replaces a
censoring primary.

Each mutant below restores the old behaviour of one rule and strands the replica.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pbft_harness import TIMEOUT, VIEW_CHANGE_SETTINGS, Cluster

from pbft.messages import NewView, Request
from pbft.replica import Replica

# No checkpoint in these runs: the late replica cannot follow by state transfer,
# so it executes the later requests only if it really is in the view.
SETTINGS = VIEW_CHANGE_SETTINGS
LATE = 3


class OwesNewViewOnlyToEarlierViews(Replica):
    """The old retransmission rule: a NEW-VIEW goes only to a peer in an earlier view.

    A peer still in the view change to our view (its NEW-VIEW lost) gets
    nothing, from STATUS or from its VIEW-CHANGE.
    """

    def owed_new_view(self, peer_view: int, peer_in_view_change: bool) -> NewView | None:
        nv = self._new_view
        return nv if nv is not None and peer_view < nv.view else None


class NeverSeesViewInstalled(Replica):
    """The old timer rule: the view-change timer moves on whatever the others do."""

    def view_installed_elsewhere(self) -> bool:
        return False


def lose_new_views_to_the_late_replica(cls: type[Replica], loss_ms: int) -> Cluster:
    """View change 0 -> 1 with every NEW-VIEW to replica 3 lost for ``loss_ms``; then more work."""
    c = Cluster(n=4, clients=2, settings=SETTINGS, latency=(1, 5), replica_class=cls)
    c.run_requests(2)
    lost_from: list[int] = []

    def cut_primary(_s: int, to: int, msg: object) -> bool:
        return not (to == 0 and isinstance(msg, Request))

    def lose_new_view(_s: int, to: int, msg: object) -> bool:
        if to != LATE or not isinstance(msg, NewView):
            return True
        if not lost_from:
            lost_from.append(c.now)
        return c.now >= lost_from[0] + loss_ms

    c.filters += [cut_primary, lose_new_view]
    c.run_requests(2)
    c.filters.remove(cut_primary)
    c.run_requests(3)
    c.run(max_ms=5 * TIMEOUT)
    assert lost_from, "no NEW-VIEW was sent to the late replica"
    return c


def assert_late_replica_orders_in_the_view(c: Cluster) -> None:
    late = c.replicas[LATE]
    assert [(r.view, r.in_view_change) for r in c.replicas] == [(1, False)] * 4
    assert late.stats["view-change"] == 1  # never moved alone to view 2
    assert late.stats["new-view"] == 1 and late.stats["state-transfer"] == 0
    assert c.apps[LATE].last_executed == max(app.last_executed for app in c.apps) == 14
    c.assert_safe()


@pytest.mark.parametrize("cls", [Replica, OwesNewViewOnlyToEarlierViews])
def test_one_lost_new_view_is_fetched_before_the_timer_fires(cls: type[Replica]) -> None:
    c = lose_new_views_to_the_late_replica(cls, loss_ms=1)
    if cls is Replica:
        assert_late_replica_orders_in_the_view(c)
        assert c.replicas[LATE].stats["view-change.awaits-new-view"] == 0  # no wait needed
    else:
        # The mutant strands it: in a view change while the others order in view 1.
        late = c.replicas[LATE]
        assert late.in_view_change and c.replicas[0].view == 1
        assert c.apps[LATE].last_executed < c.apps[0].last_executed


@pytest.mark.parametrize("cls", [Replica, NeverSeesViewInstalled])
def test_new_views_lost_for_several_timeouts_still_bring_it_in(cls: type[Replica]) -> None:
    c = lose_new_views_to_the_late_replica(cls, loss_ms=5 * TIMEOUT)
    late = c.replicas[LATE]
    if cls is Replica:
        assert_late_replica_orders_in_the_view(c)
        assert late.stats["view-change.awaits-new-view"] >= 2
    else:
        # The old rule: alone in view 2 for good, the others ordering in view 1.
        assert (late.view, late.in_view_change) == (2, True)
        assert [r.view for r in c.replicas[:LATE]] == [1, 1, 1]
        assert c.apps[LATE].last_executed < c.apps[0].last_executed


def test_one_replica_claiming_the_view_does_not_hold_the_timer_back() -> None:
    """Evidence needs f+1 replicas: with the new primary crashed, nobody works in view 1.

    Replica 1 (primary of view 1) crashes as the view change starts, so the
    NEW-VIEW never exists; the others must move on to view 2 as usual.
    """
    c = Cluster(n=4, clients=2, settings=SETTINGS, latency=(1, 5))
    c.run_requests(2)
    c.filters.append(lambda _s, to, msg: not (to == 0 and isinstance(msg, Request)))
    c.crash(1)
    c.run_requests(2)
    views = [r.view for i, r in enumerate(c.replicas) if i != 1]
    assert views == [2, 2, 2]
    assert all(r.stats["view-change.awaits-new-view"] == 0 for r in c.replicas)
    c.assert_safe()


class RelaysOnce(Replica):
    """The old rule: a backup relays a client's request to the primary once, never again."""

    def _relay_waiting(self) -> None:
        pass


def order_a_request_only_backup_3_holds(
    cls: type[Replica], settings: dict[str, object], lost: Callable[[int, int, int], bool]
) -> Cluster:
    """Only backup 3 ever gets the request (the client's other copies and its retries
    are lost, as when it gives up); ``lost(sender, to, relays_so_far)`` drops a
    replica's copy of it."""
    c = Cluster(n=4, clients=1, settings=settings, latency=(1, 5), replica_class=cls)
    c.run_requests(1)
    delivered: list[int] = []
    relays: list[int] = []

    def only_to_3(sender: int, to: int, msg: object) -> bool:
        if not isinstance(msg, Request):
            return True
        if sender in c.client_objs:
            if to != LATE or delivered:
                return False
            delivered.append(c.now)
            return True
        relays.append(c.now)
        return not lost(sender, to, len(relays))

    c.filters.append(only_to_3)
    c.submit(c.client_ids[0], b"op-late")
    c.run(max_ms=6 * TIMEOUT)
    c.assert_safe()
    return c


def assert_ordered_in_view_0(c: Cluster) -> None:
    assert [(r.view, r.in_view_change) for r in c.replicas] == [(0, False)] * 4
    assert sum(r.stats["view-change"] for r in c.replicas) == 0
    assert [app.last_executed for app in c.apps] == [2] * 4


def assert_alone_in_view_1(c: Cluster) -> None:
    late = c.replicas[LATE]
    assert (late.view, late.in_view_change) == (1, True)  # alone, for good
    assert [(r.view, r.in_view_change) for r in c.replicas[:LATE]] == [(0, False)] * 3


@pytest.mark.parametrize("cls", [Replica, RelaysOnce])
def test_a_lost_relay_is_repeated_instead_of_suspecting_alone(cls: type[Replica]) -> None:
    # 3's first relay to the primary is lost; later copies get through.
    c = order_a_request_only_backup_3_holds(cls, SETTINGS, lambda _s, _to, n: n == 1)
    if cls is Replica:
        assert_ordered_in_view_0(c)
        assert c.replicas[LATE].stats["resent.request"] >= 1
    else:
        assert_alone_in_view_1(c)


TWO_STAGE = SETTINGS | {"two_stage_request_timer": True}


class OneStageTimer(Replica):
    """The old request timer: every expiry suspects the primary (no forwarding stage)."""

    def suspects_primary(self) -> bool:
        return True


@pytest.mark.parametrize("cls", [Replica, OneStageTimer])
def test_a_request_only_one_backup_holds_is_forwarded_before_it_suspects(
    cls: type[Replica],
) -> None:
    # Every copy 3 sends to the primary is lost (relay, repeated relays, forward), so
    # the repeated relay cannot help: the others learn the request from 3's forward
    # and relay it to the primary before 3's timer expires again.
    c = order_a_request_only_backup_3_holds(cls, TWO_STAGE, lambda s, to, _n: (s, to) == (LATE, 0))
    if cls is Replica:
        assert_ordered_in_view_0(c)
        assert c.replicas[LATE].stats["forwarded.request"] >= 1
    else:
        assert_alone_in_view_1(c)


class CensoringPrimary(Replica):
    """Byzantine while primary (replica 0 here): never orders one client's requests."""

    censored: int | None = None

    def _on_request(self, req: Request, sender: int) -> None:
        if self.id == 0 and not self._is_backup() and req.client == self.censored:
            return
        super()._on_request(req, sender)


def test_a_censoring_primary_is_still_replaced_by_all_correct_replicas_together() -> None:
    c = Cluster(n=4, clients=2, settings=TWO_STAGE, latency=(1, 5), replica_class=CensoringPrimary)
    primary = c.replicas[0]
    assert isinstance(primary, CensoringPrimary)
    primary.censored = c.client_ids[0]
    c.run_requests(4)
    correct = c.replicas[1:]
    assert [(r.view, r.in_view_change) for r in correct] == [(1, False)] * 3
    # Each suspected once, at the second expiry, after forwarding the censored request.
    assert [r.stats["view-change"] for r in correct] == [1, 1, 1]
    assert all(r.stats["forwarded.request"] >= 1 for r in correct)
    assert c.all_done()
    c.assert_safe()
