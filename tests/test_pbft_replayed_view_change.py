"""A replayed VIEW-CHANGE must not use up a peer's STATUS answers.

A replica answers a peer's STATUS (retransmitting what the peer lacks) and a
peer's late VIEW-CHANGE (handing on its NEW-VIEW) at most once per R/2 per
peer. A VIEW-CHANGE is signed, so anyone holding one can replay it. When both
answers shared one budget, a faulty replica replaying a peer's old
VIEW-CHANGE to everyone every R/2 spent that peer's answers on NEW-VIEWs it
already had, and its real STATUS, the way it asks for the messages it lost,
was dropped as rate-limited every time: it could follow only by state
transfer at checkpoints. Each kind of answer now has its own budget.
"""

from __future__ import annotations

from pbft_harness import Cluster

from ledger.codec import encode
from pbft.messages import Request, ViewChange

SETTINGS = {
    "batch_size": 1,
    "view_change_timeout_ms": 300,
    "client_retry_ms": 100,
    "checkpoint_interval": 50,
    "watermark_window": 100,
}
VICTIM, ANSWERING, FAULTY = 3, 2, 1


def test_a_replayed_view_change_does_not_silence_the_peers_status() -> None:
    c = Cluster(n=4, clients=2, settings=SETTINGS, latency=(1, 5))
    c.run_requests(2)
    old: list[bytes] = []

    def keep_victims_view_change(_s: int, _to: int, msg: object) -> bool:
        if isinstance(msg, ViewChange) and msg.replica == VICTIM and not old:
            old.append(encode(msg))
        return True

    def cut_primary(_s: int, to: int, msg: object) -> bool:
        return not (to == 0 and isinstance(msg, Request))

    c.filters += [keep_victims_view_change, cut_primary]
    c.run_requests(2)  # the backups suspect primary 0 and change to view 1
    c.filters.remove(cut_primary)
    c.run_requests(1)
    c.settle()
    assert [(r.view, r.in_view_change) for r in c.replicas] == [(1, False)] * 4 and old
    answering = c.replicas[ANSWERING]
    limited = answering.stats["drop.status-rate-limited"]
    handed_on = answering.stats["resent.new-view"]
    c.deliver_now(ANSWERING, FAULTY, old[0])  # the faulty replica replays it
    assert answering.stats["resent.new-view"] == handed_on + 1  # answered as a late one
    status = c.replicas[VICTIM]._status(ask=True)
    c.deliver_now(ANSWERING, VICTIM, encode(status))  # the victim's own STATUS, just after
    assert answering.stats["drop.status-rate-limited"] == limited
    c.assert_safe()
