"""Scenario builders and health checks shared by the PBFT scenario tests.

Tests that drive the real replica through the simulator want runs of a few
dozen requests with modelled crypto and no chaincode, so hundreds of them fit
in a CI budget; they differ only in the knobs that aim the run at a weakness.
The fixed parts live here once, so a change to what "a small PBFT run" means
is made in one place.
"""

from __future__ import annotations

from sim.scenario.model import Fault, Latency, NetworkSpec, Scenario, WorkloadSpec
from sim.scenario.reproduce import failure_report
from sim.world.results import RunResult


def pbft_scenario(
    name: str,
    seed: int,
    *,
    replicas: int,
    requests: int,
    rate_per_s: int,
    max_latency_ms: int,
    loss: float = 0.0,
    duplication: float = 0.0,
    batch_size: int,
    watermark_window: int,
    view_change_timeout_ms: int,
) -> Scenario:
    """Four clients, no chaincode, modelled crypto, uniform latency from 1 ms; one minute."""
    return Scenario(
        name=name,
        seed=seed,
        duration_ms=60_000,
        network=NetworkSpec(
            replicas=replicas,
            crypto="modelled",
            batch_size=batch_size,
            batch_timeout_ms=10,
            checkpoint_interval=5,
            watermark_window=watermark_window,
            view_change_timeout_ms=view_change_timeout_ms,
            latency=Latency(
                kind="uniform",
                min_ms=1,
                max_ms=max_latency_ms,
                drop_rate=loss,
                duplicate_rate=duplication,
            ),
        ),
        workload=WorkloadSpec(
            clients=4, requests=requests, rate_per_s=rate_per_s, chaincode="none"
        ),
    )


def byzantine(replica: int, behavior: str) -> Fault:
    """``replica`` misbehaves as ``behavior`` from the start of the run."""
    return Fault("byzantine", at_ms=0, replica=replica, behavior=behavior)


def assert_healthy(s: Scenario, result: RunResult) -> None:
    """What PBFT promises within its fault model: safe, and every request committed."""
    assert result.safe, failure_report(s, result)
    assert result.submitted == s.workload.requests, failure_report(s, result)
    assert result.committed == result.submitted, failure_report(s, result)
    assert not result.liveness_violations, failure_report(s, result)
