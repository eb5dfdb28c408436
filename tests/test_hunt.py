"""``ledgersim hunt``: new fault schedules until one breaks PBFT's claim, shrunk and replayable."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pbft_mutants import SkipsGaps

from sim.explore.hunt import hunt
from sim.scenario.reader import load_scenario, parse_scenario
from sim.world.simulation import run_scenario

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scenarios" / "byzantine-primary.toml"


def ticking(step_s: float) -> Callable[[], float]:
    """A clock that moves ``step_s`` per reading: hunts that stop after a fixed amount of work."""
    now = [0.0]

    def clock() -> float:
        now[0] += step_s
        return now[0]

    return clock


def test_a_hunt_finds_the_mutant_and_shrinks_a_replayable_schedule() -> None:
    report = hunt(load_scenario(BASE), minutes=10, seed=3, replica_class=SkipsGaps)
    found = report.violation
    assert found is not None, "SkipsGaps executes past a gap: some drawn schedule must show it"
    assert any(reason.startswith(("safety", "liveness", "committed")) for reason in found.reasons)
    replayed = parse_scenario(found.toml, "repro.toml")
    assert not run_scenario(replayed, replica_class=SkipsGaps).ok  # the file fails when followed
    assert run_scenario(replayed).ok  # and the real replica holds the same claim on it


def test_the_real_replica_holds_and_the_hunt_stops_on_time() -> None:
    # every clock reading is one "second": the hunt ends after a fixed amount of work
    report = hunt(load_scenario(BASE), minutes=1, seed=1, clock=ticking(0.25))
    assert report.violation is None
    assert report.tried > 0
    assert report.rounds >= 1
    assert report.to_json()["schedules_tried"] == report.tried


def test_same_seed_same_hunt() -> None:
    first = hunt(load_scenario(BASE), minutes=10, seed=5, replica_class=SkipsGaps)
    again = hunt(load_scenario(BASE), minutes=10, seed=5, replica_class=SkipsGaps)
    assert first.violation is not None and again.violation is not None
    assert first.violation.toml == again.violation.toml
    assert first.tried == again.tried


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT / "tests"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "sim", "hunt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_writes_the_repro_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "found.toml"
    done = run_cli(
        str(BASE),
        "--minutes",
        "5",
        "--replica",
        "pbft_mutants:SkipsGaps",
        "--out",
        str(out),
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["violation"]["reasons"]
    assert out.read_text() == report["violation"]["scenario_toml"]
    assert "--replica pbft_mutants:SkipsGaps" in report["reproduce"]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--minutes", "0"], "--minutes: expected a number > 0"),
        (["--minutes", "soon"], "--minutes: expected a number of minutes"),
        (["--minutes", "1", "--behaviours", "dance"], "--behaviours: unknown dance"),
        (["--minutes", "1", "--seed", "-4"], "--seed: expected an integer >= 0"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_cli(str(BASE), *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
