"""Liveness under message loss without view changes (TOCS'02 5.2), bounded state transfer,
and reply caches rebuilt after a restart.

A stalled replica broadcasts STATUS; peers answer with exactly what it lacks.
These tests stage losses that, without retransmission, only a view change (or
nothing at all) would repair, and check the repair leaves the view unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from pbft_harness import Cluster
from test_pbft_replica import CLIENT, signed

from ledger.codec import encode
from pbft.api import Deliver
from pbft.memapp import MemoryApplication
from pbft.messages import Checkpoint, Commit, CommittedBatch, FetchState, PrePrepare, StateChunk
from pbft.replica import Replica

SETTINGS = {"batch_size": 1, "view_change_timeout_ms": 400, "client_retry_ms": 10_000}


def test_no_status_in_a_run_without_loss() -> None:
    c = Cluster(n=4, clients=3, latency=(1, 9), settings={"batch_size": 2})
    c.run_requests(10)
    c.run()  # to quiescence: every timer fired
    assert c.sent["Status"] == 0
    assert sum(r.stats["status.sent"] for r in c.replicas) == 0


def test_lost_pre_prepares_repaired_without_view_change() -> None:
    # The PRE-PREPARE reaches only replica 1: no prepared quorum anywhere. The
    # primary's STATUS tells 2 and 3 what exists; they ask back and get it.
    c = Cluster(n=4, settings=SETTINGS)
    lost: set[int] = set()

    def lose_first_pre_prepare(sender: int, to: int, msg: object) -> bool:
        if isinstance(msg, PrePrepare) and to in (2, 3) and to not in lost:
            lost.add(to)
            return False
        return True

    c.filters.append(lose_first_pre_prepare)
    c.submit(CLIENT, b"op")
    c.run(c.all_done, max_ms=5000)
    assert c.all_done()
    assert [app.last_executed for app in c.apps] == [1, 1, 1, 1]
    assert all(r.view == 0 and r.stats["view-change"] == 0 for r in c.replicas)
    assert c.replicas[0].stats["status.sent"] >= 1
    assert sum(r.stats["resent.pre-prepare"] for r in c.replicas) >= 2
    c.assert_safe()


def test_lagging_replica_gets_lost_commits_from_idle_peers() -> None:
    # Replica 3 loses every COMMIT for seq 1 while the others execute and go idle.
    c = Cluster(n=4, settings=SETTINGS)
    dropping = [True]
    c.filters.append(lambda s, t, m: not (dropping[0] and t == 3 and isinstance(m, Commit)))
    c.submit(CLIENT, b"op")
    c.run(c.all_done)
    assert c.apps[3].last_executed == 0
    dropping[0] = False
    c.run()
    assert c.apps[3].last_executed == 1
    assert c.replicas[3].stats["status.sent"] >= 1
    assert c.replicas[3].stats["state-transfer"] == 0
    assert all(r.view == 0 for r in c.replicas)


def test_lost_checkpoints_resent_so_the_window_moves() -> None:
    # Every CHECKPOINT to the primary is lost while seq 1..4 execute: its low
    # watermark stays 0, so it cannot propose seq 5 > H = 4 until STATUS brings
    # the others' CHECKPOINTs again.
    settings = {**SETTINGS, "checkpoint_interval": 2, "watermark_window": 4}
    c = Cluster(n=4, settings=settings)
    c.filters.append(lambda s, t, m: not (isinstance(m, Checkpoint) and t == 0))
    c.run_requests(4)
    assert c.replicas[0].stable_checkpoint == 0
    c.filters.clear()
    c.submit(CLIENT, b"fifth")
    c.run(c.all_done, max_ms=5000)
    assert c.all_done()
    assert [app.last_executed for app in c.apps] == [5] * 4
    assert c.replicas[0].stable_checkpoint == 4
    assert c.replicas[0].stats["status.sent"] >= 1
    assert all(r.view == 0 for r in c.replicas)


def _lossy(rng: random.Random, rate: float) -> Callable[[int, int, object], bool]:
    return lambda sender, to, msg: rng.random() >= rate


def test_lossy_n7_with_two_silent_replicas_needs_no_view_change() -> None:
    # n = 7, f = 2 silent backups: every one of the 5 others must take part in
    # each quorum, so without retransmission each lost message costs a view change.
    for seed in (1, 2, 3):
        c = Cluster(
            n=7,
            clients=3,
            latency=(1, 10),
            seed=seed,
            settings={"batch_size": 2, "view_change_timeout_ms": 800, "client_retry_ms": 400},
        )
        c.crash(5)
        c.crash(6)
        c.filters.append(_lossy(random.Random(seed), 0.05))
        c.run_requests(10, max_ms=10**6)
        assert c.all_done()
        c.assert_safe()
        assert all(c.replicas[i].stats["view-change"] == 0 for i in range(5)), seed
        assert sum(c.replicas[i].stats["status.sent"] for i in range(5)) > 0


# ----------------------------------------------------------- bounded state transfer


def _behind(chunk: int) -> Cluster:
    settings = {"batch_size": 1, "checkpoint_interval": 2, "watermark_window": 4}
    c = Cluster(n=4, settings={**settings, "state_chunk_batches": chunk})
    c.crash(3)
    c.run_requests(6)
    return c


def test_state_chunk_is_capped() -> None:
    c = _behind(chunk=2)
    assert c.replicas[1].stable_checkpoint == 6
    fetch = signed(c.keyring, 3, FetchState(1, 3, b""))
    out = c.replicas[1].step(Deliver(c.now, 3, encode(fetch)))
    (send,) = out.send
    assert isinstance(send.message, StateChunk)
    assert [b.seq for b in send.message.batches] == [2, 3]


def test_lagging_replica_fetches_chunk_after_chunk() -> None:
    c = _behind(chunk=1)
    c.recover(3)
    c.run_requests(1)
    c.run()
    assert c.apps[3].last_executed == c.apps[0].last_executed == 7
    assert c.replicas[3].stats["state-transfer"] >= 6
    c.assert_safe()


def test_partial_chunk_with_a_forged_certificate_is_refused() -> None:
    c = _behind(chunk=2)
    lagger = Replica(3, c.config, c.keyring.authenticator(3), MemoryApplication())
    lagger._fetch_deadline = 10**9  # it asked for state
    proof = c.replicas[0]._stable_proof
    real = c.apps[0].batches[:2]
    bad = (real[0], CommittedBatch(2, 0, 0, real[1].requests, real[1].certificate[:2]))
    lagger.step(Deliver(0, 0, encode(signed(c.keyring, 0, StateChunk(proof, bad, 0, b"")))))
    assert lagger.stats["drop.state-bad-certificate"] == 1
    assert lagger.last_executed == 0
    lagger.step(Deliver(0, 0, encode(signed(c.keyring, 0, StateChunk(proof, real, 0, b"")))))
    assert lagger.last_executed == 2
    assert lagger.stable_checkpoint == 6  # proven; it fetches the rest next


# ------------------------------------------------------------ reply cache on restore


class ForgetfulApplication(MemoryApplication):
    """An application that cannot say what earlier batches returned."""

    results_at = None  # type: ignore[assignment]


def _restarted_answers_retransmission(app_class: type[MemoryApplication]) -> tuple[int, int]:
    c = Cluster(n=4, settings={"batch_size": 1})
    c.apps[2] = app_class()
    c.replicas[2] = Replica(2, c.config, c.keyring.authenticator(2), c.apps[2])
    c.run_requests(2)  # no checkpoint yet: no snapshot holds these replies
    c.crash(2)
    c.recover(2)
    req = c.apps[2].batches[-1].requests[0]
    out = c.replicas[2].step(Deliver(c.now, CLIENT, encode(req)))
    replies = [s.message for s in out.send if s.to == CLIENT]
    return len(replies), c.replicas[2].stats["drop.old-request"]


def test_restored_replica_rebuilds_its_reply_cache() -> None:
    assert _restarted_answers_retransmission(MemoryApplication) == (1, 0)
    # Without results the request is still never re-executed, just not answered.
    assert _restarted_answers_retransmission(ForgetfulApplication) == (0, 1)


def test_results_at_matches_execute() -> None:
    app = MemoryApplication()
    c = Cluster(n=4, settings={"batch_size": 1})
    c.run_requests(2)
    batches: Sequence[CommittedBatch] = c.apps[0].batches
    executed = [list(app.execute(b)) for b in batches]
    assert [app.results_at(b.seq) for b in batches] == executed
    assert app.results_at(3) is None
