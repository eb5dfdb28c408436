"""One simulator run in a process of its own: ``python -m sim.bench.worker < spec.json``.

A fresh process per run keeps the figures apart: peak memory (``ru_maxrss``)
belongs to that run alone, the crypto counters patch classes only there, and
one run's garbage does not slow the next. The spec and the answer are JSON
on stdin and stdout.
"""

from __future__ import annotations

import cProfile
import contextlib
import json
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

from sim.bench.counting import CryptoCounter
from sim.bench.profiling import hotspots
from sim.scenario_model import Latency, NetworkSpec, Scenario, WorkloadSpec


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What to simulate: the few scenario knobs a benchmark turns, and what to record."""

    replicas: int
    requests: int
    clients: int
    batch_size: int
    crypto: str
    chaincode: str
    seed: int = 1
    batch_timeout_ms: int = 5
    checkpoint_interval: int = 10
    watermark_window: int = 40
    rate_per_s: float = 1_000_000.0
    duration_ms: int = 3_600_000
    count_crypto: bool = False
    profile_top: int = 0

    def scenario(self) -> Scenario:
        # Fixed 1 ms links and an open-loop rate far above capacity: every client
        # always has a request ready, so batches fill and wall time is pure CPU.
        return Scenario(
            name=f"bench-{self.crypto}-{self.chaincode}-n{self.replicas}",
            seed=self.seed,
            duration_ms=self.duration_ms,
            network=NetworkSpec(
                replicas=self.replicas,
                orgs=2,
                batch_size=self.batch_size,
                batch_timeout_ms=self.batch_timeout_ms,
                checkpoint_interval=self.checkpoint_interval,
                watermark_window=self.watermark_window,
                view_change_timeout_ms=60_000,
                crypto=self.crypto,
                latency=Latency(kind="fixed", min_ms=1.0, max_ms=1.0, mean_ms=1.0),
            ),
            workload=WorkloadSpec(
                clients=self.clients,
                requests=self.requests,
                rate_per_s=self.rate_per_s,
                chaincode=self.chaincode,
            ),
        )


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run(spec: RunSpec) -> dict[str, Any]:
    """Simulate ``spec`` once; wall/CPU time cover ``run_scenario`` and nothing else."""
    from sim.simulator import run_scenario

    scenario = spec.scenario()
    counter = CryptoCounter()
    profile = cProfile.Profile() if spec.profile_top else None
    rss_before = _maxrss_mib()
    with counter.installed() if spec.count_crypto else contextlib.nullcontext():
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        result = run_scenario(scenario, spec.seed)
        if profile is not None:
            profile.disable()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    out: dict[str, Any] = {
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_before_mib": rss_before,
        "maxrss_mib": _maxrss_mib(),
        "result": result.to_json(),
    }
    if spec.count_crypto:
        out["crypto"] = counter.to_json()
    if profile is not None:
        out["profile"] = hotspots(profile, spec.profile_top)
    return out


def main() -> int:
    spec = RunSpec(**json.load(sys.stdin))
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the answer alone
        answer = run(spec)
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
