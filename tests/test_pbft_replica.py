"""PBFT replica: normal case, checkpoints, view change, state transfer, persistence.

Test names cite the rule they check (OSDI'99 = Castro & Liskov 1999; TOCS'02 =
the 2002 journal version).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from pbft_harness import Cluster

from ledger.codec import decode, encode
from pbft.api import CLIENT_ID_BASE, Deliver, PBFTConfig, Tick
from pbft.auth import Keyring
from pbft.memapp import MemoryApplication
from pbft.messages import (
    Checkpoint,
    CommittedBatch,
    FetchState,
    NewView,
    Prepare,
    PrePrepare,
    Request,
    StateChunk,
    ViewChange,
    batch_digest,
    signing_bytes,
)
from pbft.replica import Replica

CLIENT = CLIENT_ID_BASE


def signed(keyring: Keyring, principal: int, msg: Any) -> Any:
    unsigned = dataclasses.replace(msg, signature=b"")
    return dataclasses.replace(
        unsigned, signature=keyring.authenticator(principal).sign(encode(unsigned))
    )


def request(keyring: Keyring, op: bytes, ts: int = 1, client: int = CLIENT) -> Request:
    return signed(keyring, client, Request(client, ts, op, b""))


# ------------------------------------------------------------------ normal case


def test_normal_case_message_pattern_n4_osdi99_4_2() -> None:
    c = Cluster(n=4, settings={"batch_size": 1})
    c.submit(CLIENT, b"op")
    c.run(c.all_done)
    assert c.completed[CLIENT][0].result == __import__("hashlib").sha256(b"op").digest()
    assert c.sent["PrePrepare"] == 3
    assert c.sent["Prepare"] == 9
    assert c.sent["Commit"] == 12
    assert c.sent["Reply"] == 4
    assert [app.last_executed for app in c.apps] == [1, 1, 1, 1]


def test_normal_case_message_pattern_n7_formula() -> None:
    n = 7
    c = Cluster(n=n, settings={"batch_size": 1})
    c.submit(CLIENT, b"op")
    c.run(c.all_done)
    assert c.sent["PrePrepare"] == n - 1
    assert c.sent["Prepare"] == (n - 1) * (n - 1)
    assert c.sent["Commit"] == n * (n - 1)


def test_batching_by_size_and_by_timeout() -> None:
    c = Cluster(n=4, clients=5, settings={"batch_size": 3, "batch_timeout_ms": 40})
    for client in c.client_ids:
        c.submit(client, b"x")
    c.run(c.all_done)
    sizes = [len(b.requests) for b in c.apps[1].batches]
    assert sizes == [3, 2]
    # The partial batch waited for the timer; the full one went at once.
    assert c.apps[1].batches[1].timestamp_ms >= 40
    assert c.apps[1].batches[0].timestamp_ms == 1  # primary clock on arrival


def test_pipelining_within_watermarks_and_in_order_execution() -> None:
    c = Cluster(n=4, clients=8, latency=(1, 9), seed=3, settings={"batch_size": 1})
    c.run_requests(5)
    c.assert_safe()
    for i in range(4):
        assert c.executed[i] == list(range(1, 41))


def test_commit_certificate_has_2f_plus_1_distinct_commits() -> None:
    c = Cluster(n=7, settings={"batch_size": 1})
    c.submit(CLIENT, b"op")
    c.run(c.all_done)
    batch = c.apps[3].batches[0]
    assert len({m.replica for m in batch.certificate}) == 5
    assert all(m.digest == batch.digest and m.seq == 1 for m in batch.certificate)


def test_duplicate_request_answered_from_reply_cache_osdi99_4_1() -> None:
    c = Cluster(n=4, settings={"batch_size": 1})
    c.submit(CLIENT, b"op")
    c.run(c.all_done)
    req = c.apps[0].batches[0].requests[0]
    for r in range(4):
        c.deliver_raw(CLIENT, r, encode(req))
    replies_before = c.sent["Reply"]
    c.run()
    assert [app.last_executed for app in c.apps] == [1, 1, 1, 1]
    assert c.sent["Reply"] == replies_before + 4
    assert all(r.stats["resent.reply"] == 1 for r in c.replicas)


def test_request_replayed_inside_a_batch_is_executed_once() -> None:
    # A Byzantine primary may re-propose an executed request: the batch commits (it
    # is well-formed), but the application does not run the request again and
    # correct replicas send no second reply (exactly-once at execution, OSDI'99 4.1).
    c = Cluster(n=4, settings={"batch_size": 1})
    c.submit(CLIENT, b"op")
    c.run(c.all_done)
    first = c.apps[0].batches[0]
    req = first.requests[0]
    when = first.timestamp_ms
    pp = signed(c.keyring, 0, PrePrepare(0, 2, batch_digest((req,)), when, (req,), 0, b""))
    for r in (1, 2, 3):
        c.deliver_raw(0, r, encode(pp))
    replies = c.sent["Reply"]
    c.run()
    assert [app.last_executed for app in c.apps[1:]] == [2, 2, 2]
    assert all(app.requests == ((1, req),) for app in c.apps[1:])
    assert all(app.results_at(2) == [b""] for app in c.apps[1:])
    assert c.sent["Reply"] == replies


def test_bad_client_signature_dropped() -> None:
    c = Cluster(n=4)
    forged = Request(CLIENT, 1, b"op", b"\x00" * 16)
    c.deliver_raw(CLIENT, 0, encode(forged))
    c.run()
    assert c.replicas[0].stats["drop.bad-signature"] == 1
    assert c.apps[0].last_executed == 0


# ---------------------------------------------------------- checkpoints and GC


def test_checkpoints_garbage_collect_and_memory_stays_bounded_osdi99_4_3() -> None:
    c = Cluster(n=4, settings={"batch_size": 1, "checkpoint_interval": 10, "watermark_window": 20})
    c.run_requests(1000, max_ms=10**7)
    assert [app.last_executed for app in c.apps] == [1000] * 4
    for r in c.replicas:
        assert r.stable_checkpoint == 1000
        size = r.memory_footprint()
        assert size["slots"] <= 20
        assert size["slot_messages"] <= 20 * 2 * 4
        assert size["checkpoint_votes"] <= 4 * 2
        assert size["stash"] == 0
    # The persisted log was compacted at each stable checkpoint too.
    assert all(len(p) < 60 for p in c.persisted)


def test_checkpoint_proof_is_2f_plus_1_matching_signatures() -> None:
    c = Cluster(n=4, settings={"batch_size": 1, "checkpoint_interval": 2, "watermark_window": 4})
    c.run_requests(2)
    r = c.replicas[1]
    assert r.stable_checkpoint == 2
    proof = r._stable_proof
    assert len({cp.replica for cp in proof}) == 3
    assert r.valid_checkpoint_proof(proof) == (2, c.apps[1].head_digest)
    assert r.valid_checkpoint_proof(proof[:2]) is None


def test_pre_prepare_outside_watermarks_dropped() -> None:
    c = Cluster(n=4, settings={"checkpoint_interval": 5, "watermark_window": 10})
    req = request(c.keyring, b"far")
    pp = signed(c.keyring, 0, PrePrepare(0, 11, batch_digest((req,)), 0, (req,), 0, b""))
    c.deliver_raw(0, 1, encode(pp))
    c.run()
    assert c.replicas[1].stats["drop.outside-watermarks"] == 1
    assert c.sent["Prepare"] == 0


# ------------------------------------------------------------------- view change


def test_view_change_with_silent_primary_osdi99_4_4() -> None:
    c = Cluster(
        n=4,
        clients=2,
        settings={"batch_size": 1, "view_change_timeout_ms": 300, "client_retry_ms": 100},
    )
    c.run_requests(3)
    c.crash(0)
    c.run_requests(3)
    assert c.all_done()
    assert [r.view for r in c.replicas[1:]] == [1, 1, 1]
    assert [app.last_executed for app in c.apps[1:]] == [12, 12, 12]
    assert all(c.client_objs[k].view == 1 for k in c.client_ids)
    c.assert_safe()


def test_view_change_backoff_doubles_without_progress_osdi99_4_5_2() -> None:
    # n = 10 (f = 3); the primaries of views 0, 1 and 2 are down. The wait in
    # view 1 is T, in view 2 it is 2T; view 3 completes.
    c = Cluster(n=10, settings={"view_change_timeout_ms": 100, "client_retry_ms": 10_000})
    for i in (0, 1, 2):
        c.crash(i)
    req = request(c.keyring, b"op")
    for r in range(3, 10):
        c.deliver_raw(CLIENT, r, encode(req))
    changes: list[int] = []
    while c.now < 5000 and c.step_once():
        if c.replicas[3].view > len(changes):
            changes.append(c.now)
    assert c.replicas[3].view == 3 and not c.replicas[3].in_view_change
    gaps = [b - a for a, b in itertools.pairwise(changes)]
    assert gaps[1] - gaps[0] == 100
    assert c.apps[3].last_executed == 1


def test_lone_view_change_does_not_run_through_views() -> None:
    # One backup's timer fires alone: without 2f+1 VIEW-CHANGEs it must not keep
    # advancing views by itself (OSDI'99 4.5.2), or the others could never join it.
    c = Cluster(n=4, settings={"view_change_timeout_ms": 100})
    c.deliver_raw(CLIENT, 3, encode(request(c.keyring, b"op")))
    c.filters.append(lambda s, t, m: not (t == 0 and isinstance(m, Request)))
    c.run(max_ms=5000)
    assert c.replicas[3].view == 1 and c.replicas[3].in_view_change
    assert c.replicas[3].stats["view-change"] == 1


def _vc(c: Cluster, sender: int, new_view: int) -> ViewChange:
    return signed(c.keyring, sender, ViewChange(new_view, 0, (), (), sender, b""))


def test_f_plus_one_view_changes_make_a_replica_join_osdi99_4_5_2() -> None:
    c = Cluster(n=4)
    c.deliver_raw(1, 3, encode(_vc(c, 1, 2)))
    c.run()
    assert c.replicas[3].view == 0  # f = 1 message is not enough: it may be Byzantine
    c.deliver_raw(2, 3, encode(_vc(c, 2, 5)))
    c.run(lambda: c.replicas[3].view != 0, max_ms=10)
    assert c.replicas[3].view == 2  # joins the smallest view in the set
    assert c.replicas[3].in_view_change


def test_tampered_new_view_rejected_by_recomputing_o_osdi99_4_4() -> None:
    # Replica 1 (next primary) is Byzantine: it builds a NEW-VIEW whose O omits a
    # batch prepared in view 0. Every backup must recompute O and refuse it.
    c = Cluster(n=4, settings={"batch_size": 1})
    c.run_requests(1)
    # Make seq 2 prepared everywhere but not committed: drop all COMMITs.
    c.filters.append(lambda s, t, m: not isinstance(m, __import__("pbft.messages").messages.Commit))
    c.submit(CLIENT, b"second")
    c.run(max_ms=50)
    assert all(r._log[2].prepared for r in c.replicas)
    vcs = [
        signed(
            c.keyring,
            i,
            ViewChange(1, 0, (), (c.replicas[i]._log[2].prepared_proof,), i, b""),  # type: ignore[arg-type]
        )
        for i in (1, 2, 3)
    ]
    honest = c.replicas[1].compute_new_view(vcs)
    assert [p.seq for p in honest.proposals] == [1, 2]  # both prepared above h = 0
    assert honest.proposals[1].requests[0].operation == b"second"
    o = [
        signed(c.keyring, 1, PrePrepare(1, p.seq, p.digest, p.timestamp_ms, p.requests, 1, b""))
        for p in honest.proposals
    ]
    dropped = signed(c.keyring, 1, PrePrepare(1, 2, batch_digest(()), 0, (), 1, b""))
    bogus = signed(c.keyring, 1, NewView(1, tuple(vcs), (o[0], dropped), 1, b""))
    backup = c.replicas[2]
    backup.step(Deliver(c.now, 1, encode(bogus)))
    assert backup.stats["drop.new-view-bad-o"] == 1
    assert backup.view == 0
    good = signed(c.keyring, 1, NewView(1, tuple(vcs), tuple(o), 1, b""))
    out = backup.step(Deliver(c.now, 1, encode(good)))
    assert backup.view == 1 and not backup.in_view_change
    assert any(isinstance(s.message, Prepare) and s.message.seq == 2 for s in out.send)


def test_new_view_with_forged_view_change_rejected() -> None:
    c = Cluster(n=4)
    good = [_vc(c, i, 1) for i in (1, 2)]
    forged = ViewChange(1, 0, (), (), 3, b"\x01" * 16)
    nv = signed(c.keyring, 1, NewView(1, (*good, forged), (), 1, b""))
    c.replicas[2].step(Deliver(0, 1, encode(nv)))
    assert c.replicas[2].stats["drop.new-view-bad-view-changes"] == 1
    assert c.replicas[2].view == 0


def test_future_view_messages_are_stashed_then_replayed() -> None:
    c = Cluster(n=4, settings={"batch_size": 1})
    backup = c.replicas[2]
    req = request(c.keyring, b"op")
    pp = signed(c.keyring, 1, PrePrepare(1, 1, batch_digest((req,)), 0, (req,), 1, b""))
    backup.step(Deliver(0, 1, encode(pp)))
    assert backup.stats["stash.future-view"] == 1
    assert backup._log.get(1) is None
    vcs = tuple(_vc(c, i, 1) for i in (1, 2, 3))
    nv = signed(c.keyring, 1, NewView(1, vcs, (), 1, b""))
    out = backup.step(Deliver(1, 1, encode(nv)))
    assert backup.view == 1
    assert backup.stats["stash.replayed"] == 1
    assert any(isinstance(s.message, Prepare) and s.message.view == 1 for s in out.send)


def test_lagging_replica_learns_the_current_view() -> None:
    settings = {"batch_size": 1, "view_change_timeout_ms": 300, "client_retry_ms": 100}
    c = Cluster(n=4, settings={**settings, "checkpoint_interval": 2, "watermark_window": 4})
    c.crash(0)
    c.run_requests(2)
    c.recover(0)
    c.run_requests(3)
    assert c.replicas[0].view == c.replicas[1].view == 1
    assert c.apps[0].last_executed == c.apps[1].last_executed
    c.assert_safe()


def test_safety_and_liveness_under_loss_and_reordering_n7() -> None:
    import random

    c = Cluster(
        n=7,
        clients=3,
        latency=(1, 25),
        seed=11,
        settings={"batch_size": 2, "view_change_timeout_ms": 600, "client_retry_ms": 250},
    )
    rng = random.Random(4)
    c.filters.append(lambda s, t, m: rng.random() > 0.05)
    c.run_requests(10, max_ms=10**6)
    assert c.all_done()
    c.assert_safe()


# ------------------------------------------------------------------ state transfer


def _behind_cluster() -> Cluster:
    c = Cluster(n=4, settings={"batch_size": 1, "checkpoint_interval": 2, "watermark_window": 4})
    c.crash(3)
    c.run_requests(4)
    return c


def test_state_transfer_accepts_a_valid_chunk_tocs02_6_2() -> None:
    c = _behind_cluster()
    c.recover(3)
    c.run_requests(2)
    assert c.apps[3].last_executed == c.apps[0].last_executed == 6
    assert c.replicas[3].stats["state-transfer"] >= 1
    c.assert_safe()


def test_state_transfer_rejects_forged_chunks() -> None:
    c = _behind_cluster()
    lagger = Replica(3, c.config, c.keyring.authenticator(3), MemoryApplication())
    donor = c.replicas[0]
    proof = donor._stable_proof
    assert proof[0].seq == 4
    real = tuple(c.apps[0].batches[:4])
    lagger._fetch_deadline = 10**9  # it asked for state
    # 1. A batch altered: chained digest no longer matches the proof.
    evil_req = request(c.keyring, b"evil", ts=99)
    altered = (*real[:3], dataclasses.replace(real[3], requests=(evil_req,)))
    lagger.step(Deliver(0, 0, encode(signed(c.keyring, 0, StateChunk(proof, altered, 0, b"")))))
    assert lagger.stats["drop.state-bad-digest"] == 1
    # 2. A proof with only f+1 signatures (one peer's word plus one).
    lagger.step(Deliver(0, 0, encode(signed(c.keyring, 0, StateChunk(proof[:2], real, 0, b"")))))
    assert lagger.stats["drop.state-bad-proof"] == 1
    # 3. A proof with a forged signature.
    forged = (*proof[:2], dataclasses.replace(proof[2], signature=b"\x00" * 16))
    lagger.step(Deliver(0, 0, encode(signed(c.keyring, 0, StateChunk(forged, real, 0, b"")))))
    assert lagger.stats["drop.state-bad-proof"] == 2
    assert lagger.last_executed == 0
    # 4. The genuine chunk is accepted and executed in order.
    lagger.step(Deliver(0, 0, encode(signed(c.keyring, 0, StateChunk(proof, real, 0, b"")))))
    assert lagger.last_executed == 4
    assert lagger.stable_checkpoint == 4


def test_fetch_state_is_answered_with_proof_and_batches() -> None:
    c = _behind_cluster()
    fetch = signed(c.keyring, 3, FetchState(0, 3, b""))
    out = c.replicas[1].step(Deliver(c.now, 3, encode(fetch)))
    (send,) = out.send
    assert send.to == 3 and isinstance(send.message, StateChunk)
    assert [b.seq for b in send.message.batches] == [1, 2, 3, 4]


# ------------------------------------------------------------------ persistence


def test_restored_primary_does_not_reuse_a_sequence_number() -> None:
    c = Cluster(n=4, clients=2, settings={"batch_size": 1})
    c.filters.append(lambda s, t, m: s != 0)  # primary's messages are lost
    c.submit(CLIENT, b"first")
    c.run(max_ms=5)
    sent_before: list[Any] = [decode(r) for r in c.persisted[0]]
    assert any(isinstance(r, PrePrepare) and r.seq == 1 for r in sent_before)
    c.crash(0)
    c.recover(0)
    c.filters.clear()
    out = c.replicas[0].step(
        Deliver(c.now, CLIENT + 1, encode(request(c.keyring, b"second", client=CLIENT + 1)))
    )
    pps = [s.message for s in out.send if isinstance(s.message, PrePrepare)]
    assert [pp.seq for pp in pps] == [2]


def test_restored_backup_does_not_prepare_a_conflicting_digest() -> None:
    c = Cluster(n=4)
    backup = c.replicas[2]
    a = request(c.keyring, b"A")
    b = request(c.keyring, b"B")
    pp_a = signed(c.keyring, 0, PrePrepare(0, 1, batch_digest((a,)), 0, (a,), 0, b""))
    out = backup.step(Deliver(0, 0, encode(pp_a)))
    records = list(out.persist)
    restored = Replica.restore(
        2, c.config, c.keyring.authenticator(2), MemoryApplication(), records
    )
    pp_b = signed(c.keyring, 0, PrePrepare(0, 1, batch_digest((b,)), 0, (b,), 0, b""))
    out = restored.step(Deliver(1, 0, encode(pp_b)))
    assert not any(isinstance(s.message, Prepare) for s in out.send)
    assert restored.stats["drop.conflicting-pre-prepare"] == 1
    out = restored.step(Deliver(2, 0, encode(pp_a)))
    prepares = [s.message for s in out.send if isinstance(s.message, Prepare)]
    assert [p.digest for p in prepares] == [pp_a.digest]


def test_restore_keeps_view_and_prepared_certificates() -> None:
    c = Cluster(
        n=4, settings={"batch_size": 1, "view_change_timeout_ms": 300, "client_retry_ms": 100}
    )
    c.run_requests(1)
    c.filters.append(lambda s, t, m: not isinstance(m, __import__("pbft.messages").messages.Commit))
    c.submit(CLIENT, b"x")
    c.run(max_ms=20)
    restored = Replica.restore(2, c.config, c.keyring.authenticator(2), c.apps[2], c.persisted[2])
    assert restored._log[2].prepared_proof is not None
    restored.step(Tick(10**6))  # its view-change timer is not running: nothing waits
    out = restored.step(Deliver(10**6, 1, encode(_vc(c, 1, 1))))
    out = restored.step(Deliver(10**6, 3, encode(_vc(c, 3, 1))))
    (vc,) = [s.message for s in out.send if isinstance(s.message, ViewChange)]
    assert [p.pre_prepare.seq for p in vc.prepared] == [1, 2]  # all above h
    again = Replica.restore(
        2, c.config, c.keyring.authenticator(2), c.apps[2], [*c.persisted[2], *out.persist]
    )
    assert again.view == 1 and again.in_view_change


def test_committed_batch_round_trips_through_codec() -> None:
    c = Cluster(n=4, settings={"batch_size": 1})
    c.run_requests(1)
    batch = c.apps[0].batches[0]
    assert decode(encode(batch), CommittedBatch) == batch


def test_signing_bytes_covers_everything_but_the_signature() -> None:
    kr = Keyring(1)
    cp = signed(kr, 2, Checkpoint(10, b"\x01" * 32, 2, b""))
    assert kr.authenticator(0).verify(2, signing_bytes(cp), cp.signature)
    assert not kr.authenticator(0).verify(
        2, signing_bytes(dataclasses.replace(cp, seq=20)), cp.signature
    )


def test_config_rejects_too_small_network() -> None:
    import pytest

    with pytest.raises(ValueError):
        PBFTConfig(n=3)
    with pytest.raises(ValueError):
        Replica(4, PBFTConfig(n=4), Keyring(1).authenticator(4), MemoryApplication())


def test_restore_below_a_snapshot_rebuilds_clients_from_the_application() -> None:
    """A block store cut back below the last checkpoint (a torn tail repaired) re-executes
    the lost batch with the requests fresh, not stale.

    The checkpoint's snapshot records each client's timestamp as of its
    sequence number; trusted over an application that now ends one batch
    earlier, it made the refilled batch's requests look already executed
    (a live node stored them as DUPLICATE_TXID where its peers had VALID).
    """
    c = Cluster(n=4, settings={"batch_size": 1, "checkpoint_interval": 2})
    c.run_requests(2)
    full = c.apps[2]
    assert full.last_executed == 2
    assert any(type(decode(r)).__name__ == "Snapshot" for r in c.persisted[2])
    cut = MemoryApplication()
    first = full.batch_at(1)
    assert first is not None
    cut.execute(first)
    restored = Replica.restore(2, c.config, c.keyring.authenticator(2), cut, c.persisted[2])
    lost = full.batch_at(2)
    assert lost is not None
    assert restored._freshness(lost.requests) == (True,) * len(lost.requests)
    assert restored._last_ts == {req.client: req.timestamp for req in first.requests}
