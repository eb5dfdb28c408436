"""The host's shortcuts (issue 17) give exactly what the long way gives.

* ``EventQueue.push_in_order``: bursts wait in a sorted FIFO beside the heap;
  one queued out of order (a Byzantine replica's delayed send) goes to the heap.
* ``ReplicaSlot.settled`` / ``ClientSlot.settled``: an output already handled,
  idle and with its timer queued, is not handled again.
* ``Sending._burst`` adds the per-kind counters once per run of one kind.
* ``pbft.api.Tally``: a ``Counter`` whose increments take dict's C slot.

Each is compared with the run (or the counts) it replaces: batched against
per-hop runs (traced runs deliver hop by hop), and runs with the settled
shortcut against runs with it turned off.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pbft.api import BROADCAST, CLIENT_ID_BASE, Event, Output, Send, Tally, Tick
from pbft.client import Client
from pbft.messages import Request
from pbft.replica import Replica
from sim.bench.runspec import RunSpec
from sim.scenario.model import Fault, Scenario
from sim.scenario.reader import load_scenario
from sim.world.events import EventQueue
from sim.world.simulation import Simulation, execute, run_scenario
from sim.world.slots import ClientSlot, ReplicaSlot

ROOT = Path(__file__).resolve().parent.parent


def fixed(scenario: Scenario) -> Scenario:
    """The scenario over fixed-latency links without loss or duplication (bursts taken)."""
    latency = replace(
        scenario.network.latency, kind="fixed", drop_rate=0.0, duplicate_rate=0.0, reorder=True
    )
    return replace(scenario, network=replace(scenario.network, latency=latency))


def delaying() -> Scenario:
    """Replica 0 holds its messages back: its late bursts are queued behind later ones."""
    scenario = fixed(load_scenario(ROOT / "scenarios/byzantine-primary.toml"))
    fault = Fault(
        kind="byzantine", at_ms=0, replica=0, behavior="delay", params=(("delay_ms", 300),)
    )
    return replace(scenario, faults=(fault,))


CASES = {
    "bench-n16": lambda: RunSpec(
        replicas=16, requests=200, clients=40, batch_size=10, crypto="modelled", chaincode="none"
    ).scenario(),
    "crash-recover": lambda: fixed(load_scenario(ROOT / "scenarios/crash-recover.toml")),
    "byzantine-primary": lambda: fixed(load_scenario(ROOT / "scenarios/byzantine-primary.toml")),
    "delaying": delaying,
}


def summary(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(result.to_json()))
    del out["wall_s"]
    return out


class Unsettled(Simulation):
    """The long way: every output handled, as before the settled shortcut."""

    def _step_replica(self, node: ReplicaSlot, event: Event) -> None:
        super()._step_replica(node, event)
        node.settled = None

    def _client_output(self, slot: ClientSlot, out: Any) -> None:
        super()._client_output(slot, out)
        slot.settled = None


@pytest.mark.parametrize("name", sorted(CASES))
def test_settled_outputs_skipped_change_nothing(name: str) -> None:
    scenario = CASES[name]()
    _, short = execute(Simulation, scenario, 1)
    _, long = execute(Unsettled, scenario, 1)
    assert summary(short) == summary(long)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bursts_in_order_give_the_per_hop_run(name: str) -> None:
    scenario = CASES[name]()
    sim, batched = execute(Simulation, scenario, 2)
    per_hop = run_scenario(scenario, 2, trace=io.StringIO())
    assert summary(batched) == summary(per_hop)
    assert sim.queue.pushed < sim.events  # bursts were really taken


def test_a_delayed_burst_sends_the_later_ones_to_the_heap() -> None:
    queue = EventQueue()
    for t in (5.0, 5.0, 9.0, 7.0, 9.0, 12.0):
        queue.push_in_order(t, Tally())  # the event is never looked at
    queue.push(6.0, Tally())
    assert [e[:2] for e in queue.in_order] == [(5.0, 1), (5.0, 2), (9.0, 3), (9.0, 5), (12.0, 6)]
    assert sorted(e[:2] for e in queue.heap) == [(6.0, 7), (7.0, 4)]


def test_a_delaying_replica_really_fills_the_heap_with_bursts() -> None:
    """The case the FIFO cannot take happens in ``delaying`` (so the test above matters)."""
    seen: list[int] = []

    class Watching(Simulation):
        def _burst(self, src: int, sends: Any, at: float) -> None:
            before = len(self.queue.heap)
            super()._burst(src, sends, at)
            seen.append(len(self.queue.heap) - before)

    execute(Watching, delaying(), 1)
    assert any(grown > 0 for grown in seen)


class Counted(Simulation):
    """Counts the client outputs handled and the replies delivered to clients."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handled = 0

    def _client_output(self, slot: ClientSlot, out: Any) -> None:
        self.handled += 1
        super()._client_output(slot, out)


def test_most_replies_are_not_handled_again() -> None:
    sim, result = execute(Counted, CASES["bench-n16"](), 1)
    replies = result.to_json()["messages"]["Reply"]
    assert sim.handled < replies / 2
    assert any(node.settled is not None for node in sim.nodes)  # replicas' too


def burst_and_per_hop(sends: list[Send]) -> tuple[Simulation, Simulation]:
    """Two fresh simulations after replica 3 sent ``sends``: as one burst, and hop by hop."""
    scenario = CASES["bench-n16"]()
    sims = [
        Simulation(
            scenario,
            1,
            trace=None,
            data_dir=None,
            replica_class=Replica,
            client_class=Client,
            progress=None,
        )
        for _ in range(2)
    ]
    batched, per_hop = sims
    batched._send_all(3, sends)
    per_hop.network.same_arrival = None  # no "all arrive together": one event per hop
    per_hop._send_all(3, sends)
    assert len(batched.queue.in_order) == 1 and not per_hop.queue.in_order
    return batched, per_hop


def test_counters_per_run_of_one_kind_match_per_hop_counting() -> None:
    request = Request(CLIENT_ID_BASE, 1, b"op", b"sig")
    other = Request(CLIENT_ID_BASE + 1, 2, b"other op", b"sig")
    sends = [
        Send(CLIENT_ID_BASE, request),
        Send(CLIENT_ID_BASE + 1, other),
        Send(5000, request),  # nobody: dropped at once, counted
        Send(3, other),  # itself: skipped
        Send(BROADCAST, other),
        Send(7, b"\x93garbage"),  # raw bytes, as a Byzantine replica may send
        Send(CLIENT_ID_BASE + 2, request),
    ]
    batched, per_hop = burst_and_per_hop(sends)
    assert list(batched.messages.items()) == list(per_hop.messages.items())
    assert list(batched.bytes.items()) == list(per_hop.bytes.items())
    assert batched.net_drops == per_hop.net_drops == {"unknown-destination": 1}
    assert batched._msg_id == per_hop._msg_id
    assert batched._in_flight == per_hop._in_flight
    assert list(batched.messages) == ["Request", "garbage"]


def test_tally_is_a_counter_that_counts_the_same() -> None:
    tally, counter = Tally(), Counter[str]()
    for key in ("a", "b", "a", "c", "a"):
        tally[key] += 1
        counter[key] += 1
    assert isinstance(tally, Counter)
    assert tally == counter and list(tally.items()) == list(counter.items())
    assert tally["missing"] == 0 and "missing" not in tally
    assert tally.most_common(1) == [("a", 3)]
    del tally["b"]
    with pytest.raises(KeyError):  # the one difference: as for a dict
        del tally["b"]


STICKY_AT = 40


class Sticky:
    """A toy replica whose first Tick at its timer asks for the very same timer again.

    It answers every step with one shared output naming ``STICKY_AT`` until a
    second Tick at that instant came: so the host must queue that timer again
    after it fired, though the output is one it had settled before.
    """

    def __init__(self, replica_id: int, config: Any, auth: Any, app: Any) -> None:
        self.id = replica_id
        self.view = 0
        self.stable_checkpoint = 0
        self.stats: dict[str, int] = {}
        self.fired = 0
        self._idle = Output(wake_at_ms=STICKY_AT)

    @classmethod
    def restore(cls, replica_id: int, config: Any, auth: Any, app: Any, records: Any) -> Sticky:
        return cls(replica_id, config, auth, app)

    def step(self, event: Event) -> Output:
        if type(event) is Tick and event.now_ms >= STICKY_AT:
            self.fired += 1
        return self._idle if self.fired < 2 else Output()


def test_a_timer_that_fired_unsettles_its_output() -> None:
    scenario = fixed(load_scenario(ROOT / "scenarios/normal-case.toml"))
    for cls in (Simulation, Unsettled):
        sim, _ = execute(cls, scenario, 1, replica_class=Sticky)
        assert [node.replica.fired for node in sim.nodes] == [2] * sim.n  # type: ignore[union-attr]
