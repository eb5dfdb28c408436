"""Sends queued as one event give exactly the run that one event per hop gives.

With fixed latency and no network faults the simulator queues every hop of a
send, or of all the sends one step made (a broadcast, a batch's replies), as
a single ``Burst`` event (``sim.world.send``); traced runs still queue one
``Delivery`` per hop (the trace writes a line per hop). So the untraced and
the traced run of one scenario and seed take the two paths, and their results
must be identical: the same deliveries in the same order, the same event
count, the same judgement, Byzantine replicas and crashes included.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sim.bench.runspec import RunSpec
from sim.scenario.model import Scenario
from sim.scenario.reader import load_scenario
from sim.world.simulation import Simulation, execute, run_scenario

ROOT = Path(__file__).resolve().parent.parent


def fixed(path: str) -> Scenario:
    """The scenario over fixed-latency links without loss, duplication or FIFO."""
    scenario = load_scenario(ROOT / path)
    latency = replace(
        scenario.network.latency, kind="fixed", drop_rate=0.0, duplicate_rate=0.0, reorder=True
    )
    return replace(scenario, network=replace(scenario.network, latency=latency))


CASES = {
    "equivocate-n5": lambda: fixed("tests/scenarios/equivocate-n5.toml"),
    "selective-commit": lambda: fixed("tests/scenarios/selective-commit.toml"),
    "forged-commit": lambda: fixed("scenarios/forged-commit.toml"),
    "byzantine-primary": lambda: fixed("scenarios/byzantine-primary.toml"),
    "crash-recover": lambda: fixed("scenarios/crash-recover.toml"),
    "forged-view-change": lambda: fixed("scenarios/forged-view-change.toml"),
    "partition-heal": lambda: fixed("scenarios/partition-heal.toml"),
    "bench-n16": lambda: RunSpec(
        replicas=16, requests=100, clients=40, batch_size=10, crypto="modelled", chaincode="none"
    ).scenario(),
}


def summary(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(result.to_json()))
    del out["wall_s"]
    return out


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [1, 2])
def test_one_event_per_broadcast_changes_nothing(name: str, seed: int) -> None:
    scenario = CASES[name]()
    sim, batched = execute(Simulation, scenario, seed)
    per_hop = run_scenario(scenario, seed, trace=io.StringIO())
    assert summary(batched) == summary(per_hop)
    # The batched path was really taken: far fewer heap pushes than events handled.
    assert sim.queue.pushed < sim.events


class SampleRecorder(Simulation):
    """Records each log-size sample: when it was taken and what every replica's log held."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples: list[tuple[float, tuple[int, ...]]] = []

    def _sample_logs(self) -> None:
        sizes = tuple(-1 if n.replica is None else n.replica.log_slots() for n in self.nodes)
        self.samples.append((self.now, sizes))
        super()._sample_logs()


@pytest.mark.parametrize("name", ["bench-n16-long", "forged-view-change"])
def test_log_samples_fall_after_the_same_hops(name: str) -> None:
    """The burst path samples the logs after exactly the hop the per-hop path does.

    The run's result keeps only the largest sample, which a sample one hop
    early or late rarely changes: so the samples themselves are compared.
    """
    if name in CASES:
        scenario = CASES[name]()
    else:
        spec = RunSpec(16, 600, 40, batch_size=10, crypto="modelled", chaincode="none")
        scenario = spec.scenario()
    batched, _ = execute(SampleRecorder, scenario, 1)
    per_hop, _ = execute(SampleRecorder, scenario, 1, trace=io.StringIO())
    assert len(batched.samples) > 1  # one at least before the final one
    assert batched.samples == per_hop.samples
