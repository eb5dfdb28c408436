"""Every mutant in tests/pbft_mutants.py is observably broken.

Network-fault mutants are caught end to end here (loss and reordering in the
direct-delivery harness, then the safety or liveness check). Mutants that need
a Byzantine peer are shown to act on exactly the forged or short-quorum input a
correct replica refuses; sim's property suite runs the full scenarios.
"""

from __future__ import annotations

import random

import pytest
from pbft_harness import Cluster
from pbft_mutants import MUTANTS
from test_pbft_replica import CLIENT, _vc, request, signed

from ledger.codec import encode
from pbft.api import Deliver
from pbft.memapp import MemoryApplication
from pbft.messages import Commit, NewView, Prepare, PrePrepare, ViewChange, batch_digest
from pbft.replica import Replica


def lossy_run(cls: type[Replica], seed: int) -> Cluster:
    c = Cluster(
        n=4,
        clients=3,
        latency=(1, 30),
        seed=seed,
        replica_class=cls,
        settings={
            "batch_size": 2,
            "view_change_timeout_ms": 300,
            "client_retry_ms": 150,
            "checkpoint_interval": 4,
            "watermark_window": 8,
        },
    )
    rng = random.Random(seed)
    c.filters.append(lambda s, t, m: rng.random() > 0.1)
    c.run_requests(8, max_ms=200_000)
    return c


@pytest.mark.parametrize("seed", [1, 2])
def test_correct_replica_survives_the_lossy_runs(seed: int) -> None:
    c = lossy_run(Replica, seed)
    c.assert_safe()
    assert c.all_done()


@pytest.mark.slow
def test_message_loss_exposes_the_gap_skipping_mutant() -> None:
    c = lossy_run(MUTANTS["skips-gaps"], 1)
    with pytest.raises(AssertionError):
        c.assert_safe()


def partial_commit_run(cls: type[Replica]) -> Cluster:
    """Seq 2 commits at replicas 0 and 1 only; 2 and 3 stay prepared and force a view change.

    Retransmission repairs random loss without a view change, so this stages the
    one loss pattern it cannot repair: COMMITs of view 0 never reach 2 and 3.
    """
    c = Cluster(
        n=4,
        replica_class=cls,
        settings={"batch_size": 1, "view_change_timeout_ms": 300, "client_retry_ms": 100},
    )
    c.run_requests(1)
    c.filters.append(lambda s, t, m: not (isinstance(m, Commit) and m.view == 0 and t >= 2))
    c.submit(CLIENT, b"second")
    c.run(max_ms=5000)
    return c


@pytest.mark.parametrize("cls", [Replica, MUTANTS["new-view-drops-prepared"]])
def test_view_change_after_partial_commit_exposes_new_view_mutant(cls: type[Replica]) -> None:
    c = partial_commit_run(cls)
    assert all(r.view >= 1 for r in c.replicas)
    if cls is Replica:
        c.assert_safe()
        assert [app.last_executed for app in c.apps] == [2, 2, 2, 2]
    else:
        with pytest.raises(AssertionError):
            c.assert_safe()


@pytest.mark.parametrize("cls", [Replica, MUTANTS["ignores-watermarks"]])
def test_watermark_mutant_lets_a_byzantine_primary_grow_the_log(cls: type[Replica]) -> None:
    # The primary proposes one batch per sequence number far above H = h + L.
    c = Cluster(n=4, settings={"checkpoint_interval": 4, "watermark_window": 8})
    r = _fresh(cls, c, 1)
    for k in range(30):
        req = request(c.keyring, b"far-%d" % k, ts=k + 1, client=CLIENT + k)
        pp = PrePrepare(0, 9 + k, batch_digest((req,)), 0, (req,), 0, b"")
        r.step(Deliver(k, 0, encode(signed(c.keyring, 0, pp))))
    slots = r.memory_footprint()["slots"]
    if cls is Replica:
        assert slots == 0 and r.stats["drop.outside-watermarks"] == 30
    else:
        assert slots == 30 > c.config.watermark_window


def _fresh(cls: type[Replica], c: Cluster, i: int) -> Replica:
    return cls(i, c.config, c.keyring.authenticator(i), MemoryApplication())


@pytest.mark.parametrize("cls", [Replica, MUTANTS["commit-quorum-f+1"]])
def test_commit_quorum_mutant_executes_on_f_plus_1_commits(cls: type[Replica]) -> None:
    # Replica 1 prepared; only it and a Byzantine replica 3 commit.
    c = Cluster(n=4)
    r = _fresh(cls, c, 1)
    req = request(c.keyring, b"op")
    d = batch_digest((req,))
    r.step(Deliver(0, 0, encode(signed(c.keyring, 0, PrePrepare(0, 1, d, 0, (req,), 0, b"")))))
    r.step(Deliver(0, 2, encode(signed(c.keyring, 2, Prepare(0, 1, d, 0, 2, b"")))))
    r.step(Deliver(0, 3, encode(signed(c.keyring, 3, Commit(0, 1, d, 0, 3, b"")))))
    assert r.last_executed == (1 if cls is not Replica else 0)


@pytest.mark.parametrize("cls", [Replica, MUTANTS["pre-prepare-from-anyone"]])
def test_pre_prepare_sender_mutant_prepares_a_backups_batch(cls: type[Replica]) -> None:
    c = Cluster(n=4)
    r = _fresh(cls, c, 1)
    req = request(c.keyring, b"op")
    fake = signed(c.keyring, 3, PrePrepare(0, 1, batch_digest((req,)), 0, (req,), 3, b""))
    out = r.step(Deliver(0, 3, encode(fake)))
    prepared = any(isinstance(s.message, Prepare) for s in out.send)
    assert prepared == (cls is not Replica)


@pytest.mark.parametrize("cls", [Replica, MUTANTS["skips-view-change-signatures"]])
def test_view_change_signature_mutant_joins_on_forged_messages(cls: type[Replica]) -> None:
    # A Byzantine replica forges VIEW-CHANGEs in replicas 1's and 2's names.
    c = Cluster(n=4)
    r = _fresh(cls, c, 3)
    for victim in (1, 2):
        forged = ViewChange(7, 0, (), (), victim, b"\x00" * 16)
        r.step(Deliver(0, 0, encode(forged)))
    assert (r.view == 7) == (cls is not Replica)
    if cls is Replica:
        assert r.stats["drop.bad-view-change"] == 2


@pytest.mark.parametrize("cls", [Replica, MUTANTS["trusts-new-view"]])
def test_trusting_new_view_mutant_installs_a_doctored_o(cls: type[Replica]) -> None:
    # Byzantine new primary 1 has V = 3 VIEW-CHANGEs, one carrying a prepared
    # certificate for seq 1, yet sends O with a null batch there.
    c = Cluster(n=4, settings={"batch_size": 1})
    c.filters.append(lambda s, t, m: not isinstance(m, Commit))
    c.submit(CLIENT, b"op")
    c.run(max_ms=30)
    proof = c.replicas[2]._log[1].prepared_proof
    assert proof is not None
    vcs = (
        signed(c.keyring, 2, ViewChange(1, 0, (), (proof,), 2, b"")),
        _vc(c, 1, 1),
        _vc(c, 3, 1),
    )
    null = signed(c.keyring, 1, PrePrepare(1, 1, batch_digest(()), 0, (), 1, b""))
    nv = signed(c.keyring, 1, NewView(1, vcs, (null,), 1, b""))
    r = _fresh(cls, c, 3)
    r.step(Deliver(0, 1, encode(nv)))
    assert (r.view == 1) == (cls is not Replica)
    if cls is Replica:
        assert r.stats["drop.new-view-bad-o"] == 1


def test_every_mutant_is_registered_and_distinct() -> None:
    assert len(MUTANTS) >= 5
    assert all(issubclass(cls, Replica) and cls is not Replica for cls in MUTANTS.values())
    assert len(set(MUTANTS.values())) == len(MUTANTS)
