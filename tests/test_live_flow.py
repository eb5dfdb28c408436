"""The load generator's machinery without a broker: the timer wheel, endorsement rounds, ends."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from ledger.codec import encode
from ledger.transaction import SignedProposal
from msp.policy import parse
from sim.fabric.sdk import EndorsementFailed
from sim.live import flow
from sim.live.client import Busy, NoReply, _tag_of
from sim.live.flow import EndorsementRound, RememberedPolicy
from sim.live.load import classify
from sim.live.transport import record_tag
from sim.live.wheel import Wheel
from sim.live.wire import BUSY, EndorseResponse, FileResponse
from sim.live.wire import Busy as Busy_


def test_the_wheel_fires_in_order_never_early_and_only_once() -> None:
    async def scenario() -> list[tuple[str, float]]:
        wheel = Wheel(resolution_s=0.01)
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []
        start = loop.time()

        def note(name: str, due: float) -> None:
            fired.append((name, loop.time() - due))

        for name, delay in (("late", 0.05), ("early", 0.01), ("middle", 0.03), ("twin", 0.03)):
            wheel.after(delay, lambda n=name, d=start + delay: note(n, d))
        # A callback scheduling another, due at once, runs in the same sweep or the next.
        wheel.after(0.02, lambda: wheel.after(0.0, lambda: note("chained", loop.time())))
        await asyncio.sleep(0.2)
        assert len(wheel) == 0
        return fired

    fired = asyncio.run(scenario())
    names = [name for name, _ in fired]
    assert [n for n in names if n != "chained"] == ["early", "middle", "twin", "late"]
    assert names.count("chained") == 1 and names.index("chained") > names.index("early")
    assert all(late >= 0 for _, late in fired)  # never before its time


class _FakePool:
    """What an endorsement round uses of a client pool, recording the asks."""

    def __init__(self) -> None:
        self.wheel = Wheel(resolution_s=0.01)
        self.asked: dict[int, tuple[int, Any]] = {}
        self.forgotten: set[int] = set()
        self._ids = iter(range(1, 1000))

    def ask_endorsement(self, replica: int, _proposal: bytes, ended: Any) -> int:
        request_id = next(self._ids)
        self.asked[request_id] = (replica, ended)
        return request_id

    def forget(self, request_id: int) -> None:
        self.forgotten.add(request_id)

    def answer(self, replica: int, error: str) -> None:
        request_id = next(r for r, (p, _) in self.asked.items() if p == replica)
        _, ended = self.asked.pop(request_id)
        ended(EndorseResponse(request_id, replica, b"", error))


def _round(pool: _FakePool, results: list[Any]) -> EndorsementRound:
    signed = SignedProposal(b"proposal", b"signature")
    plan = ((0, 1), (2, 3))
    return EndorsementRound(pool, None, plan, signed, b"wire", 0, results.append)  # type: ignore[arg-type]


def test_a_refusing_first_peer_brings_in_the_others_and_all_refusing_is_an_error() -> None:
    async def scenario() -> list[Any]:
        pool, results = _FakePool(), []
        _round(pool, results)
        assert sorted(p for p, _ in pool.asked.values()) == [0, 1]  # a smallest set first
        pool.answer(0, "chaincode said no")
        assert sorted(p for p, _ in pool.asked.values()) == [1, 2, 3]
        for replica in (1, 2, 3):
            pool.answer(replica, "chaincode said no")
        return results

    (result,) = asyncio.run(scenario())
    assert isinstance(result, EndorsementFailed) and "chaincode said no" in str(result)


def test_busy_peers_end_a_round_as_refused_for_load() -> None:
    async def scenario() -> list[Any]:
        pool, results = _FakePool(), []
        _round(pool, results)
        for replica in (0, 1, 2, 3):
            pool.answer(replica, BUSY)
        return results

    (result,) = asyncio.run(scenario())
    assert isinstance(result, Busy) and classify(result) == ("refused", "")


def test_slow_first_peers_are_hedged_and_silent_peers_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flow, "HEDGE_S", 0.02)
    monkeypatch.setattr(flow, "ENDORSE_TIMEOUT_S", 0.05)

    async def scenario() -> tuple[list[Any], _FakePool]:
        pool, results = _FakePool(), []
        _round(pool, results)
        await asyncio.sleep(0.035)
        assert sorted(p for p, _ in pool.asked.values()) == [0, 1, 2, 3]  # hedged
        assert not results
        await asyncio.sleep(0.1)
        return results, pool

    results, pool = asyncio.run(scenario())
    (result,) = results
    assert isinstance(result, EndorsementFailed) and "did not answer" in str(result)
    assert pool.forgotten == set(pool.asked)  # late answers are no longer awaited


def test_every_way_a_request_ends_has_one_name() -> None:
    assert classify((True, "tx1")) == ("committed", "tx1")
    assert classify((False, "tx2")) == ("invalid", "tx2")
    assert classify(Busy("full")) == ("refused", "")
    assert classify(TimeoutError()) == ("timed_out", "")
    assert classify(NoReply("gone")) == ("timed_out", "")
    assert classify(EndorsementFailed("no", "refused")) == ("error", "")
    with pytest.raises(ZeroDivisionError):  # a bug is not an outcome
        classify(ZeroDivisionError())


@pytest.mark.parametrize(
    "payload",
    [
        encode(Busy_(1001, 5, 2)),
        encode(EndorseResponse(1, 2, b"x" * 300, "")),
        encode(FileResponse(1, 2, "d" * 64, b"data", "")),
        b"\x92\xcd\x01\x00",  # a tag above 255
        b"\xc0\x01",  # not an array
        b"\x90",  # an empty array
        b"",
    ],
)
def test_the_quick_tag_read_agrees_with_msgpack(payload: bytes) -> None:
    assert _tag_of(payload) == (record_tag(payload) or 0)


@dataclass(frozen=True)
class _Member:
    name: str
    mspid: str
    role: str = "peer"


def test_a_remembered_policy_answers_as_the_policy_and_asks_it_once_per_set() -> None:
    policy = parse("AND('Org1.member', OR('Org2.member', 'Org3.member'))")
    asked: list[frozenset[Any]] = []

    class Counting:
        def evaluate(self, identities: Any) -> bool:
            asked.append(frozenset(identities))
            return policy.evaluate(identities)

    remembered = RememberedPolicy(Counting())  # type: ignore[arg-type]
    peers = [_Member("a", "Org1"), _Member("b", "Org2"), _Member("c", "Org3"), _Member("d", "Org1")]
    subsets = [[p for i, p in enumerate(peers) if mask >> i & 1] for mask in range(1 << len(peers))]
    for _ in range(3):
        for subset in subsets:
            assert remembered.evaluate(iter(subset)) == policy.evaluate(subset)  # type: ignore[arg-type]
            assert remembered.evaluate(reversed(subset)) == policy.evaluate(subset)  # type: ignore[arg-type]
    assert len(asked) == len(subsets) == len(set(asked))
