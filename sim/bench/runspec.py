"""The few scenario knobs a benchmark run turns, as plain JSON-able data.

Kept apart from ``sim.bench.worker`` so the suite can build specs without
importing the module it runs as ``python -m``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.scenario.model import Latency, NetworkSpec, Scenario, WorkloadSpec


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
