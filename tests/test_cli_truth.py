"""What the commands print says what happened: requested vs submitted, n/a latencies,
"behind" replicas, plurals, register's groups, bench misses explained, usage per sub-command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_view_figures import CRASH_BACKUP, SILENT_PRIMARY

from sim.cli.bench import missed_explanation
from sim.cli.main import main as cli_main
from sim.cli.run import format_run
from sim.scenario.reader import parse_scenario


def test_a_stalled_run_says_requested_and_shows_no_latency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two-faults.toml"
    path.write_text(SILENT_PRIMARY + CRASH_BACKUP)
    assert cli_main(["run", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["committed"] == 0 and data["requested"] == 20 and data["submitted"] < 20
    assert data["latency_ms"] == {"p50": None, "p90": None, "p99": None, "max": None}
    assert cli_main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"requests   20 requested, {data['submitted']} submitted, 0 committed" in out
    assert "view changes 0 (highest view 1, 2 attempts)" in out
    assert "latency    p50 n/a, p99 n/a" in out
    assert "p50 0.0" not in out


def test_a_replica_merely_behind_is_labelled() -> None:
    scenario = parse_scenario("", "x.toml")
    replica = {"view": 0, "head_hash": "aa", "byzantine": False, "crashed": False}
    summary = {
        "replicas": [
            {**replica, "id": 0, "height": 9},
            {**replica, "id": 1, "height": 8},
            {**replica, "id": 2, "height": 6},
            {**replica, "id": 3, "height": 2, "crashed": True},
        ]
    }
    lines = format_run(scenario, summary, {}).splitlines()
    rows = {line.split()[0]: line for line in lines if line[:1].isdigit()}
    assert rows["0"].rstrip().endswith("aa")
    assert rows["1"].endswith("behind (1 block)") and rows["2"].endswith("behind (3 blocks)")
    assert rows["3"].endswith("crashed")


def test_trace_counts_are_plural_only_when_they_should_be(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "silent.toml"
    path.write_text(SILENT_PRIMARY)
    trace = tmp_path / "t.jsonl"
    assert cli_main(["run", str(path), "--quiet", "--trace", str(trace)]) == 0
    assert cli_main(["trace", str(trace), "--html", str(tmp_path / "t.html")]) == 0
    line = capsys.readouterr().out
    assert line.rstrip().endswith(", 1 fault") and "1 view change installed" in line


def test_register_prints_groups_as_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = tmp_path / "net"
    assert cli_main(["net", "init", "--sim", str(net)]) == 0
    capsys.readouterr()
    argv = ["patch", "register", "--network", str(net), "--as", "User1@org1.example.com"]
    assert cli_main([*argv, "--os", "ubuntu", "--group", "finance", "--group", "hr"]) == 0
    out = capsys.readouterr().out
    assert "groups finance, hr)" in out and "[" not in out


def test_a_missed_bench_target_is_explained() -> None:
    targets = [
        {"name": "a", "comparison": ">=", "threshold": 1000, "value": 412.0, "met": False},
        {"name": "b", "comparison": "<", "threshold": 20, "value": 3.0, "met": True},
    ]
    text = missed_explanation(targets, quick=True)
    assert text.startswith("1 target MISSED:\n  a: measured 412, goal >= 1000\n")
    assert "not a failure" in text and "--quick" in text
    assert missed_explanation(targets[1:], quick=True) == ""


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["run", "x.toml", "--bogus"], "usage: ledgersim run "),
        (["ledger", "verify", "d", "--msp", "m", "--nope"], "usage: ledgersim ledger verify "),
        (["sweep", "x.toml", "--seeds", "1..2", "--what"], "usage: ledgersim sweep "),
    ],
)
def test_a_wrong_flag_shows_the_sub_command_usage(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and f"error: unrecognized arguments: {argv[-1]}" in err
