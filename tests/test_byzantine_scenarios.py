"""Fixed scenarios with the real PBFT replica: Byzantine replicas, loss, crashes, scale.

Each test states what PBFT promises for its schedule and checks it through
the simulator's result: safety always; with at most f faulty replicas and a
healing network, every request commits and a faulty primary is replaced.
Modelled crypto keeps them fast; one run uses real ECDSA identities.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pbft_scenarios import assert_healthy, byzantine, pbft_scenario

from sim.scenario.model import Expect, Fault, Latency, Scenario, WorkloadSpec
from sim.scenario.reproduce import failure_report
from sim.world.catalogue import BEHAVIOURS
from sim.world.simulation import run_scenario


def scenario(n: int = 4, requests: int = 40, **changes: Any) -> Scenario:
    base = pbft_scenario(
        "byz",
        11,
        replicas=n,
        requests=requests,
        rate_per_s=400,
        max_latency_ms=15,
        batch_size=4,
        watermark_window=20,
        view_change_timeout_ms=500,
    )
    return replace(base, **changes)


@pytest.mark.parametrize("behavior", sorted(BEHAVIOURS))
def test_byzantine_primary_n4(behavior: str) -> None:
    s = scenario(faults=(byzantine(0, behavior),))
    result = run_scenario(s)
    assert_healthy(s, result)
    assert result.replicas[0].byzantine and result.fault_model["within"]
    heads = {r.head_hash for r in result.replicas[1:] if r.height == result.replicas[1].height}
    assert len(heads) == 1
    if behavior in ("silent", "equivocate", "bad-digest", "forge-signature"):
        assert result.view_changes >= 1, failure_report(s, result)
        assert all(r.view >= 1 for r in result.replicas[1:])


@pytest.mark.parametrize("behavior", sorted(BEHAVIOURS))
def test_byzantine_backup_n4(behavior: str) -> None:
    s = scenario(faults=(byzantine(2, behavior),))
    assert_healthy(s, run_scenario(s))


def test_n7_two_byzantine_with_loss_and_duplication() -> None:
    s = scenario(
        n=7,
        requests=40,
        network=replace(
            scenario().network,
            replicas=7,
            latency=Latency(
                kind="uniform", min_ms=1, max_ms=15, drop_rate=0.05, duplicate_rate=0.05
            ),
        ),
        faults=(
            byzantine(0, "equivocate"),
            byzantine(4, "silent"),
        ),
    )
    result = run_scenario(s)
    assert_healthy(s, result)
    assert result.view_changes >= 1
    assert result.network_drops["loss"] > 0
    assert result.fault_model["within"] and result.fault_model["gst_ms"] is None


def test_same_seed_twice_is_identical_and_seed_matters() -> None:
    s = scenario(
        network=replace(
            scenario().network,
            latency=Latency(kind="exponential", min_ms=1, max_ms=20, mean_ms=6, duplicate_rate=0.1),
        ),
        faults=(
            byzantine(0, "replay"),
            Fault("partition", at_ms=100, until_ms=900, groups=((1,), (2, 3))),
        ),
    )
    one, two, three = run_scenario(s), run_scenario(s), run_scenario(s, seed=12)
    assert one.commits == two.commits
    assert one.messages == two.messages and one.bytes == two.bytes
    assert [r.head_hash for r in one.replicas] == [r.head_hash for r in two.replicas]
    assert one.latencies_ms == two.latencies_ms
    assert (one.commits, one.messages) != (three.commits, three.messages)


def test_normal_case_message_counts_n4() -> None:
    s = scenario(
        requests=12,
        network=replace(
            scenario().network, batch_size=1, checkpoint_interval=100, watermark_window=200
        ),
        workload=WorkloadSpec(clients=1, requests=12, rate_per_s=50, chaincode="none"),
    )
    result = run_scenario(s)
    batches = result.replicas[0].height - 1
    assert batches == 12 and result.committed == 12
    assert result.messages["PrePrepare"] == 3 * batches
    assert result.messages["Prepare"] == 9 * batches
    assert result.messages["Commit"] == 12 * batches
    assert result.view_changes == 0


def test_crashed_backup_recovers_and_catches_up() -> None:
    s = scenario(
        requests=60,
        workload=WorkloadSpec(clients=4, requests=60, rate_per_s=100, chaincode="none"),
        faults=(Fault("crash", at_ms=50, replica=3), Fault("recover", at_ms=300, replica=3)),
    )
    result = run_scenario(s)
    assert_healthy(s, result)
    assert result.network_drops["crashed"] > 0
    assert not result.replicas[3].crashed
    assert result.replicas[3].stable_checkpoint > 0


def test_crashed_primary_is_replaced() -> None:
    s = scenario(faults=(Fault("crash", at_ms=100, replica=0),))
    result = run_scenario(s)
    assert_healthy(s, result)
    assert result.view_changes >= 1 and result.replicas[0].crashed


def test_beyond_f_byzantine_is_flagged() -> None:
    s = scenario(
        faults=(
            byzantine(0, "silent"),
            byzantine(1, "silent"),
        ),
        duration_ms=5000,
        expect=Expect(liveness_lost=True),
    )
    result = run_scenario(s)
    assert not result.fault_model["within"]
    assert not result.liveness_checked
    assert result.committed < result.submitted and result.ok


@pytest.mark.slow
def test_hundred_replicas_modelled() -> None:
    s = scenario(
        n=100,
        network=replace(scenario().network, replicas=100, batch_size=10),
        workload=WorkloadSpec(clients=2, requests=10, rate_per_s=1000, chaincode="none"),
    )
    result = run_scenario(s)
    assert_healthy(s, result)
    assert len({r.head_hash for r in result.replicas}) == 1
    assert result.messages["Prepare"] == 99 * 99 * (result.replicas[0].height - 1)


def test_real_ecdsa_identities() -> None:
    s = scenario(
        requests=6,
        network=replace(scenario().network, crypto="ecdsa-p256"),
        workload=WorkloadSpec(clients=2, requests=6, rate_per_s=100, chaincode="none"),
        faults=(byzantine(1, "forge-signature"),),
    )
    result = run_scenario(s)
    assert_healthy(s, result)
    assert sum(r.dropped.get("bad-signature", 0) for r in result.replicas) > 0


@pytest.mark.slow
def test_results_do_not_depend_on_the_process_hash_seed() -> None:
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, sys; from dataclasses import replace; "
        "sys.path.insert(0, 'tests'); from test_byzantine_scenarios import scenario, Fault; "
        "from sim.world.simulation import run_scenario; "
        "s = scenario(requests=20, faults=(Fault('byzantine', at_ms=0, replica=0, "
        "behavior='equivocate'),)); r = run_scenario(s).to_json(); r.pop('wall_s'); "
        "print(json.dumps(r, sort_keys=True))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=False,
        )
        for hash_seed in (1, 2)
    ]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    outputs = [run.stdout for run in runs]
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["committed"] == 20
