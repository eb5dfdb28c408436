"""Long schedule hunts: draw fault schedules until the time is up or a claim breaks.

A sweep replays one fault schedule under many seeds; a hunt keeps the
scenario's network and workload and draws *new* fault schedules from the
public strategies (:func:`sim.explore.strategies.fault_schedules`), which is
how a researcher spends a night looking for the schedule that breaks a
replica. The claim checked on every run is PBFT's own: safety always, and
inside the fault model every request commits. The first run that breaks it is
shrunk by Hypothesis to a small schedule and returned as a scenario file whose
``[expect]`` states the claim, so ``ledgersim run`` on it fails the same way.

Hypothesis runs in rounds of ``round_size`` examples, each round seeded from
the hunt's seed and the round number: the schedules a hunt tries are the same
on every machine, and only where the time limit cuts the list depends on the
machine's speed. The wall clock is read here, outside the simulator, to stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from pbft.api import ReplicaFactory
from sim.explore.strategies import DEFAULT_BEHAVIOURS, fault_schedules
from sim.scenario.model import Expect, Scenario
from sim.scenario.reproduce import to_toml
from sim.world.results import RunResult
from sim.world.simulation import run_scenario

ROUND_SIZE = 25
"""Examples per Hypothesis round: small enough that the time limit is overshot by little."""


@dataclass
class Violation:
    """The shrunk failing run: its scenario (claim in ``[expect]``) and what broke."""

    scenario: Scenario
    result: RunResult
    reasons: list[str]

    @property
    def toml(self) -> str:
        return to_toml(self.scenario)


@dataclass
class HuntReport:
    scenario: str
    seed: int
    beyond_model: bool
    tried: int = 0
    wall_s: float = 0.0
    violation: Violation | None = None
    rounds: int = 0
    behaviours: tuple[str, ...] = field(default_factory=tuple)
    interrupted: bool = False
    """Ctrl-C stopped the hunt: the figures are what was tried until then."""

    @property
    def per_minute(self) -> float:
        return round(self.tried * 60.0 / self.wall_s, 1) if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        found = self.violation
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "beyond_model": self.beyond_model,
            "schedules_tried": self.tried,
            "rounds": self.rounds,
            "wall_s": round(self.wall_s, 3),
            "schedules_per_minute": self.per_minute,
            "interrupted": self.interrupted,
            "violation": None
            if found is None
            else {
                "reasons": found.reasons,
                "seed": found.result.seed,
                "faults": len(found.scenario.faults),
                "scenario_toml": found.toml,
            },
        }


def claim(scenario: Scenario, *, beyond_model: bool) -> Expect:
    """What every drawn run must show: safety, and inside the model, every request committed."""
    return Expect(safety=True, all_committed=None if beyond_model else True)


def broken(result: RunResult, *, beyond_model: bool) -> list[str]:
    """Why a run breaks the claim (empty when it holds)."""
    reasons = [f"safety: {v}" for v in result.safety_violations]
    if not beyond_model:
        reasons += [f"liveness: {v}" for v in result.liveness_violations]
        if result.committed < result.requested:
            reasons.append(f"committed {result.committed} of {result.requested} requests")
    return reasons


class _Found(Exception):
    """Raised inside a Hypothesis example so that Hypothesis shrinks it."""


def hunt(
    base: Scenario,
    *,
    minutes: float,
    seed: int = 0,
    beyond_model: bool = False,
    behaviours: tuple[str, ...] = DEFAULT_BEHAVIOURS,
    replica_class: ReplicaFactory | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_round: Callable[[HuntReport], None] | None = None,
) -> HuntReport:
    """Draw schedules for ``base`` until ``minutes`` pass or a run breaks the claim."""
    n = base.network.replicas
    expect = claim(base, beyond_model=beyond_model)
    schedules = fault_schedules(
        n,
        duration_ms=max(base.duration_ms // 2, 1),
        beyond_model=beyond_model,
        behaviours=behaviours,
    )
    drawn = st.tuples(schedules, st.integers(0, 2**32 - 1)).map(
        lambda pair: replace(base, faults=pair[0], seed=pair[1], expect=expect)
    )
    report = HuntReport(base.name, seed, beyond_model, behaviours=behaviours)
    start = clock()
    deadline = start + minutes * 60.0
    last: dict[str, Any] = {}

    def probe(scenario: Scenario) -> None:
        if clock() >= deadline and "shrinking" not in last:
            return  # time is up: let the round finish without running more schedules
        result = run_scenario(scenario, replica_class=replica_class)
        if "shrinking" not in last:
            report.tried += 1
        reasons = broken(result, beyond_model=beyond_model)
        if reasons:
            last["shrinking"] = True
            last["found"] = Violation(scenario, result, reasons)
            raise _Found(reasons[0])

    while clock() < deadline:
        round_seed = hash_seed(seed, report.rounds)
        test = settings(
            max_examples=ROUND_SIZE,
            deadline=None,
            database=None,
            derandomize=False,
            phases=(Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            print_blob=False,
        )(hypothesis_seed(round_seed)(given(drawn)(probe)))
        report.rounds += 1
        try:
            test()
        except _Found:
            report.violation = last["found"]  # the last failing example is the shrunk one
            break
        except KeyboardInterrupt:
            report.interrupted = True  # the caller still gets what was tried
            report.violation = last.get("found")  # found but maybe not fully shrunk
            break
        finally:
            report.wall_s = clock() - start
        if on_round is not None:
            on_round(report)
    report.wall_s = clock() - start
    return report


def hash_seed(seed: int, round_number: int) -> int:
    """A round's Hypothesis seed: a pure function of the hunt's seed and the round."""
    return (seed * 1_000_003 + round_number * 7_919) % 2**64
