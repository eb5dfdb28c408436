"""The outcome of one simulated run, as ``ledgersim run --json`` prints it.

Everything in :meth:`RunResult.to_json` is a function of (scenario, seed)
except ``wall_s``, so two runs of one seed can be compared as JSON with that
key removed. Expectations from the scenario's ``[expect]`` table are judged
here too (:func:`check_expectations`), so the CLI only has to print them and
pick an exit status.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from sim.scenario.model import Expect


@dataclass(slots=True)
class ReplicaReport:
    id: int
    view: int
    height: int
    """Blocks in the replica's ledger, genesis included (Fabric's "height")."""
    head_hash: bytes
    byzantine: bool
    crashed: bool
    dropped: dict[str, int]
    stable_checkpoint: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "view": self.view,
            "height": self.height,
            "head_hash": self.head_hash.hex(),
            "byzantine": self.byzantine,
            "crashed": self.crashed,
            "stable_checkpoint": self.stable_checkpoint,
            "dropped": dict(sorted(self.dropped.items())),
        }


def percentiles(values: list[float]) -> dict[str, float]:
    """Nearest-rank p50/p90/p99 and max, rounded to a microsecond; zeros when empty."""
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        index = max(0, math.ceil(p / 100.0 * len(ordered)) - 1)
        return round(ordered[index], 3)

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": round(ordered[-1], 3)}


@dataclass(slots=True)
class RunResult:
    scenario: str
    seed: int
    n: int
    f: int
    safety_violations: list[str]
    liveness_checked: bool
    liveness_violations: list[str]
    submitted: int
    committed: int
    view_changes: int
    """Distinct views above 0 some correct replica installed (``sim.trace.derive.ViewFigures``)."""
    messages: dict[str, int]
    bytes: dict[str, int]
    latencies_ms: list[float]
    end_ms: float
    first_submit_ms: float | None
    last_commit_ms: float | None
    wall_s: float
    replicas: list[ReplicaReport]
    fault_model: dict[str, Any]
    network_drops: dict[str, int]
    workload: dict[str, Any] = field(default_factory=dict)
    expectations: dict[str, dict[str, Any]] = field(default_factory=dict)
    commits: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    """Replica -> [(seq, batch digest hex)] in execution order (determinism checks)."""
    events: int = 0
    requested: int = 0
    """How many requests the workload was asked for (``workload.requests``)."""
    highest_view: int = 0
    """The highest view a correct replica was in, whether or not that view was installed."""
    view_change_attempts: int = 0
    """Times a correct replica moved to a higher view, completed or not."""

    @property
    def safe(self) -> bool:
        return not self.safety_violations

    @property
    def ok(self) -> bool:
        """Every expectation met (a run without expectations is ok)."""
        return all(e["ok"] for e in self.expectations.values())

    @property
    def throughput_tps(self) -> float:
        if not self.committed or self.first_submit_ms is None or self.last_commit_ms is None:
            return 0.0
        span = max(self.last_commit_ms - self.first_submit_ms, 1.0)
        return round(self.committed * 1000.0 / span, 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "n": self.n,
            "f": self.f,
            "safety": {"ok": self.safe, "violations": list(self.safety_violations)},
            "liveness": {
                "checked": self.liveness_checked,
                "ok": not self.liveness_violations,
                "violations": list(self.liveness_violations),
            },
            "requested": self.requested,
            "submitted": self.submitted,
            "committed": self.committed,
            "view_changes": self.view_changes,
            "highest_view": self.highest_view,
            "view_change_attempts": self.view_change_attempts,
            "messages": dict(sorted(self.messages.items())),
            "bytes": dict(sorted(self.bytes.items())),
            # null, not 0.0, when nothing committed: a latency of 0 would read as instant
            "latency_ms": (
                percentiles(self.latencies_ms)
                if self.latencies_ms
                else dict.fromkeys(("p50", "p90", "p99", "max"))
            ),
            "throughput_tps": self.throughput_tps,
            "virtual_ms": round(self.end_ms, 3),
            "events": self.events,
            "wall_s": round(self.wall_s, 3),
            "replicas": [r.to_json() for r in self.replicas],
            "network_drops": dict(sorted(self.network_drops.items())),
            "fault_model": self.fault_model,
            "workload": self.workload,
            "expectations": self.expectations,
        }

    def dumps(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_json(), indent=indent)


def check_expectations(expect: Expect, result: RunResult) -> dict[str, dict[str, Any]]:
    """Judge each expectation the scenario set; unset ones are not reported."""
    out: dict[str, dict[str, Any]] = {}

    def judge(name: str, expected: Any, actual: Any, ok: bool) -> None:
        out[name] = {"expected": expected, "actual": actual, "ok": ok}

    if expect.safety is not None:
        judge("safety", expect.safety, result.safe, result.safe == expect.safety)
    # "Everything" is the whole workload the scenario asked for: a run too short
    # to even submit its requests has not committed them all.
    everything = result.submitted > 0 and result.committed == result.submitted
    everything = everything and result.submitted >= result.requested
    if expect.all_committed is not None:
        judge("all_committed", expect.all_committed, everything, everything == expect.all_committed)
    if expect.liveness_lost is not None:
        lost = not everything
        judge("liveness_lost", expect.liveness_lost, lost, lost == expect.liveness_lost)
    if expect.min_view_changes is not None:
        judge(
            "min_view_changes",
            expect.min_view_changes,
            result.view_changes,
            result.view_changes >= expect.min_view_changes,
        )
    if expect.max_view_changes is not None:
        judge(
            "max_view_changes",
            expect.max_view_changes,
            result.view_changes,
            result.view_changes <= expect.max_view_changes,
        )
    if expect.min_committed is not None:
        judge(
            "min_committed",
            expect.min_committed,
            result.committed,
            result.committed >= expect.min_committed,
        )
    return out
