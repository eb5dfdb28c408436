"""The ``liar`` behaviour, piece by piece and as the attack it was built for.

The unit tests drive :class:`sim.world.byzantine.Liar` directly with signed
messages and check each thing its docstring promises; the scenario test runs
tests/scenarios/selective-commit.toml with the real replica, which must stay
safe and live while the attack plays out as designed (the lied-about slots
end up holding empty batches on every correct replica). That the same file
catches a replica committing on f+1 COMMITs is tests/test_properties_mutants.py.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from pbft_scenarios import assert_healthy

from ledger.codec import encode
from pbft.api import BROADCAST, CLIENT_ID_BASE, Deliver, PBFTConfig, Send
from pbft.auth import Keyring
from pbft.messages import (
    Commit,
    Prepare,
    PreparedProof,
    PrePrepare,
    Request,
    Status,
    ViewChange,
    batch_digest,
    signing_bytes,
)
from pbft.newview import NULL_DIGEST
from sim.scenario.reader import load_scenario
from sim.scenario.reproduce import failure_report
from sim.world.byzantine import Context, Emit, Liar, make_behaviour
from sim.world.simulation import run_scenario

ME, VICTIM, N = 1, 2, 4
KEYS = Keyring(7)
SCENARIO = Path(__file__).parent / "scenarios" / "selective-commit.toml"


def signed(principal: int, msg: Any) -> Any:
    return replace(msg, signature=KEYS.authenticator(principal).sign(encode(msg)))


def liar(**params: float | int | str) -> Liar:
    ctx = Context(
        replica_id=ME,
        config=PBFTConfig(n=N),
        auth=KEYS.authenticator(ME),
        rng=random.Random(0),
        params=dict(params or {"victim": VICTIM}),
        view=lambda: 0,
    )
    behaviour = make_behaviour("liar", ctx)
    assert isinstance(behaviour, Liar)
    return behaviour


def genuine(principal: int, msg: Any) -> bool:
    return KEYS.authenticator(ME).verify(principal, signing_bytes(msg), msg.signature)


def request(ts: int = 1) -> Request:
    client = CLIENT_ID_BASE
    return signed(client, Request(client, ts, b"op", b""))


def pre_prepare(view: int, seq: int, primary: int) -> PrePrepare:
    batch = (request(seq),)
    return signed(primary, PrePrepare(view, seq, batch_digest(batch), 5, batch, primary, b""))


def vote(kind: type[Prepare] | type[Commit], pp: PrePrepare, replica: int) -> Any:
    """``replica``'s signed PREPARE or COMMIT for ``pp``."""
    unsigned = kind(
        view=pp.view,
        seq=pp.seq,
        digest=pp.digest,
        timestamp_ms=pp.timestamp_ms,
        replica=replica,
        signature=b"",
    )
    return signed(replica, unsigned)


def deliver(sender: int, msg: Any) -> Deliver:
    return Deliver(10, sender, encode(msg))


def test_the_wrapped_replica_never_sees_votes_status_or_the_victims_view_change() -> None:
    b = liar()
    pp = pre_prepare(0, 1, 0)
    prepare = vote(Prepare, pp, 3)
    commit = vote(Commit, pp, VICTIM)
    status = signed(3, Status(0, False, 0, 0, (1,), (), (), True, 3, b""))
    hidden = [
        deliver(3, prepare),
        deliver(VICTIM, commit),
        deliver(3, status),
        deliver(VICTIM, signed(VICTIM, ViewChange(1, 0, (), (), VICTIM, b""))),
    ]
    for event in hidden:
        assert b.incoming(event) is None
    shown = [deliver(0, pp), deliver(3, signed(3, ViewChange(1, 0, (), (), 3, b"")))]
    for event in shown:
        assert b.incoming(event) is event


def test_votes_go_to_the_victim_alone_with_a_commit_added_once() -> None:
    b = liar()
    pp = pre_prepare(0, 3, 0)
    prepare = vote(Prepare, pp, ME)
    out = b.outgoing(10, [Send(BROADCAST, prepare)])
    assert [e.to for e in out] == [VICTIM, VICTIM]
    assert out[0].payload == prepare
    commit = out[1].payload
    assert isinstance(commit, Commit)
    assert commit == vote(Commit, pp, ME)
    # the same prepare again (a retransmission) adds no second COMMIT
    assert [e.payload for e in b.outgoing(11, [Send(BROADCAST, prepare)])] == [prepare]
    # relayed pre-prepares and votes for anyone else are withheld
    assert b.outgoing(12, [Send(3, pp), Send(0, prepare)]) == []
    assert b.outgoing(12, [Send(VICTIM, pp)]) == [Emit(VICTIM, pp)]


def test_its_view_changes_forget_prepared_certificates() -> None:
    b = liar()
    pp = pre_prepare(0, 1, 0)
    proof = PreparedProof(pp, tuple(vote(Prepare, pp, r) for r in (1, 2)))
    vc = signed(ME, ViewChange(1, 0, (), (proof,), ME, b""))
    (emit,) = b.outgoing(10, [Send(BROADCAST, vc)])
    assert emit.to == BROADCAST
    assert isinstance(emit.payload, ViewChange)
    assert emit.payload.prepared == () and genuine(ME, emit.payload)


def test_as_primary_it_proposes_empty_batches_where_it_lied() -> None:
    for hollow, expect_empty in ((1, True), (0, False)):
        b = liar(victim=VICTIM, hollow=hollow)
        lied = pre_prepare(0, 2, 0)
        b.outgoing(10, [Send(BROADCAST, vote(Prepare, lied, ME))])
        mine = pre_prepare(1, 2, ME)
        later = pre_prepare(1, 3, ME)
        out = b.outgoing(20, [Send(BROADCAST, mine), Send(BROADCAST, later)])
        assert [e.to for e in out] == [BROADCAST, BROADCAST]
        first = out[0].payload
        assert isinstance(first, PrePrepare)
        if expect_empty:
            assert first.requests == () and first.digest == NULL_DIGEST
            assert (first.view, first.seq, first.replica) == (1, 2, ME) and genuine(ME, first)
        else:
            assert first == mine
        assert out[1].payload == later


def test_the_correct_replica_survives_the_attack_it_was_built_for() -> None:
    s = load_scenario(SCENARIO)
    trace = io.StringIO()
    result = run_scenario(s, trace=trace)
    assert result.fault_model["within"], failure_report(s, result)
    assert_healthy(s, result)
    events = [json.loads(line) for line in trace.getvalue().splitlines()]
    votes_from_liar = {
        e["to"]
        for e in events
        if e["ev"] == "send" and e["from"] == ME and e["type"] in ("Prepare", "Commit")
    }
    assert votes_from_liar == {VICTIM}
    first = {e["replica"]: e for e in events if e["ev"] == "commit" and e["seq"] == 1}
    # the attack happened: the victim's batch never made it, seq 1 is the empty batch
    # the liar proposed in view 1 (kept by later views' O if view 1 stalls before GST)
    assert min(first[r]["view"] for r in (0, 2, 3)) >= 1
    assert {first[r]["digest"] for r in (0, 2, 3)} == {NULL_DIGEST.hex()[:16]}
