"""The simulator's shortcuts give what the long way gives (issue 17).

The run-level proof is elsewhere (``test_broadcast_events`` compares a batched
run with a per-hop one, ``test_pinned_results`` holds runs to their hashes);
these pin down the pieces: a client's ``receive`` is its ``step`` on a
``Deliver``, a stand-in client without it is still stepped, the network's
"every hop arrives together" answer follows the fault switches, and the
garbage-collector setting a run uses is put back.
"""

from __future__ import annotations

import gc
import random
from typing import Any

import pytest
from test_pbft_client import make, reply

from pbft.api import Deliver, Tick
from sim.scenario.model import Latency
from sim.world.network import LinkFault, Network
from sim.world.simulation import YOUNG_COLLECTION_THRESHOLD, few_collections
from sim.world.slots import ClientSlot


def test_client_receive_is_step_on_a_deliver() -> None:
    stepped, kr = make()
    received, _ = make()
    ts = stepped.submit(b"op", 0).send[0].message.timestamp  # type: ignore[union-attr]
    assert received.submit(b"op", 0).send[0].message.timestamp == ts  # type: ignore[union-attr]
    arrivals = [
        (1, 3, reply(kr, 3, ts, b"other", view=2)),
        (2, 1, reply(kr, 1, ts + 1, b"good")),  # stale
        (3, 1, reply(kr, 1, ts, b"good", view=1)),
        (4, 1, reply(kr, 1, ts, b"good")),  # duplicate
        (5, 2, b"\x93garbage"),
        (250, 2, reply(kr, 2, ts, b"good", view=1)),  # past the deadline: completes
        (260, 0, reply(kr, 0, ts, b"good")),  # after completion
    ]
    for now, sender, data in arrivals:
        a = stepped.step(Deliver(now, sender, data))
        b = received.receive(now, sender, data)
        assert (a.send, a.completed, a.wake_at_ms) == (b.send, b.completed, b.wake_at_ms)
    assert stepped.stats == received.stats
    assert stepped.view == received.view == 1
    assert stepped.stats["drop.stale-reply"] == 2 and stepped.stats["drop.duplicate"] == 1


def test_a_reply_due_after_the_deadline_still_retransmits_first() -> None:
    client, kr = make()
    ts = client.submit(b"op", 0).send[0].message.timestamp  # type: ignore[union-attr]
    out = client.receive(150, 1, reply(kr, 1, ts, b"good"))
    (send,) = out.send  # the deadline (100) passed with one reply of f+1 in: broadcast
    assert send.message == client.outstanding
    assert out.wake_at_ms == 150 + (100 << 1)
    assert client.step(Tick(200)).send == []


class StandIn:
    """A client with ``step`` only, as tests' toy clients are."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def step(self, event: Any) -> str:
        self.events.append(event)
        return "stepped"


def test_a_client_without_receive_is_stepped_with_a_deliver() -> None:
    client = StandIn()
    slot = ClientSlot(0, client)
    assert slot.receive(7, 2, b"data") == "stepped"
    assert client.events == [Deliver(7, 2, b"data")]


def test_same_arrival_follows_the_fault_switches() -> None:
    network = Network(Latency(kind="fixed", min_ms=2.0, max_ms=2.0), random.Random(1), 4)
    assert network.plain and network.same_arrival == 2.0
    network.start_partition(1, ((0, 1), (2, 3)))
    assert network.same_arrival is None
    network.start_link_fault(2, LinkFault(0, 1, 0.5, 0.0))
    network.end_partition(1)
    assert network.same_arrival is None  # the link fault is still on
    network.end_link_fault(2, 0, 1)
    assert network.plain and network.same_arrival == 2.0
    uniform = Network(Latency(kind="uniform", min_ms=1.0, max_ms=3.0), random.Random(1), 4)
    assert uniform.plain and uniform.same_arrival is None  # hops draw their own latency


def test_few_collections_puts_the_collector_back() -> None:
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    with few_collections():
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD
        assert gc.get_threshold()[1:] == threshold[1:]
        assert gc.get_freeze_count() >= frozen
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == frozen
    with pytest.raises(KeyError), few_collections():
        raise KeyError("a run that fails")
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == frozen
