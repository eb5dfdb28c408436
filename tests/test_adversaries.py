"""The proof-forging adversaries: harmless to the real replica, fatal to careless ones.

For each behaviour of ``sim.world.adversaries`` there is a scenario in
scenarios/ that stages it where it matters. The real replica must pass it
(its ``[expect]`` table, safety and liveness) over several seeds. Each
weakened replica of tests/pbft_proof_mutants.py must lose safety or liveness
under the adversary aimed at it, as reported by the simulator's invariant
checks (``RunResult.safety_violations`` / ``liveness_violations``, filled by
``sim.world.invariants``), and must *not* lose it when the adversary is
replaced by a correct replica: the forgery is what exposes the slip.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pbft_proof_mutants import HOOKS, PROOF_MUTANTS

from pbft.replica import Replica
from sim.errors import InputError
from sim.explore.strategies import ALL_BEHAVIOURS, PROOF_BEHAVIOURS, scenarios
from sim.scenario.model import Scenario
from sim.scenario.reader import load_scenario
from sim.scenario.reproduce import failure_report
from sim.world.adversaries import ForgedStateServer, ForgedViewChange
from sim.world.catalogue import BEHAVIOURS
from sim.world.results import RunResult
from sim.world.simulation import run_scenario

ROOT = Path(__file__).parent.parent
SCENARIOS = ROOT / "scenarios"
SEEDS = (1, 2, 3)

STAGED: dict[str, str] = {
    # behaviour -> the shipped scenario that stages it
    "forged-state": "byzantine-state-server",
    "forged-view-change": "forged-view-change",
    "forged-commit": "forged-commit",
    "subset-new-view": "subset-new-view",
}


@dataclass(frozen=True)
class Defeat:
    """A weakened replica, the scenario that exposes it, and the one forgery used."""

    mutant: str
    scenario: str
    trick: str | None = None


DEFEATS = (
    Defeat("state-without-certificate", "byzantine-state-server", "no-certificate"),
    Defeat("certificate-counts-votes", "byzantine-state-server", "repeated-signature"),
    Defeat("certificate-ignores-digest", "byzantine-state-server", "other-digest"),
    Defeat("certificate-skips-signatures", "byzantine-state-server", "unsigned"),
    Defeat("takes-unproven-stable-seq", "forged-view-change", "unproven-stable"),
    Defeat("checkpoint-proof-counts-votes", "forged-view-change", "duplicate-signer"),
    Defeat("checkpoint-proof-skips-signatures", "forged-view-change", "fake-proof"),
    Defeat("prepared-ignores-digest", "forged-view-change", "prepared-other-digest"),
    Defeat("prepared-skips-signatures", "forged-view-change", "prepared-unsigned"),
    Defeat("skips-commit-signatures", "forged-commit"),
    Defeat("trusts-view-changes-in-new-view", "subset-new-view"),
)


def staged(name: str, trick: str | None = None) -> Scenario:
    s = load_scenario(SCENARIOS / f"{name}.toml")
    if trick is None:
        return s
    faults = tuple(
        replace(f, params=(*(p for p in f.params if p[0] != "trick"), ("trick", trick)))
        if f.kind == "byzantine"
        else f
        for f in s.faults
    )
    return replace(s, faults=faults)


def without_adversary(s: Scenario) -> Scenario:
    """The same schedule with the Byzantine replica behaving correctly."""
    return replace(s, faults=tuple(f for f in s.faults if f.kind != "byzantine"))


def violations(result: RunResult) -> list[str]:
    """What the invariant checks reported: safety always, liveness when it was promised."""
    return list(result.safety_violations) + list(result.liveness_violations)


def first_violation(s: Scenario, replica_class: type[Replica]) -> str | None:
    for seed in SEEDS:
        found = violations(run_scenario(replace(s, seed=seed), replica_class=replica_class))
        if found:
            return f"seed {seed}: {found[0]}"
    return None


@pytest.mark.parametrize("behavior", sorted(STAGED))
def test_real_replica_passes_the_staged_scenario(behavior: str) -> None:
    s = staged(STAGED[behavior])
    assert {f.behavior for f in s.faults if f.kind == "byzantine"} == {behavior}
    for seed in SEEDS:
        run = replace(s, seed=seed)
        result = run_scenario(run)
        assert result.fault_model["within"] and result.liveness_checked
        assert result.ok and result.safe, failure_report(run, result)
        assert not violations(result), failure_report(run, result)
        assert result.committed == result.submitted == s.workload.requests


FORGERIES = [("forged-state", t) for t in ForgedStateServer.TRICKS] + [
    ("forged-view-change", t) for t in ForgedViewChange.TRICKS
]


@pytest.mark.parametrize(("behavior", "trick"), FORGERIES, ids=lambda x: x)
def test_real_replica_survives_each_forgery(behavior: str, trick: str) -> None:
    s = staged(STAGED[behavior], trick)
    for seed in SEEDS:
        run = replace(s, seed=seed)
        result = run_scenario(run)
        assert result.ok and not violations(result), failure_report(run, result)


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(replicas=st.sampled_from([4, 5, 7]), lossy=True, behaviours=PROOF_BEHAVIOURS))
def test_real_replica_survives_drawn_proof_attacks(s: Scenario) -> None:
    """The forgers as the public strategies draw them: inside the model, safe and live."""
    result = run_scenario(s)
    assert not violations(result), failure_report(s, result)
    assert not result.liveness_checked or result.committed == result.submitted


@pytest.mark.parametrize("defeat", DEFEATS, ids=lambda d: d.mutant)
def test_adversary_defeats_the_weakened_replica(defeat: Defeat) -> None:
    s = staged(defeat.scenario, defeat.trick)
    mutant = PROOF_MUTANTS[defeat.mutant]
    caught = first_violation(s, mutant)
    assert caught is not None, f"{defeat.mutant} survived {defeat.scenario} ({defeat.trick})"
    print(f"{defeat.mutant} under {defeat.scenario}/{defeat.trick}: {caught}")
    calm = first_violation(without_adversary(s), mutant)
    assert calm is None, f"{defeat.mutant} fails even without the adversary: {calm}"


def with_fault(s: Scenario, behavior: str, params: dict[str, int]) -> Scenario:
    """The same schedule with the Byzantine replica given another behaviour or options."""
    faults = tuple(
        replace(f, behavior=behavior, params=tuple(params.items())) if f.kind == "byzantine" else f
        for f in s.faults
    )
    return replace(s, faults=faults)


@pytest.mark.parametrize(
    ("mutant", "scenario", "harmless"),
    [
        # the liar's set-up without the forged COMMITs
        ("skips-commit-signatures", "forged-commit", ("liar", {"victim": 2})),
        # the same subset primary, with V's VIEW-CHANGEs left intact
        ("trusts-view-changes-in-new-view", "subset-new-view", ("subset-new-view", {"strip": 0})),
    ],
)
def test_the_forgery_not_the_set_up_exposes_the_slip(
    mutant: str, scenario: str, harmless: tuple[str, dict[str, int]]
) -> None:
    s = with_fault(staged(scenario), *harmless)
    assert first_violation(s, PROOF_MUTANTS[mutant]) is None


@pytest.mark.parametrize("behavior", ["forged-state", "forged-view-change"])
def test_an_unknown_trick_is_refused_in_one_line(behavior: str) -> None:
    s = staged(STAGED[behavior], "no-such-trick")
    with pytest.raises(InputError, match=rf"^behaviour {behavior}: trick: expected one of .*"):
        run_scenario(s)


def test_mutants_override_hooks_the_replica_has() -> None:
    missing = sorted(name for name in HOOKS if not callable(getattr(Replica, name, None)))
    assert not missing, f"mutants override methods Replica no longer has: {missing}"


def test_adversaries_are_registered_documented_and_drawn() -> None:
    docs = (ROOT / "docs" / "scenarios.md").read_text()
    for name in PROOF_BEHAVIOURS:
        cls = BEHAVIOURS[name]
        assert cls.__module__ == "sim.world.adversaries"
        assert cls.__doc__ and "attack" in cls.__doc__.lower()
        assert f"`{name}`" in docs
        assert name in ALL_BEHAVIOURS
    assert sorted(STAGED) == sorted(PROOF_BEHAVIOURS)
