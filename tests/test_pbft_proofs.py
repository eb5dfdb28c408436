"""Forged and mixed proofs staged directly at one replica: each must be refused.

Each test hands a replica one proof a Byzantine peer could build (a certificate
one vote short of a quorum, with a duplicated or out-of-range signer, votes for
another digest, view, sequence number or agreed time, an unsigned vote, a
checkpoint proof that does not match) and checks the replica refuses it, while
the genuine proof is accepted. Together they pin every condition of the
predicates in ``pbft/rules.py``, which the mutation run (``make mutation
PKG=pbft``, docs/mutation/pbft.md) weakens one at a time. The quorum boundaries
are checked at n = 4 and n = 5, where Q = 3 and 4: 2f + 1 would be 3 for both.

One file, though longer than most: the forgery helpers at the top serve every
validator, and the mutation profile names this one file as the proofs' tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from pbft_harness import Cluster
from test_pbft_replica import CLIENT, request, signed

from ledger.codec import encode
from pbft.api import Deliver, Output
from pbft.memapp import MemoryApplication
from pbft.messages import (
    Checkpoint,
    Commit,
    CommittedBatch,
    FetchState,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    StateChunk,
    ViewChange,
    batch_digest,
)
from pbft.newview import NULL_DIGEST
from pbft.replica import Replica

OTHER = b"\x11" * 32
BAD_SIGNATURE = b"\x00" * 16
SIZES = [4, 5]


def ran(n: int) -> Cluster:
    """Three batches executed everywhere, checkpoint 2 stable, seq 3 prepared in view 0."""
    c = Cluster(n=n, settings={"batch_size": 1, "checkpoint_interval": 2, "watermark_window": 8})
    c.run_requests(3)
    assert all(app.last_executed == 3 for app in c.apps)
    return c


def fresh(c: Cluster, i: int, **settings: int) -> Replica:
    config = replace(c.config, **settings) if settings else c.config
    return Replica(i, config, c.keyring.authenticator(i), MemoryApplication())


def resign(c: Cluster, msg: Any, **changes: Any) -> Any:
    """``msg`` with ``changes``, validly signed by the replica it names (a replayed vote)."""
    changed = replace(msg, **changes)
    return signed(c.keyring, changed.replica, changed)


def forgeries(
    c: Cluster, votes: tuple[Any, ...], fields: dict[str, Any]
) -> dict[str, tuple[Any, ...]]:
    """The ways to spoil a quorum of votes, each keeping Q entries where it can."""
    last = votes[-1]
    cases = {
        "one short": votes[:-1],
        "a single vote": votes[:1],
        "duplicated signer": (*votes[:-1], votes[0]),
        "unsigned vote": (*votes[:-1], replace(last, signature=BAD_SIGNATURE)),
        "signer out of range": (*votes[:-1], resign(c, last, replica=c.n)),
        "empty": (),
    }
    for name, value in fields.items():
        cases[f"vote for another {name}"] = (*votes[:-1], resign(c, last, **{name: value}))
    return cases


# ------------------------------------------------------------ checkpoint proofs


@pytest.mark.parametrize("n", SIZES)
def test_checkpoint_proof_needs_a_quorum_of_matching_signed_votes_osdi99_4_3(n: int) -> None:
    c = ran(n)
    r = c.replicas[1]
    proof = r._stable_proof
    assert len(proof) == c.config.quorum
    assert r.valid_checkpoint_proof(proof) == (2, proof[0].digest)
    extra = resign(c, proof[-1], replica=n - 1, digest=OTHER)
    cases = forgeries(c, proof, {"digest": OTHER, "seq": 4})
    cases["a quorum plus one vote for another digest"] = (*proof, extra)
    for name, forged in cases.items():
        assert r.valid_checkpoint_proof(forged) is None, name


@pytest.mark.parametrize("n", SIZES)
def test_checkpoint_becomes_stable_at_exactly_q_votes_osdi99_4_3(n: int) -> None:
    c = Cluster(n=n, settings={"checkpoint_interval": 2})
    votes = [signed(c.keyring, i, Checkpoint(2, OTHER, i, b"")) for i in range(n) if i != 1]
    r = fresh(c, 1)
    r.step(Deliver(0, 0, encode(votes[0])))  # one vote, twice: counted once
    for k, cp in enumerate(votes, start=1):
        r.step(Deliver(0, cp.replica, encode(cp)))
        assert r.stable_checkpoint == (2 if k >= c.config.quorum else 0), k
    assert r.stats["drop.duplicate"] == 1
    assert len(r._stable_proof) == c.config.quorum
    # Replica 0 votes for another digest: the n - 2 others match, fewer than Q.
    split = fresh(c, 1)
    split.step(Deliver(0, 0, encode(resign(c, votes[0], digest=b"\x22" * 32))))
    for cp in votes[1:]:
        split.step(Deliver(0, cp.replica, encode(cp)))
    assert split.stable_checkpoint == 0


# ---------------------------------------------------------- commit certificates


@pytest.mark.parametrize("n", SIZES)
def test_commit_certificate_needs_a_quorum_for_this_batch_tocs02_6_2(n: int) -> None:
    c = ran(n)
    r = c.replicas[1]
    batch = c.apps[0].batch_at(2)
    assert batch is not None and len(batch.certificate) >= c.config.quorum
    votes = batch.certificate[: c.config.quorum]
    assert r._valid_certificate(replace(batch, certificate=votes))
    fields = {"digest": OTHER, "view": 1, "seq": 3, "timestamp_ms": batch.timestamp_ms + 1}
    for name, forged in forgeries(c, votes, fields).items():
        assert not r._valid_certificate(replace(batch, certificate=forged)), name
    assert not r._valid_certificate(replace(batch, timestamp_ms=batch.timestamp_ms + 1))


# -------------------------------------------------------------- state transfer


def behind() -> tuple[Cluster, tuple[Checkpoint, ...], tuple[CommittedBatch, ...]]:
    c = Cluster(n=4, settings={"batch_size": 1, "checkpoint_interval": 2, "watermark_window": 4})
    c.crash(3)
    c.run_requests(4)
    proof = c.replicas[0]._stable_proof
    assert proof[0].seq == 4
    return c, proof, tuple(c.apps[0].batches[:4])


def offer(c: Cluster, lagger: Replica, proof: Any, batches: tuple[CommittedBatch, ...]) -> Output:
    lagger._fetch_deadline = 10**9  # it asked for state
    chunk = signed(c.keyring, 0, StateChunk(proof, batches, 0, b""))
    return lagger.step(Deliver(0, 0, encode(chunk)))


def sent(out: Output, kind: type) -> int:
    return sum(isinstance(s.message, kind) for s in out.send)


def short_certificate(batch: CommittedBatch) -> CommittedBatch:
    return replace(batch, certificate=batch.certificate[:2])


CHUNKS: dict[str, Callable[[tuple[CommittedBatch, ...]], tuple[CommittedBatch, ...]]] = {
    "state-bad-range": lambda b: b[1:],
    "state-bad-range/gap": lambda b: (b[0], *b[2:]),
    "state-bad-range/past-the-checkpoint": lambda b: (*b, replace(b[3], seq=5)),
    "state-bad-range/empty": lambda b: (),
    "state-bad-digest": lambda b: (*b[:3], replace(b[3], requests=b[2].requests)),
    "state-bad-certificate": lambda b: (*b[:3], short_certificate(b[3])),
    "state-bad-certificate/first": lambda b: (short_certificate(b[0]), *b[1:]),
    "state-bad-certificate/time": lambda b: (replace(b[0], timestamp_ms=b[0].timestamp_ms + 1),),
}


@pytest.mark.parametrize("case", sorted(CHUNKS))
def test_state_chunk_must_continue_our_log_reach_the_checkpoint_and_be_certified(
    case: str,
) -> None:
    c, proof, real = behind()
    lagger = fresh(c, 3)
    offer(c, lagger, proof, CHUNKS[case](real))
    assert lagger.stats["drop." + case.split("/")[0]] == 1
    assert lagger.last_executed == 0
    out = offer(c, lagger, proof, real)
    assert lagger.last_executed == 4 and lagger.stable_checkpoint == 4
    assert lagger.stats["state-transfer"] == 1
    assert sent(out, Reply) == 0  # the clients had their answers from those who executed


def test_partial_state_chunk_is_taken_and_a_stale_one_refused_tocs02_6_2() -> None:
    c, proof, real = behind()
    lagger = fresh(c, 3)
    offer(c, lagger, proof, real[:2])  # a bounded chunk: no digest to match yet
    assert lagger.last_executed == 2 and lagger.stable_checkpoint == 4  # it fetches on
    offer(c, lagger, proof, real[:2])
    assert lagger.stats["drop.stale-state"] == 1
    out = offer(c, lagger, proof, real[2:])
    assert lagger.last_executed == 4 and lagger.stable_checkpoint == 4
    assert sent(out, FetchState) == 0  # caught up with h: nothing more to fetch
    offer(c, lagger, proof, real)
    assert lagger.stats["drop.stale-state"] == 2
    offer(c, lagger, proof, ())  # the proven checkpoint is where we are: nothing to take
    assert lagger.stats["drop.stale-state"] == 3


def test_state_chunk_nobody_asked_for_is_ignored() -> None:
    c, proof, real = behind()
    lagger = fresh(c, 3)
    chunk = signed(c.keyring, 0, StateChunk(proof, real, 0, b""))
    lagger.step(Deliver(0, 0, encode(chunk)))
    assert lagger.stats["drop.unsolicited-state"] == 1 and lagger.last_executed == 0


# --------------------------------------------------------- prepared certificates


def certificate(c: Cluster, seq: int = 3) -> PreparedProof:
    proof = c.replicas[2]._log[seq].prepared_proof
    assert proof is not None and len(proof.prepares) == c.config.quorum - 1
    return proof


def view_change(
    c: Cluster, sender: int, prepared: tuple[PreparedProof, ...], **fields: Any
) -> ViewChange:
    stable = c.replicas[0]._stable_proof
    base = ViewChange(1, 2, stable, prepared, sender, b"")
    return signed(c.keyring, sender, replace(base, **fields))


def prepared_forgeries(c: Cluster, proof: PreparedProof) -> dict[str, PreparedProof]:
    pp, votes = proof.pre_prepare, proof.prepares
    primary_vote = signed(c.keyring, 0, replace(votes[0], replica=0, signature=b""))
    fields = {"digest": OTHER, "view": 1, "seq": 4, "timestamp_ms": pp.timestamp_ms + 1}
    cases = {
        f"prepares: {name}": PreparedProof(pp, forged)
        for name, forged in forgeries(c, votes, fields).items()
        if name != "empty" or c.config.quorum > 1
    }
    cases["prepares: the primary's own vote"] = PreparedProof(pp, (*votes[:-1], primary_vote))
    cases["pre-prepare from a backup"] = PreparedProof(resign(c, pp, replica=1), votes)
    cases["pre-prepare unsigned"] = PreparedProof(replace(pp, signature=BAD_SIGNATURE), votes)
    cases["pre-prepare of another batch"] = PreparedProof(
        resign(c, pp, requests=(request(c.keyring, b"other", ts=9),)), votes
    )
    cases["pre-prepare from out of range"] = PreparedProof(resign(c, pp, replica=c.n), votes)
    return cases


@pytest.mark.parametrize("n", SIZES)
def test_prepared_certificate_in_a_view_change_is_checked_whole_osdi99_4_4(n: int) -> None:
    c = ran(n)
    r = c.replicas[1]
    proof = certificate(c)
    assert r.valid_view_change(view_change(c, 2, (proof,)))
    for name, forged in prepared_forgeries(c, proof).items():
        assert not r.valid_view_change(view_change(c, 2, (forged,))), name


def checkpoint_proof(c: Cluster, seq: int, digest: bytes = OTHER) -> tuple[Checkpoint, ...]:
    return tuple(
        signed(c.keyring, i, Checkpoint(seq, digest, i, b"")) for i in range(c.config.quorum)
    )


def test_view_change_c_and_the_window_of_p_tocs02_4_5() -> None:
    c = ran(4)
    r = c.replicas[1]
    proof = certificate(c)
    stable = c.replicas[2]._stable_proof
    refused = {
        "claims a checkpoint without proof": dict(checkpoint_proof=()),
        "a proof of another checkpoint": dict(checkpoint_proof=checkpoint_proof(c, 4)),
        "a proof one vote short": dict(checkpoint_proof=stable[:-1]),
        "a proof while claiming none": dict(stable_seq=0),
        "a certificate at the stable checkpoint": dict(
            stable_seq=3, checkpoint_proof=checkpoint_proof(c, 3)
        ),
        "a certificate from the view asked for": dict(new_view=0),
    }
    for name, fields in refused.items():
        assert not r.valid_view_change(view_change(c, 2, (proof,), **fields)), name
    assert not r.valid_view_change(view_change(c, 2, (proof, proof)))  # two for one seq
    assert r.valid_view_change(view_change(c, 2, (proof,), stable_seq=0, checkpoint_proof=()))
    assert r.valid_view_change(view_change(c, 2, (), stable_seq=0, checkpoint_proof=()))
    narrow = fresh(c, 1, checkpoint_interval=1, watermark_window=2)
    at_high = dict(stable_seq=1, checkpoint_proof=checkpoint_proof(c, 1))
    assert narrow.valid_view_change(view_change(c, 2, (proof,), **at_high))  # 3 = h + L
    above = dict(stable_seq=0, checkpoint_proof=())
    assert not narrow.valid_view_change(view_change(c, 2, (proof,), **above))  # 3 > h + L


def test_view_change_with_a_bad_signature_is_refused() -> None:
    c = ran(4)
    vc = view_change(c, 2, (certificate(c),))
    assert not c.replicas[1].valid_view_change(replace(vc, signature=BAD_SIGNATURE))
    assert not c.replicas[1].valid_view_change(vc, b"not what was signed")


# ---------------------------------------------------------------- NEW-VIEW's V


def new_view(c: Cluster, vcs: tuple[ViewChange, ...], view: int = 1) -> NewView:
    """The NEW-VIEW a correct primary of ``view`` builds from ``vcs``."""
    plan = c.replicas[0].compute_new_view(vcs)
    p = c.config.primary(view)
    o = tuple(
        signed(c.keyring, p, PrePrepare(view, x.seq, x.digest, x.timestamp_ms, x.requests, p, b""))
        for x in plan.proposals
    )
    return signed(c.keyring, p, NewView(view, vcs, o, p, b""))


def empty_new_view(c: Cluster, view: int) -> NewView:
    vcs = tuple(
        signed(c.keyring, i, ViewChange(view, 0, (), (), i, b"")) for i in range(c.config.quorum)
    )
    return new_view(c, vcs, view)


def test_new_view_refusals_and_catching_up_through_it_osdi99_4_4() -> None:
    c = Cluster(n=4)
    r = fresh(c, 3)
    r.step(Deliver(0, 1, encode(empty_new_view(c, 1))))
    r.step(Deliver(0, 2, encode(empty_new_view(c, 2))))
    assert r.view == 2 and r.stats["catch-up.new-view"] == 2  # installed outside a view change
    r.step(Deliver(0, 1, encode(empty_new_view(c, 1))))
    r.step(Deliver(0, 2, encode(empty_new_view(c, 2))))
    assert r.stats["drop.old-view"] == 2 and r.view == 2
    in_0s_name = signed(c.keyring, 0, replace(empty_new_view(c, 3), replica=0, signature=b""))
    r.step(Deliver(0, 0, encode(in_0s_name)))
    assert r.stats["drop.new-view-not-from-primary"] == 1 and r.view == 2


@pytest.mark.parametrize("n", SIZES)
def test_new_view_needs_q_valid_view_changes_for_its_view_tocs02_4_5(n: int) -> None:
    c = ran(n)
    r = fresh(c, 2)
    q = c.config.quorum
    vcs = tuple(view_change(c, i, (certificate(c),)) for i in range(1, q + 1))
    assert r.valid_new_view_certificate(new_view(c, vcs))
    cases = {
        "one short": vcs[:-1],
        "one sender twice": (*vcs[:-1], vcs[0]),
        "one for another view": (*vcs[:-1], view_change(c, q, (), new_view=2)),
        "one unsigned": (*vcs[:-1], replace(vcs[-1], signature=BAD_SIGNATURE)),
        "one with a forged certificate": (
            *vcs[:-1],
            view_change(c, q, (PreparedProof(certificate(c).pre_prepare, ()),)),
        ),
        "one from out of range": (*vcs[:-1], view_change(c, n, ())),
    }
    for name, forged in cases.items():
        assert not r.valid_new_view_certificate(new_view(c, forged)), name


# ------------------------------------------------- min-s and the winning certificate


def bare(view: int, seq: int, digest: bytes, ts: int = 5) -> PreparedProof:
    """A certificate's pre-prepare alone: O is computed from already-validated V."""
    return PreparedProof(PrePrepare(view, seq, digest, ts, (), view % 4, b""), ())


def vc_of(stable: int, *prepared: PreparedProof, sender: int = 1) -> ViewChange:
    return ViewChange(3, stable, (), prepared, sender, b"")


def test_min_s_is_the_latest_stable_checkpoint_in_v_osdi99_4_4() -> None:
    r = fresh(Cluster(n=4), 1)
    for order in ([0, 6, 2], [6, 0, 2], [2, 0, 6]):
        plan = r.compute_new_view([vc_of(s, bare(0, 7, OTHER)) for s in order])
        assert plan.min_s == 6 and [p.seq for p in plan.proposals] == [7]
    assert r.compute_new_view([vc_of(0)]).min_s == 0


def test_the_highest_views_certificate_wins_a_sequence_number_osdi99_4_4() -> None:
    r = fresh(Cluster(n=4), 1)
    old, new = bare(0, 1, OTHER, ts=5), bare(2, 1, b"\x01" * 32, ts=6)
    for first, second in ((old, new), (new, old)):
        (p,) = r.compute_new_view([vc_of(0, first), vc_of(0, second)]).proposals
        assert (p.digest, p.timestamp_ms) == (b"\x01" * 32, 6)
    low, high = bare(1, 1, b"\x01" * 32), bare(1, 1, b"\x02" * 32)
    for first, second in ((low, high), (high, low)):
        (p,) = r.compute_new_view([vc_of(0, first), vc_of(0, second)]).proposals
        assert p.digest == b"\x02" * 32  # one view, two digests: beyond f faults, but one O


def test_o_fills_gaps_with_null_batches_at_a_neighbours_time_osdi99_4_4() -> None:
    r = fresh(Cluster(n=4), 1)
    plan = r.compute_new_view([vc_of(2, bare(0, 4, OTHER, ts=40), bare(0, 6, OTHER, ts=60))])
    assert (plan.min_s, plan.max_s) == (2, 6)
    assert [(p.seq, p.digest, p.timestamp_ms) for p in plan.proposals] == [
        (3, NULL_DIGEST, 40),
        (4, OTHER, 40),
        (5, NULL_DIGEST, 40),
        (6, OTHER, 60),
    ]
    # A VIEW-CHANGE from a replica with an older checkpoint: its certificates at or
    # below min-s are skipped, the ones above still count.
    older = vc_of(0, bare(0, 1, OTHER, ts=10), bare(0, 3, OTHER, ts=30))
    below = r.compute_new_view([older, vc_of(2)])
    assert [(p.seq, p.timestamp_ms) for p in below.proposals] == [(3, 30)]


# ------------------------------------------------------------- NEW-VIEW's O


def test_o_must_be_exactly_the_recomputed_one_osdi99_4_4() -> None:
    c = ran(4)
    r = fresh(c, 2)
    vcs = tuple(view_change(c, i, (certificate(c),)) for i in (1, 2, 3))
    nv = new_view(c, vcs)
    plan = r.compute_new_view(vcs)
    assert r.new_view_o_ok(nv, plan)
    (pp,) = nv.pre_prepares
    cases = {
        "another seq": resign(c, pp, seq=4),
        "another digest": resign(c, pp, digest=OTHER),
        "another time": resign(c, pp, timestamp_ms=pp.timestamp_ms + 1),
        "the batch emptied": resign(c, pp, requests=()),
        "another view": resign(c, pp, view=2),
        "another sender": resign(c, pp, replica=2),
        "unsigned": replace(pp, signature=BAD_SIGNATURE),
    }
    for name, forged in cases.items():
        assert not r.new_view_o_ok(replace(nv, pre_prepares=(forged,)), plan), name
    assert not r.new_view_o_ok(replace(nv, pre_prepares=(pp, pp)), plan)
    assert not r.new_view_o_ok(replace(nv, pre_prepares=()), plan)


# ------------------------------------------ votes: who counts, and how many


def pre_prepared(n: int) -> tuple[Cluster, Replica, PrePrepare]:
    c = Cluster(n=n)
    r = fresh(c, 1)
    req = request(c.keyring, b"op")
    pp = signed(c.keyring, 0, PrePrepare(0, 1, batch_digest((req,)), 0, (req,), 0, b""))
    r.step(Deliver(0, 0, encode(pp)))
    return c, r, pp


def vote(c: Cluster, kind: type[Prepare] | type[Commit], pp: PrePrepare, i: int) -> bytes:
    return encode(signed(c.keyring, i, kind(pp.view, pp.seq, pp.digest, pp.timestamp_ms, i, b"")))


@pytest.mark.parametrize("n", SIZES)
def test_prepared_at_exactly_q_minus_1_backup_prepares_osdi99_4_2(n: int) -> None:
    c, r, pp = pre_prepared(n)
    r.step(Deliver(0, 0, vote(c, Prepare, pp, 0)))  # the primary's PREPARE is not a vote
    assert r.stats["drop.prepare-from-primary"] == 1
    others = [i for i in range(2, n)]
    for k, i in enumerate(others[: c.config.quorum - 2], start=2):
        assert not r._log[1].prepared, k
        r.step(Deliver(0, i, vote(c, Prepare, pp, i)))
    assert r._log[1].prepared  # its own PREPARE and Q - 2 others
    assert len(r._log[1].prepared_proof.prepares) == c.config.quorum - 1  # type: ignore[union-attr]


@pytest.mark.parametrize("n", SIZES)
def test_committed_local_at_exactly_q_commits_osdi99_4_2(n: int) -> None:
    c, r, pp = pre_prepared(n)
    for i in range(2, c.config.quorum):
        r.step(Deliver(0, i, vote(c, Prepare, pp, i)))
    assert r._log[1].prepared
    senders = [0, *range(2, n)]
    for i in senders[: c.config.quorum - 2]:
        r.step(Deliver(0, i, vote(c, Commit, pp, i)))
    assert r.last_executed == 0  # its own COMMIT and Q - 2 others
    r.step(Deliver(0, senders[-1], vote(c, Commit, pp, senders[-1])))
    assert r.last_executed == 1


def test_a_commit_counts_only_for_the_replica_that_signed_it_osdi99_4_1() -> None:
    c, r, pp = pre_prepared(4)
    r.step(Deliver(0, 2, vote(c, Prepare, pp, 2)))
    r.step(Deliver(0, 2, vote(c, Commit, pp, 2)))
    in_3s_name = Commit(pp.view, pp.seq, pp.digest, pp.timestamp_ms, 3, b"")
    forged = replace(in_3s_name, signature=signed(c.keyring, 2, in_3s_name).signature)
    r.step(Deliver(0, 2, encode(forged)))
    assert r.stats["drop.bad-signature"] == 1 and r.last_executed == 0
    other_batch = Commit(pp.view, pp.seq, OTHER, pp.timestamp_ms, 3, b"")
    r.step(Deliver(0, 3, encode(signed(c.keyring, 3, other_batch))))
    assert r.last_executed == 0  # a vote for another batch is no vote for this one
    r.step(Deliver(0, 0, vote(c, Commit, pp, 0)))
    assert r.last_executed == 1


def test_a_pre_prepare_from_a_backup_is_refused_osdi99_4_2() -> None:
    c = Cluster(n=4)
    r = fresh(c, 1)
    req = request(c.keyring, b"op", client=CLIENT)
    rogue = signed(c.keyring, 2, PrePrepare(0, 1, batch_digest((req,)), 0, (req,), 2, b""))
    out = r.step(Deliver(0, 2, encode(rogue)))
    assert r.stats["drop.pre-prepare-not-from-primary"] == 1 and not out.send


def test_a_prepared_certificate_holds_exactly_q_minus_1_prepares_osdi99_4_2() -> None:
    # Every backup's PREPARE arrives before the pre-prepare: the certificate kept (and
    # later sent in VIEW-CHANGEs) is still the lowest-numbered Q - 1 of them.
    c = Cluster(n=7)
    r = fresh(c, 1)
    req = request(c.keyring, b"op")
    pp = signed(c.keyring, 0, PrePrepare(0, 1, batch_digest((req,)), 0, (req,), 0, b""))
    for i in range(2, 7):
        r.step(Deliver(0, i, vote(c, Prepare, pp, i)))
    assert not r._log[1].prepared
    r.step(Deliver(0, 0, encode(pp)))
    proof = r._log[1].prepared_proof
    assert proof is not None and [p.replica for p in proof.prepares] == [1, 2, 3, 4]


def test_votes_are_counted_once_per_replica_and_view_osdi99_4_2() -> None:
    c, r, pp = pre_prepared(5)
    r.step(Deliver(0, 2, vote(c, Prepare, pp, 2)))
    r.step(Deliver(0, 2, vote(c, Prepare, pp, 2)))
    assert r.stats["drop.duplicate"] == 1 and not r._log[1].prepared
    r.step(Deliver(0, 3, vote(c, Prepare, pp, 3)))
    assert r._log[1].prepared
    for i in (2, 2, 3, 3):
        r.step(Deliver(0, i, vote(c, Commit, pp, i)))
    assert r.stats["drop.duplicate"] == 3 and r.last_executed == 0
    r.step(Deliver(0, 4, vote(c, Commit, pp, 4)))
    assert r.last_executed == 1


def test_watermarks_take_h_plus_1_to_h_plus_l_only_osdi99_4_3() -> None:
    c = Cluster(n=4, settings={"checkpoint_interval": 2, "watermark_window": 4})
    r = fresh(c, 1)
    assert [r.in_watermarks(s) for s in range(6)] == [False, True, True, True, True, False]
    r._h = 2
    assert [r.in_watermarks(s) for s in range(2, 8)] == [False, True, True, True, True, False]


def test_a_partial_chunk_below_the_stable_checkpoint_fetches_on_tocs02_6_2() -> None:
    c, proof, real = behind()
    lagger = fresh(c, 3)
    offer(c, lagger, proof, real[:2])
    assert lagger.stable_checkpoint == 4 and lagger.last_executed == 2
    out = offer(c, lagger, proof, real[2:3])  # seq 3 of 4: the checkpoint is already stable
    assert lagger.last_executed == 3 and sent(out, FetchState) > 0


def test_far_checkpoint_votes_keep_one_per_replica_and_never_shadow_the_window_tocs02_6_2() -> None:
    c = Cluster(n=4, settings={"checkpoint_interval": 2, "watermark_window": 4})
    r = fresh(c, 1)

    def cp(i: int, seq: int) -> bytes:
        return encode(signed(c.keyring, i, Checkpoint(seq, OTHER, i, b"")))

    # Votes at H = h + L = 4 are inside the window: a later far vote does not replace them.
    r.step(Deliver(0, 0, cp(0, 4)))
    r.step(Deliver(0, 2, cp(2, 4)))
    r.step(Deliver(0, 0, cp(0, 6)))
    r.step(Deliver(0, 3, cp(3, 4)))
    assert r.stable_checkpoint == 4
    # Beyond H each replica keeps only its newest vote, and an older one is stale.
    for seq in (10, 12, 14):
        r.step(Deliver(0, 2, cp(2, seq)))
    r.step(Deliver(0, 2, cp(2, 12)))
    r.step(Deliver(0, 2, cp(2, 14)))
    assert r.memory_footprint()["checkpoint_votes"] == 2  # replica 0 at 6, replica 2 at 14
    assert r.stats["drop.stale-checkpoint"] == 2


def test_what_a_replica_will_not_read_and_why() -> None:
    """Every message is decoded, typed, from a known replica and signed by it, or dropped."""
    c = Cluster(n=4)
    r = fresh(c, 1)
    r.step(Deliver(0, 2, b"\xc1"))  # not msgpack
    reply = signed(c.keyring, 2, Reply(0, 1, CLIENT, 2, b"", b""))
    r.step(Deliver(0, 2, encode(reply)))  # a replica has no use for REPLYs
    stranger = signed(c.keyring, 4, Checkpoint(2, OTHER, 4, b""))  # ids run 0..n-1
    r.step(Deliver(0, 2, encode(stranger)))
    unsigned = Checkpoint(2, OTHER, 2, BAD_SIGNATURE)
    r.step(Deliver(0, 2, encode(unsigned)))
    dropped = {k: v for k, v in r.stats.items() if k.startswith("drop.")}
    assert [k for k in dropped if k.startswith("drop.undecodable.")] != []
    assert sum(dropped.values()) == 4
    assert dropped["drop.unexpected-type"] == 1
    assert dropped["drop.unknown-sender"] == 1
    assert dropped["drop.bad-signature"] == 1


def test_committed_local_needs_the_slot_prepared_first_osdi99_4_2() -> None:
    c, r, pp = pre_prepared(4)
    for i in (0, 2, 3):
        r.step(Deliver(0, i, vote(c, Commit, pp, i)))
    slot = r._log[1]
    assert len(slot.commit_votes(pp)) == c.config.quorum and not slot.prepared
    assert not r.committed_local(slot) and r.last_executed == 0
    r.step(Deliver(0, 2, vote(c, Prepare, pp, 2)))
    assert slot.prepared and r.committed_local(slot) and r.last_executed == 1
