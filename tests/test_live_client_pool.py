"""The client pool's callback core without a broker: admission, ends, abandoning, retransmits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pbft.api import BROADCAST
from sim.live import cluster
from sim.live.client import Busy, ClientPool
from sim.live.netconfig import load_config
from sim.live.transport import BrokerURL, Incoming
from sim.live.wire import Busy as WireBusy


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("net")
    cluster.init(directory, cluster.UpOptions(broker="mqtt://127.0.0.1:1", chaincode="none"))
    return directory


@pytest.fixture
def sent() -> list[tuple[int, bytes, int | None]]:
    """What the pool under test published, in order: (to, payload, sender)."""
    return []


def _pool(network: Path, size: int, sent: list[tuple[int, bytes, int | None]]) -> ClientPool:
    """A pool as ``async with`` leaves it, its messages recorded instead of published."""
    user = load_config(network).users[1].name
    pool = ClientPool(network, user, size, broker=BrokerURL("127.0.0.1", 1))
    pool._idle = list(pool.ids)

    def queue(to: int, payload: bytes, sender: int | None = None) -> None:
        sent.append((to, payload, sender))

    pool.transport.queue = queue  # type: ignore[method-assign]
    return pool


def _refuse(pool: ClientPool, cid: int) -> None:
    """f+1 replicas answer ``busy`` to ``cid``'s outstanding request."""
    request = pool.clients[cid].outstanding
    assert request is not None
    for replica in range(pool.f + 1):
        pool._refused(WireBusy(cid, request.timestamp, replica), replica)


def test_a_full_pool_refuses_at_once_and_an_ended_request_frees_its_id(
    network: Path, sent: list[Any]
) -> None:
    async def scenario() -> None:
        pool = _pool(network, 2, sent)
        ends: list[Any] = []
        first = pool.start(b"one", ends.append)
        pool.start(b"two", ends.append)
        assert len(sent) == 2 and {s[2] for s in sent} == set(pool.ids)
        with pytest.raises(Busy):
            pool.start(b"three", ends.append)
        _refuse(pool, first)
        assert len(ends) == 1 and isinstance(ends[0], Busy)
        assert pool.start(b"three", ends.append) == first  # the freed id serves the next

    asyncio.run(scenario())


def test_abandoning_only_ever_touches_the_callers_own_request(
    network: Path, sent: list[Any]
) -> None:
    async def scenario() -> None:
        pool = _pool(network, 1, sent)
        old: list[Any] = []
        new: list[Any] = []
        cid = pool.start(b"old", old.append)
        _refuse(pool, cid)
        assert pool.start(b"new", new.append) == cid
        pool.abandon(cid, old.append)  # the old request's late timeout: moot
        assert cid in pool._ended and not new
        pool.abandon(cid, pool._ended[cid])  # its own timeout: the id is retired meanwhile
        assert cid not in pool._ended and pool.clients[cid].busy
        with pytest.raises(Busy):
            pool.start(b"more", new.append)
        assert not new  # an abandoned request's end is never reported

    asyncio.run(scenario())


def test_replies_to_a_client_with_nothing_outstanding_are_not_even_decoded(
    network: Path, sent: list[Any]
) -> None:
    async def scenario() -> None:
        pool = _pool(network, 1, sent)
        cid = pool.ids[0]
        garbage = b"\x91\x05not a reply"
        pool._deliver(Incoming(0, garbage, cid))
        assert not pool.clients[cid].stats  # idle: dropped before the state machine
        pool.start(b"op", lambda _result: None)
        pool._deliver(Incoming(0, garbage, cid))
        assert sum(pool.clients[cid].stats.values()) == 1  # busy: the client judged it

    asyncio.run(scenario())


def test_an_unanswered_request_is_retransmitted_to_every_replica_by_the_timer(
    network: Path, sent: list[Any]
) -> None:
    async def scenario() -> None:
        pool = _pool(network, 1, sent)
        pool.start(b"op", lambda _result: None)
        assert [s[0] for s in sent] == [pool.config.pbft.primary(0)]
        for _ in range(100):  # the retry timer is client_retry_ms; wait for it, loosely
            await asyncio.sleep(0.1)
            if len(sent) > 1:
                break
        assert sent[1][0] == BROADCAST and sent[1][1] == sent[0][1]
        pool.wheel.close()

    asyncio.run(scenario())
