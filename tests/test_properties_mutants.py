"""The property suite must catch every deliberately broken replica in tests/pbft_mutants.py.

Each mutant breaks one rule of PBFT. Against it we run the same checks the
property tests use (safety invariants, liveness after GST) over an attack
battery — fixed scenarios aimed at the protocol's weak spots, a few seeds
each, the attack aimed at that mutant first (``AIMED_AT``) — and then, if
nothing fired yet, Hypothesis-drawn scenarios. A test here FAILS when its
mutant gets through everything, and prints the seed and the scenario file of
the attack that was meant to catch it. The control test runs the unbroken
replica over the same battery: no check may fire there, or the battery would
"catch" mutants for the wrong reason.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pbft_mutants import MUTANTS
from pbft_scenarios import byzantine, pbft_scenario

from pbft.replica import Replica
from sim.explore.strategies import scenarios
from sim.scenario.model import Fault, Scenario
from sim.scenario.reader import load_scenario
from sim.scenario.reproduce import failure_report
from sim.world.results import RunResult
from sim.world.simulation import run_scenario

SEEDS = range(1, 9)
AIMED_SEEDS = range(1, 101)
"""The attack aimed at a mutant gets more seeds than the rest of the battery.

A scenario file names the seed its failure was found with, but any change in
how the simulator draws its randomness moves a violation to other seeds:
equivocate-n5 stopped catching its mutant at seed 2 that way, and the suite
only passed through Hypothesis's fallback, whose draws depend on its version.
Aimed attacks hit at a few seeds in a hundred at worst (equivocate-n5: about
one in fifteen), so a hundred seeds make a miss vanishingly unlikely.
"""
SCENARIOS = Path(__file__).parent / "scenarios"


def attack(
    n: int = 4, loss: float = 0.0, dup: float = 0.0, requests: int = 40, **kw: object
) -> Scenario:
    base = pbft_scenario(
        "attack",
        1,
        replicas=n,
        requests=requests,
        rate_per_s=300,
        max_latency_ms=20,
        loss=loss,
        duplication=dup,
        batch_size=2,
        watermark_window=10,
        view_change_timeout_ms=400,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


_ATTACKS: dict[str, Scenario] = {
    # a primary proposing far above the high watermark
    "far-sequence": attack(faults=(byzantine(0, "far-sequence"),)),
    # a backup re-proposing batches ahead of the primary
    "rogue-backup": attack(faults=(byzantine(2, "rogue-primary"),)),
    # lying view changes while the primary is cut off or down, on a lossy network
    "fake-view-change-cut": attack(
        loss=0.05,
        faults=(
            byzantine(1, "fake-view-change"),
            Fault("partition", at_ms=150, until_ms=1500, groups=((0,), (1, 2, 3))),
        ),
    ),
    "fake-view-change-n7": attack(
        n=7,
        loss=0.05,
        faults=(
            byzantine(1, "fake-view-change"),
            Fault("crash", at_ms=150, replica=0),
            Fault("recover", at_ms=1500, replica=0),
        ),
    ),
    # one replica holds f+1 COMMITs for batches the next view fills with empty
    # ones (a liar votes to it alone and leads that view); see the file
    "selective-commit": load_scenario(SCENARIOS / "selective-commit.toml"),
    # n = 5: quorums must be ceil((n+f+1)/2) = 4, not 2f+1 = 3; see the file
    "equivocate-n5": load_scenario(SCENARIOS / "equivocate-n5.toml"),
    "equivocate-n7": attack(
        n=7,
        loss=0.05,
        dup=0.05,
        faults=(byzantine(0, "equivocate"), byzantine(4, "fake-view-change")),
    ),
    "partitions": attack(
        loss=0.05,
        faults=(
            Fault("partition", at_ms=100, until_ms=700, groups=((0, 1), (2, 3))),
            Fault("partition", at_ms=900, until_ms=1500, groups=((0, 2), (1, 3))),
        ),
    ),
}


BATTERY: dict[str, Scenario] = {name: replace(s, name=name) for name, s in _ATTACKS.items()}

AIMED_AT: dict[str, str] = {
    # mutant -> the attack built to expose it (tried first; the battery follows)
    "commit-quorum-f+1": "selective-commit",
    "quorum-2f+1-for-any-n": "equivocate-n5",
    "ignores-watermarks": "far-sequence",
    "new-view-drops-prepared": "partitions",
    "pre-prepare-from-anyone": "rogue-backup",
    "skips-gaps": "partitions",
    "skips-view-change-signatures": "fake-view-change-cut",
    "trusts-new-view": "fake-view-change-cut",
}


def problems(result: RunResult) -> list[str]:
    """What the property tests would complain about in this run."""
    found = list(result.safety_violations) + list(result.liveness_violations)
    if result.liveness_checked and result.committed != result.submitted:
        found.append(f"liveness: {result.committed} of {result.submitted} committed")
    return found


def run_attack(s: Scenario, replica_class: type[Replica]) -> str | None:
    """The first complaint about one run, or None; a replica that raises is caught too."""
    try:
        found = problems(run_scenario(s, replica_class=replica_class))
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"
    return found[0] if found else None


def first_catch(
    replica_class: type[Replica], aimed: str | None = None
) -> tuple[Scenario, str] | None:
    order = sorted(BATTERY, key=lambda name: name != aimed)
    for name in order:
        for seed in seeds_for(name, aimed):
            s = replace(BATTERY[name], seed=seed)
            found = run_attack(s, replica_class)
            if found is not None:
                return s, found
    return hypothesis_catch(replica_class)


def seeds_for(name: str, aimed: str | None) -> list[int]:
    """The attack's own seed first, then the battery's (more for the aimed attack)."""
    more = AIMED_SEEDS if name == aimed else SEEDS
    own = BATTERY[name].seed
    return [own, *(seed for seed in more if seed != own)]


def hypothesis_catch(replica_class: type[Replica]) -> tuple[Scenario, str] | None:
    caught: list[tuple[Scenario, str]] = []

    @settings(
        max_examples=150,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(scenarios(replicas=st.sampled_from([4, 5, 7]), lossy=True))
    def probe(s: Scenario) -> None:
        if caught:
            return
        found = run_attack(s, replica_class)
        if found is not None:
            caught.append((s, found))

    probe()
    return caught[0] if caught else None


def escaped(name: str) -> str:
    """The failure message: the seed and scenario file of the attack aimed at the mutant."""
    aimed = AIMED_AT.get(name)
    head = f"mutant {name!r} got through the whole suite"
    if aimed is None:
        return head + " (no attack is aimed at it: add one to AIMED_AT)"
    s = replace(BATTERY[aimed], seed=SEEDS[0])
    result = run_scenario(s, replica_class=MUTANTS[name])
    return f"{head}; the attack aimed at it passed:\n{failure_report(s, result)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught(name: str) -> None:
    caught = first_catch(MUTANTS[name], AIMED_AT.get(name))
    assert caught is not None, escaped(name)
    s, found = caught
    print(f"mutant {name!r} caught by {s.name!r} seed {s.seed}: {found}")


def test_every_mutant_has_an_attack_aimed_at_it() -> None:
    assert sorted(AIMED_AT) == sorted(MUTANTS)
    assert set(AIMED_AT.values()) <= set(BATTERY)


@pytest.mark.slow
@pytest.mark.parametrize("attack_name", sorted(BATTERY))
def test_correct_replica_survives_the_battery(attack_name: str) -> None:
    aimed = attack_name in AIMED_AT.values()
    for seed in seeds_for(attack_name, attack_name if aimed else None):
        s = replace(BATTERY[attack_name], seed=seed)
        result = run_scenario(s)
        assert result.fault_model["within"], failure_report(s, result)
        assert not problems(result), failure_report(s, result)
