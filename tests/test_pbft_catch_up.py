"""A replica that missed a view change learns the current view from a NEW-VIEW (TOCS'02 5.2).

Restarted or partitioned while the others changed views, a replica sees
validly signed messages of a later view. Once f+1 distinct replicas are seen
there (so a correct one is), it asks them for that view's NEW-VIEW and installs
it after the same checks as in a view change. One faulty replica alone must
not move it, and a NEW-VIEW that does not verify must not either.
"""

from __future__ import annotations

from typing import Any

import pytest
from pbft_harness import TIMEOUT, VIEW_CHANGE_SETTINGS, Cluster
from test_pbft_replica import _vc, request, signed

from ledger.codec import encode
from pbft.api import Deliver, Send
from pbft.messages import (
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    Request,
    StateChunk,
    Status,
    ViewChange,
    batch_digest,
)
from pbft.replica import Replica

# No checkpoint in these runs: catching up must not wait for one.
SETTINGS = VIEW_CHANGE_SETTINGS


def view_change_while_down(down: int, *, primary_cut_off: bool) -> Cluster:
    """Replica ``down`` crashes; the other three change to view 1 and commit more; it restarts.

    The view change is forced either by cutting primary 0 off from requests (it
    stays up and follows) or, when ``down`` is 0 itself, by its crash.
    """
    c = Cluster(n=4, clients=2, settings=SETTINGS, latency=(1, 5))
    c.run_requests(2)
    c.crash(down)
    if primary_cut_off:
        c.filters.append(lambda s, t, m: not (t == 0 and isinstance(m, Request)))
    c.run_requests(2)
    c.filters.clear()
    assert all(r.view == 1 for i, r in enumerate(c.replicas) if i != down)
    assert c.replicas[down].view == 0
    c.recover(down)
    return c


@pytest.mark.parametrize(("down", "cut_off"), [(3, True), (0, False)])
def test_restarted_replica_joins_the_new_view_and_executes_without_a_checkpoint(
    down: int, cut_off: bool
) -> None:
    c = view_change_while_down(down, primary_cut_off=cut_off)
    late = c.replicas[down]
    restarted_at = c.now
    c.run_requests(3)
    others = [app.last_executed for i, app in enumerate(c.apps) if i != down]
    assert late.view == 1 and not late.in_view_change
    assert c.now - restarted_at < TIMEOUT  # well before any view-change timer
    assert late.stats["catch-up.new-view"] == 1
    assert late.stats["view-change"] == 0  # learnt the view, did not start a view change
    # It executes the new requests itself, with no stable checkpoint to fetch from.
    assert c.apps[down].last_executed == max(others) == 14
    assert late.stable_checkpoint == 0 and late.stats["state-transfer"] == 0
    c.assert_safe()


def test_new_view_forwarded_by_a_backup_is_enough() -> None:
    # The primary of view 1 never gets its NEW-VIEW to the late replica: a backup's copy
    # (signed by the primary, with its own proof) must do, and must survive the backup's
    # own restart (it was persisted).
    c = view_change_while_down(3, primary_cut_off=True)
    c.crash(2)
    c.recover(2)
    c.filters.append(lambda s, t, m: not (isinstance(m, NewView) and s == 1 and t == 3))
    c.run_requests(2)
    assert c.replicas[3].view == 1 and c.replicas[3].stats["catch-up.new-view"] == 1
    assert c.replicas[2].stats["resent.new-view"] >= 1
    assert c.apps[3].last_executed == c.apps[1].last_executed == 12
    c.assert_safe()


def test_lost_answers_are_asked_for_again() -> None:
    c = view_change_while_down(3, primary_cut_off=True)
    lost = [0]

    def lose_first_new_views(s: int, t: int, m: Any) -> bool:
        if isinstance(m, NewView) and t == 3 and lost[0] < 2:  # both answers to the first ask
            lost[0] += 1
            return False
        return True

    c.filters.append(lose_first_new_views)
    late = c.replicas[3]
    restarted_at = c.now
    c.run_requests(2)
    c.run(lambda: late.last_executed == 12, max_ms=10 * TIMEOUT)
    assert lost[0] == 2
    assert c.now - restarted_at < TIMEOUT
    assert late.view == 1 and late.stats["catch-up.new-view"] == 1
    assert late.stats["status.sent"] >= 1  # the retry went out on the STATUS timer
    assert c.apps[3].last_executed == c.apps[0].last_executed == 12


def test_no_extra_messages_without_faults() -> None:
    c = Cluster(n=4, clients=2, settings=SETTINGS)
    c.run_requests(5)
    assert set(c.sent) == {"Request", "PrePrepare", "Prepare", "Commit", "Reply"}
    assert not any(r.stats["catch-up.asked"] for r in c.replicas)


# ------------------------------------------------------------ faulty evidence


def higher_view_messages(c: Cluster, sender: int, view: int) -> list[Any]:
    """Validly signed messages ``sender`` could send while (claiming to be) in ``view``."""
    req = request(c.keyring, b"op")
    digest = batch_digest((req,))
    msgs: list[Any] = [
        Prepare(view, 1, digest, 0, sender, b""),
        Commit(view, 1, digest, 0, sender, b""),
        Status(view, False, 0, 0, (), (), (), True, sender, b""),
    ]
    if c.config.primary(view) == sender:
        msgs.append(PrePrepare(view, 1, digest, 0, (req,), sender, b""))
    return [signed(c.keyring, sender, m) for m in msgs]


def feed(replica: Replica, sender: int, msgs: list[Any], now: int = 0) -> list[Send]:
    sent: list[Send] = []
    for m in msgs:
        sent.extend(replica.step(Deliver(now, sender, encode(m))).send)
    return sent


def test_one_faulty_replica_alone_cannot_move_a_correct_one() -> None:
    c = Cluster(n=4, settings=SETTINGS)
    target = c.replicas[3]
    # Replica 1 claims views 1, 2 and 5, with every kind of message, repeatedly.
    sent: list[Send] = []
    for view in (1, 2, 5, 5):
        sent += feed(target, 1, higher_view_messages(c, 1, view))
    target.step(Deliver(10 * TIMEOUT, 1, encode(higher_view_messages(c, 1, 6)[0])))
    assert target.view == 0 and not target.in_view_change
    assert target.stats["catch-up.asked"] == 0
    assert not any(isinstance(s.message, (Status, ViewChange)) for s in sent)
    # A second, distinct replica seen in a later view makes f+1: now it asks both.
    asks = feed(target, 2, higher_view_messages(c, 2, 2)[:1])
    assert target.stats["catch-up.asked"] == 1
    assert sorted(s.to for s in asks if isinstance(s.message, Status)) == [1, 2]
    assert target.view == 0  # asking moves nothing; only a verified NEW-VIEW does


def behind_with_evidence(c: Cluster) -> Replica:
    """Replica 3 in view 0 that has seen replicas 1 and 2 working in view 1."""
    late = c.replicas[3]
    feed(late, 1, higher_view_messages(c, 1, 1)[:1])
    feed(late, 2, higher_view_messages(c, 2, 1)[:1])
    assert late.stats["catch-up.asked"] == 1
    return late


def test_forged_new_views_are_rejected_while_catching_up() -> None:
    c = Cluster(n=4, settings=SETTINGS)
    late = behind_with_evidence(c)
    good_vcs = tuple(_vc(c, i, 1) for i in (0, 1, 2))
    forged_vc = ViewChange(1, 0, (), (), 2, b"\x01" * 16)
    req = request(c.keyring, b"smuggled")
    smuggled = signed(c.keyring, 1, PrePrepare(1, 1, batch_digest((req,)), 0, (req,), 1, b""))
    attempts = {
        "new-view-bad-view-changes": [
            NewView(1, good_vcs[:2], (), 1, b""),  # 2f VIEW-CHANGEs only
            NewView(1, (*good_vcs[:2], forged_vc), (), 1, b""),  # one signature forged
            NewView(1, (good_vcs[0], good_vcs[1], good_vcs[1]), (), 1, b""),  # a repeat
        ],
        "new-view-bad-o": [NewView(1, good_vcs, (smuggled,), 1, b"")],  # O not from V
        "new-view-not-from-primary": [NewView(1, good_vcs, (), 2, b"")],
    }
    for reason, forgeries in attempts.items():
        for nv in forgeries:
            signer = nv.replica
            late.step(Deliver(1, signer, encode(signed(c.keyring, signer, nv))))
        assert late.stats["drop." + reason] == len(forgeries), reason
    # A faulty replica forwarding a NEW-VIEW under the primary's name cannot sign it.
    unsigned = NewView(1, good_vcs, (), 1, b"")
    late.step(Deliver(1, 2, encode(signed(c.keyring, 2, unsigned))))
    assert late.stats["drop.bad-signature"] == 1
    assert late.view == 0 and not late.in_view_change and late.stats["new-view"] == 0
    # The genuine one, forwarded by anyone, is installed.
    late.step(Deliver(2, 2, encode(signed(c.keyring, 1, unsigned))))
    assert late.view == 1 and not late.in_view_change
    assert late.stats["catch-up.new-view"] == 1


def test_caught_up_view_survives_a_restart() -> None:
    c = Cluster(n=4, settings=SETTINGS)
    late = behind_with_evidence(c)
    nv = signed(c.keyring, 1, NewView(1, tuple(_vc(c, i, 1) for i in (0, 1, 2)), (), 1, b""))
    out = late.step(Deliver(2, 1, encode(nv)))
    c.persisted[3].extend(out.persist)
    again = Replica.restore(3, c.config, c.keyring.authenticator(3), c.apps[3], c.persisted[3])
    assert again.view == 1 and not again.in_view_change
    # It can hand the NEW-VIEW on to the next replica that missed the view change.
    st = signed(c.keyring, 0, Status(0, False, 0, 0, (), (), (), True, 0, b""))
    answer = again.step(Deliver(3, 0, encode(st))).send
    assert [s.message for s in answer if isinstance(s.message, NewView)] == [nv]


# ------------------------------------------------------------ behind, not suspicious


class SuspectsWhileFetching(Replica):
    """The replica as it was: its request timer fires while it is fetching state."""

    def group_is_ahead(self) -> bool:
        return False


def restarted_far_behind(replica_class: type[Replica]) -> Cluster:
    """Replica 3 restarts past a stable checkpoint and its state chunks are lost for a while.

    Requests reach it (clients retry to everyone) while it cannot execute them:
    it is behind, and the Q-signed checkpoint it is fetching up to proves the
    group orders without it.
    """
    settings = {**SETTINGS, "checkpoint_interval": 2, "watermark_window": 4}
    c = Cluster(n=4, clients=2, settings=settings, latency=(1, 5), replica_class=replica_class)
    c.run_requests(2)
    c.crash(3)
    c.run_requests(6)
    c.recover(3)
    c.filters.append(lambda s, t, m: not (t == 3 and isinstance(m, StateChunk)))
    c.run_requests(3)
    start = c.now
    c.run(lambda: c.now > start + 5 * TIMEOUT, max_ms=20_000)  # several timer periods
    c.filters.clear()
    c.run_requests(2)
    return c


def test_a_replica_fetching_state_does_not_start_a_view_change_alone() -> None:
    c = restarted_far_behind(Replica)
    late = c.replicas[3]
    assert late.stats["view-change.deferred"] >= 1  # its timer did fire, more than once
    assert late.stats["view-change"] == 0
    assert [r.view for r in c.replicas] == [0, 0, 0, 0] and not late.in_view_change
    assert c.apps[3].last_executed == c.apps[0].last_executed == 26
    c.assert_safe()


def test_without_the_rule_it_is_left_alone_in_a_view_change() -> None:
    """What the live nemesis found: the old rule strands the restarted replica."""
    c = restarted_far_behind(SuspectsWhileFetching)
    late = c.replicas[3]
    assert late.stats["view-change"] >= 1
    assert late.in_view_change and late.view > max(r.view for r in c.replicas[:3])
