"""Property tests: PBFT's promises under any schedule Hypothesis can draw.

* safety (agreement, validity, monotonic views, consistent checkpoints) under
  every in-model fault schedule, lossy networks included;
* liveness after GST: with at most f faulty replicas and a network that heals,
  every request commits within the bound after healing;
* determinism: one scenario and seed give one run, byte for byte.

A failure message carries the seed and the scenario as TOML, so the failing
run can be replayed with ``ledgersim run``. Crypto is modelled for speed.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pbft_scenarios import assert_healthy

from sim.explore.strategies import scenarios
from sim.scenario.model import Scenario
from sim.scenario.reproduce import failure_report
from sim.world.simulation import run_scenario

SMALL = st.sampled_from([4, 5, 7])


def examples(count: int) -> settings:
    """``count`` examples under the "ci" profile, proportionally more under "long"."""
    return settings(max_examples=count * max(1, settings().max_examples // 25))


@pytest.mark.slow
@examples(60)
@given(scenarios(replicas=SMALL, lossy=True))
def test_safety_under_any_in_model_schedule(s: Scenario) -> None:
    result = run_scenario(s)
    assert result.fault_model["within"], failure_report(s, result)
    assert result.safe, failure_report(s, result)
    assert not result.liveness_violations, failure_report(s, result)


@pytest.mark.slow
@examples(40)
@given(scenarios(replicas=SMALL, lossy=False))
def test_liveness_after_gst(s: Scenario) -> None:
    result = run_scenario(s)
    assert result.liveness_checked, failure_report(s, result)
    assert_healthy(s, result)


@pytest.mark.slow
@examples(15)
@given(scenarios(replicas=st.just(4), lossy=True))
def test_same_seed_same_run(s: Scenario) -> None:
    one, two = run_scenario(s), run_scenario(s)
    first, second = one.to_json(), two.to_json()
    first.pop("wall_s")
    second.pop("wall_s")
    assert first == second, failure_report(s, one)
    assert one.commits == two.commits, failure_report(s, one)
    assert one.latencies_ms == two.latencies_ms, failure_report(s, one)
