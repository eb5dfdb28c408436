"""``ledgersim sweep --dask ADDRESS``: the seeds as tasks on a Dask cluster, same report as --jobs.

The cluster here is a local one with two worker processes (what CI can run);
a real cluster differs only in where the scheduler's address points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster
from test_sweep import fake_runner  # tests/ is on the workers' path (the fixture)

from sim.explore.sweep import chunk_sizes, sweep
from sim.scenario.model import Scenario

ROOT = Path(__file__).resolve().parent.parent
CRASH_RECOVER = ROOT / "scenarios" / "crash-recover.toml"
MUTANT = "pbft_mutants:SkipsGaps"  # fails some seeds of crash-recover, not all


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT / "tests")  # the workers must import the mutant
    try:
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            yield str(cluster.scheduler_address)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def sweep_cli(*args: str, seeds: str = "1..8") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sim", "sweep", str(CRASH_RECOVER), "--seeds", seeds, *args]
    return subprocess.run(
        command,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")},
        capture_output=True,
        text=True,
        timeout=600,
    )


def sweep_json(*args: str) -> tuple[int, dict[str, Any], str]:
    done = sweep_cli("--json", *args)
    return done.returncode, json.loads(done.stdout), done.stderr


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without wall-clock times (the only part allowed to differ)."""
    report = dict(report)
    report.pop("wall_s")
    report["outcomes"] = [{k: v for k, v in o.items() if k != "wall_s"} for o in report["outcomes"]]
    return report


def test_dask_sweep_reports_exactly_what_a_local_sweep_reports(scheduler: str) -> None:
    local_status, local, _ = sweep_json("--jobs", "1", "--replica", MUTANT)
    dask_status, remote, stderr = sweep_json("--dask", scheduler, "--replica", MUTANT)
    failing = [f["seed"] for f in local["failing"]]
    assert 0 < len(failing) < 8, "the comparison needs seeds that pass and seeds that fail"
    assert (dask_status, local_status) == (1, 1)
    assert [f["seed"] for f in remote["failing"]] == failing
    assert comparable(remote) == comparable(local)
    assert "Traceback" not in stderr


def test_dask_sweep_in_chunks_gives_every_seed_once(scheduler: str) -> None:
    """60 seeds on 2 worker threads go out as runs of up to 7: the report is still seed by seed."""
    scenario = Scenario(name="fake", source="scen.toml")
    seeds = range(1, 61)
    assert max(chunk_sizes(len(seeds), 2)) > 1
    remote = sweep(scenario, seeds, runner=fake_runner, dask=scheduler)
    local = sweep(scenario, seeds, jobs=1, runner=fake_runner)
    assert [o.seed for o in remote.outcomes] == list(seeds)
    assert remote.outcomes == local.outcomes


def test_dask_sweep_of_the_real_replica_passes(scheduler: str) -> None:
    status, report, _ = sweep_json("--dask", scheduler)
    assert status == 0 and report["passed"] == 8 and report["failures"] == 0


def test_unreachable_scheduler_is_one_line() -> None:
    done = sweep_cli("--dask", "tcp://127.0.0.1:9", seeds="1..2")
    assert done.returncode == 2
    assert "--dask: cannot reach a Dask scheduler at 'tcp://127.0.0.1:9'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_dask_and_jobs_together_are_refused() -> None:
    done = sweep_cli("--dask", "tcp://127.0.0.1:9", "--jobs", "2", seeds="1..2")
    assert done.returncode == 2 and "--dask and --jobs: choose one" in done.stderr
