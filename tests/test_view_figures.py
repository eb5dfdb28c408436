"""``view_changes`` means NEW-VIEWs installed by correct replicas, in runs, sweeps and traces.

The scenario is the first-experiment tutorial's ``two-faults.toml``: a silent
primary plus a crashed backup at n = 4, so the two correct replicas ask for
view 1 but can never install it. A run and a sweep must report 0 view changes
there (with the attempts and the highest view beside it), the same figure the
trace of that run gives; a silent primary alone (within the fault model)
installs one view, again the same in run and trace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.cli.main import main as cli_main

SILENT_PRIMARY = """
seed = 1
duration_ms = 20000
[network]
replicas = 4
crypto = "modelled"
view_change_timeout_ms = 500
[workload]
clients = 2
requests = 20
rate_per_s = 50
chaincode = "kv"
[[fault]]
kind = "byzantine"
at_ms = 0
replica = 0
behavior = "silent"
[expect]
safety = true
min_view_changes = 1
"""

CRASH_BACKUP = """
[[fault]]
kind = "crash"
at_ms = 1000
replica = 2
"""


def cli_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    status = cli_main(argv)
    out, _ = capsys.readouterr()
    return status, json.loads(out)


def traced_run(path: Path, seed: int, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, dict]:
    trace = path.with_suffix(f".{seed}.jsonl")
    status, run = cli_json(
        ["run", str(path), "--seed", str(seed), "--json", "--trace", str(trace)], capsys
    )
    _, summary = cli_json(["trace", str(trace), "--json"], capsys)
    return status, run, summary


def test_an_attempted_view_change_that_never_completes_counts_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two-faults.toml"
    path.write_text(SILENT_PRIMARY + CRASH_BACKUP)
    status, run, trace = traced_run(path, 1, capsys)
    assert status == 1  # min_view_changes = 1 is not met: nothing was installed
    assert run["view_changes"] == 0 == trace["view_changes"]
    assert trace["views_installed"] == []
    assert run["highest_view"] == trace["highest_view"] == 1
    assert run["view_change_attempts"] == trace["view_change_attempts"] >= 2
    assert run["expectations"]["min_view_changes"] == {"expected": 1, "actual": 0, "ok": False}


def test_a_completed_view_change_counts_in_run_and_trace_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "silent-primary.toml"
    path.write_text(SILENT_PRIMARY)
    status, run, trace = traced_run(path, 1, capsys)
    assert status == 0
    assert run["view_changes"] == trace["view_changes"] == len(trace["views_installed"]) >= 1
    assert run["highest_view"] == trace["highest_view"]
    assert run["view_change_attempts"] == trace["view_change_attempts"]


def test_a_sweep_reports_the_installs_each_seed_traces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two-faults.toml"
    path.write_text(SILENT_PRIMARY + CRASH_BACKUP)
    status, sweep = cli_json(
        ["sweep", str(path), "--seeds", "1..3", "--jobs", "1", "--json"], capsys
    )
    assert status == 1
    by_seed = {o["seed"]: o["view_changes"] for o in sweep["outcomes"]}
    for seed in (1, 2, 3):
        _, _, trace = traced_run(path, seed, capsys)
        assert by_seed[seed] == trace["view_changes"] == 0
    assert sweep["view_changes"]["max"] == 0
