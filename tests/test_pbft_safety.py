"""Regression tests for the independent PBFT safety review (one test per finding, or more).

Each test stages what a faulty primary, server or peer did in the review's
reproduction and checks the correct replicas are not fooled. Paper sections
are Castro & Liskov, OSDI'99 and TOCS'02.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from pbft_harness import Cluster
from test_pbft_replica import CLIENT, request, signed

from ledger.block import ValidationCode
from ledger.codec import decode, encode
from ledger.peer import TxStatus
from pbft.api import CLIENT_ID_BASE, Deliver, PBFTConfig, Tick
from pbft.messages import (
    Commit,
    CommittedBatch,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    Request,
    StateChunk,
    Status,
    ViewChange,
    batch_digest,
)
from pbft.replica import Replica
from sim.fabric.workload import FabricWorkload
from sim.world.auth import network_crypto
from sim.world.disk import NodeDisk


def _timestamps(c: Cluster) -> list[list[int]]:
    return [[b.timestamp_ms for b in app.batches] for app in c.apps]


def _agree_on_time(c: Cluster) -> None:
    """Every executed sequence number has one block timestamp across replicas."""
    by_seq: dict[int, set[int]] = {}
    for app in c.apps:
        for b in app.batches:
            by_seq.setdefault(b.seq, set()).add(b.timestamp_ms)
            assert all(m.timestamp_ms == b.timestamp_ms for m in b.certificate)
    assert all(len(times) == 1 for times in by_seq.values()), by_seq


# ----------------------------------------------------------- 1. agreed timestamp


def test_primary_equivocating_on_timestamp_cannot_split_block_time_osdi99_4_2() -> None:
    c = Cluster(n=4, settings={"batch_size": 1})

    def equivocate(sender: int, to: int, msg: Any) -> bool | bytes:
        if sender == 0 and isinstance(msg, PrePrepare) and to == 1:
            return encode(
                signed(c.keyring, 0, dataclasses.replace(msg, timestamp_ms=msg.timestamp_ms + 1))
            )
        return True

    c.filters.append(equivocate)
    c.run_requests(2)
    assert c.apps[0].last_executed == 2
    _agree_on_time(c)


def test_state_chunk_with_forged_timestamp_rejected_tocs02_6_2() -> None:
    c = Cluster(n=4, settings={"batch_size": 1, "checkpoint_interval": 2, "watermark_window": 4})
    c.crash(3)
    c.run_requests(4)

    def forge(sender: int, to: int, msg: Any) -> bool | bytes:
        if isinstance(msg, StateChunk):
            if sender != 1:
                return False
            bad = tuple(
                dataclasses.replace(b, timestamp_ms=b.timestamp_ms + 10**9) for b in msg.batches
            )
            return encode(signed(c.keyring, 1, dataclasses.replace(msg, batches=bad)))
        return True

    c.filters.append(forge)
    c.recover(3)
    c.run_requests(4)
    assert c.replicas[3].stats["drop.state-bad-certificate"] >= 1
    _agree_on_time(c)


def _prepared_proof(c: Cluster, prepare_ts: int, requests: tuple[Request, ...]) -> PreparedProof:
    digest = batch_digest(requests)
    pp = signed(c.keyring, 0, PrePrepare(0, 1, digest, 5, requests, 0, b""))
    prepares = tuple(
        signed(c.keyring, r, Prepare(0, 1, digest, prepare_ts, r, b"")) for r in (1, 2)
    )
    return PreparedProof(pp, prepares)


def _view_change(c: Cluster, proof: PreparedProof) -> ViewChange:
    return signed(c.keyring, 1, ViewChange(1, 0, (), (proof,), 1, b""))


def test_prepared_proof_must_agree_on_timestamp_osdi99_4_4() -> None:
    c = Cluster(n=4)
    r = c.replicas[2]
    reqs = (request(c.keyring, b"op"),)
    assert r.valid_view_change(_view_change(c, _prepared_proof(c, 5, reqs)))
    assert not r.valid_view_change(_view_change(c, _prepared_proof(c, 6, reqs)))


# --------------------------------------------------- 2. backups check the time


def test_absurd_timestamp_rejected_and_not_inherited_osdi99_4_6() -> None:
    c = Cluster(
        n=4, settings={"batch_size": 1, "view_change_timeout_ms": 300, "client_retry_ms": 100}
    )

    def absurd(sender: int, to: int, msg: Any) -> bool | bytes:
        if sender == 0 and isinstance(msg, PrePrepare):
            return encode(signed(c.keyring, 0, dataclasses.replace(msg, timestamp_ms=2**62)))
        return True

    c.filters.append(absurd)
    c.run_requests(2)
    c.crash(0)
    c.run_requests(2)
    assert all(r.stats["drop.timestamp-ahead"] >= 1 for r in c.replicas[1:])
    assert [app.last_executed for app in c.apps[1:]] == [4, 4, 4]
    assert all(t <= c.now for times in _timestamps(c) for t in times)
    _agree_on_time(c)


def test_timestamp_running_backwards_rejected_osdi99_4_6() -> None:
    c = Cluster(n=4, settings={"batch_size": 1})
    c.run(max_ms=500)
    c.run_requests(1)
    last = c.apps[1].batches[-1].timestamp_ms
    assert last > 0
    req = request(c.keyring, b"late", ts=10**6)
    pp = signed(c.keyring, 0, PrePrepare(0, 2, batch_digest((req,)), last - 1, (req,), 0, b""))
    c.replicas[1].step(Deliver(c.now, 0, encode(pp)))
    assert c.replicas[1].stats["drop.timestamp-regressed"] == 1


# ------------------------------------------- 3. no lone climb in a view change


def test_request_in_view_change_does_not_arm_timer_osdi99_4_5_2() -> None:
    c = Cluster(n=4, clients=2, settings={"view_change_timeout_ms": 100})
    r = c.replicas[1]
    first, second = c.client_ids
    r.step(Deliver(0, first, encode(request(c.keyring, b"a", client=first))))
    r.step(Tick(100))
    assert (r.view, r.in_view_change) == (1, True)
    now = 150
    r.step(Deliver(now, second, encode(request(c.keyring, b"b", client=second))))
    for _ in range(20):
        now += 1000
        r.step(Tick(now))
    assert (r.view, r.in_view_change) == (1, True)


# ------------------------------------------------ 4. only clients order requests


def test_batch_with_replica_as_client_rejected_osdi99_4_1() -> None:
    c = Cluster(n=4, settings={"batch_size": 1})
    fake = signed(c.keyring, 0, Request(0, 1, b"transfer-all-to-0", b""))
    pp = signed(c.keyring, 0, PrePrepare(0, 1, batch_digest((fake,)), 0, (fake,), 0, b""))
    for r in (1, 2, 3):
        c.deliver_raw(0, r, encode(pp))
    c.run(max_ms=5000)
    assert [app.last_executed for app in c.apps] == [0, 0, 0, 0]
    assert all(r.stats["drop.request-from-replica-in-batch"] == 1 for r in c.replicas[1:])
    assert not c.replicas[2].valid_view_change(_view_change(c, _prepared_proof(c, 5, (fake,))))
    assert CLIENT >= CLIENT_ID_BASE


# ------------------------------------------------------- 5. exactly-once


def test_same_request_twice_in_a_batch_rejected_osdi99_4_1() -> None:
    c = Cluster(n=4, settings={"batch_size": 2})
    req = request(c.keyring, b"op")
    pp = signed(c.keyring, 0, PrePrepare(0, 1, batch_digest((req, req)), 0, (req, req), 0, b""))
    c.replicas[1].step(Deliver(0, 0, encode(pp)))
    assert c.replicas[1].stats["drop.duplicate-request-in-batch"] == 1
    assert not c.replicas[2].valid_view_change(_view_change(c, _prepared_proof(c, 5, (req, req))))


def test_stale_request_at_a_later_seq_is_not_executed_osdi99_4_1() -> None:
    c = Cluster(n=4, settings={"batch_size": 1})
    old = request(c.keyring, b"old", ts=1)
    new = request(c.keyring, b"new", ts=2)
    for seq, req in ((1, new), (2, old)):
        pp = signed(c.keyring, 0, PrePrepare(0, seq, batch_digest((req,)), 0, (req,), 0, b""))
        for r in (1, 2, 3):
            c.deliver_raw(0, r, encode(pp))
    c.run(max_ms=5000)
    for app in c.apps[1:]:
        assert app.last_executed == 2
        assert app.requests == ((1, new),)


def test_restored_replica_remembers_clients_executed_by_state_transfer() -> None:
    c = Cluster(n=4, settings={"batch_size": 1, "checkpoint_interval": 2, "watermark_window": 4})
    c.crash(3)
    c.run_requests(4)
    c.recover(3)
    c.run_requests(4)
    assert c.replicas[3].stats["state-transfer"] >= 1
    before = dict(c.replicas[3]._last_ts)
    c.crash(3)
    c.recover(3)
    assert c.replicas[3]._last_ts == before == c.replicas[0]._last_ts


def _ledger_app_and_envelopes(c: Cluster) -> tuple[Any, list[Request]]:
    from test_fabric import scenario

    spec = scenario(crypto="modelled")
    workload = FabricWorkload(spec, network_crypto(spec), random.Random(3))
    apps = [workload.make_application(r, NodeDisk(r, None)) for r in range(4)]
    reqs = [
        request(c.keyring, workload.next_operation(0, 10, [0, 1, 2, 3]), ts=k + 1) for k in range(2)
    ]
    return apps[0], reqs


def test_ledger_keeps_stale_requests_as_data_without_effects() -> None:
    """A request PBFT refuses to execute stays in the block as a DUPLICATE_TXID.

    Its tx id is not indexed (it never took effect), so the same transaction
    submitted fresh later still commits.
    """
    app, (a, b) = _ledger_app_and_envelopes(Cluster(n=4))
    results = app.execute(CommittedBatch(1, 0, 10, (a, b, a), ()), (True, False, False))
    codes = [decode(r, TxStatus).code for r in results]
    assert codes == [
        ValidationCode.VALID,
        ValidationCode.DUPLICATE_TXID,
        ValidationCode.DUPLICATE_TXID,
    ]
    assert app.results_at(1) == list(results)
    assert app.ledger.block(1).data == tuple(encode(r) for r in (a, b, a))
    again = app.execute(CommittedBatch(2, 0, 10, (b,), ()))
    assert decode(again[0], TxStatus).code == ValidationCode.VALID


def test_restarted_replica_over_a_ledger_rebuilds_replies() -> None:
    c = Cluster(n=4)
    app, (a, _b) = _ledger_app_and_envelopes(c)
    (result,) = app.execute(CommittedBatch(1, 0, 10, (a,), ()), (True,))
    r = Replica(1, c.config, c.keyring.authenticator(1), app)
    out = r.step(Deliver(20, CLIENT, encode(a)))
    (sent,) = [s.message for s in out.send if isinstance(s.message, Reply)]
    assert sent.result == result and sent.timestamp == a.timestamp


# ---------------------------------------------------------------- 6. stash bounds


def test_stash_bounded_per_sender_view_and_window() -> None:
    c = Cluster(n=4, settings={"batch_size": 1, "checkpoint_interval": 2, "watermark_window": 4})
    r = c.replicas[3]
    junk = signed(c.keyring, 1, Prepare(10**9, 10**9, b"\x00" * 32, 0, 1, b""))
    r.step(Deliver(0, 1, encode(junk)))
    assert r.stats["drop.stash-view-too-far"] == 1
    for k in range(100):
        msg = signed(c.keyring, 1, Prepare(1 + k % 2, 1 + k % 4, bytes([k]) * 32, k, 1, b""))
        r.step(Deliver(0, 1, encode(msg)))
    assert r.memory_footprint()["stash"] == 8 and r.stats["drop.stash-quota"] == 92
    far = signed(c.keyring, 1, Prepare(1, 5, b"\x00" * 32, 0, 1, b""))
    r.step(Deliver(0, 1, encode(far)))
    assert r.stats["drop.outside-watermarks"] == 1
    reqs = tuple(request(c.keyring, b"x", ts=t) for t in (1, 2))
    big = signed(c.keyring, 1, PrePrepare(1, 1, batch_digest(reqs), 0, reqs, 1, b""))
    r.step(Deliver(0, 1, encode(big)))
    assert r.stats["drop.batch-too-large"] == 1
    genuine = signed(c.keyring, 2, Commit(1, 1, b"\x01" * 32, 0, 2, b""))
    r.step(Deliver(0, 2, encode(genuine)))
    assert r.memory_footprint()["stash"] == 9


# ----------------------------------------------------------- 7. STATUS rate limit


def test_status_answers_rate_limited_per_sender_tocs02_5_2() -> None:
    c = Cluster(n=4, settings={"batch_size": 1, "retransmit_ms": 100})
    c.run_requests(1)
    r = c.replicas[0]
    status = signed(c.keyring, 1, Status(0, False, 0, 0, (), (), (), True, 1, b""))
    first = r.step(Deliver(c.now, 1, encode(status)))
    second = r.step(Deliver(c.now + 10, 1, encode(status)))
    later = r.step(Deliver(c.now + 60, 1, encode(status)))
    assert first.send and not second.send and later.send
    assert r.stats["drop.status-rate-limited"] == 1


@pytest.mark.parametrize("n", range(4, 61))
def test_quorums_intersect_in_a_correct_replica_for_every_n(n: int) -> None:
    """OSDI'99 4.2 takes n = 3f+1 and quorums of 2f+1; for other n the size must grow.

    Any two quorums must share f+1 replicas (so one correct replica), and a
    quorum must be reachable with f replicas silent. For n = 5 the paper's
    2f+1 = 3 fails the first rule (tests/scenarios/equivocate-n5.toml shows the
    resulting disagreement); ``PBFTConfig.quorum`` is ceil((n+f+1)/2).
    """
    config = PBFTConfig(n)
    q, f = config.quorum, config.f
    assert 2 * q - n >= f + 1  # safety: intersection holds a correct replica
    assert q <= n - f  # liveness: the correct replicas alone form a quorum
    if n == 3 * f + 1:
        assert q == 2 * f + 1  # the paper's setting is unchanged
