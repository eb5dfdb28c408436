"""A short nemesis run in CI: crashes, a pause and a broker restart under load, then checks.

The run's own checks are the assertions (``sim.live.nemesis``); this test
also checks that the report says what happened: the faults of the schedule
struck real processes, the load committed before and after them, and the
table, JSON and picture agree.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from live_helpers import watched
from test_live_network import mosquitto

from sim.cli.main import main
from sim.live import cluster
from sim.live.schedule import schedule

pytestmark = pytest.mark.live
__all__ = ["mosquitto"]

FAULTS = "kill-backup,kill-primary,pause,broker-restart"
CHECKS = {
    "committed-in-every-ledger",
    "ledgers-verify",
    "chains-agree",
    "throughput-recovered",
    "views-settled",
    "no-tracebacks",
}


@pytest.fixture(scope="module")
def net(mosquitto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("nemesis") / "net"
    with watched(directory):
        # The view-change timeout outlasts a broker restart (docs/live.md, what is
        # not promised: a replica cut off for a whole timeout may move on alone).
        pbft = replace(cluster.DEFAULT_PBFT, view_change_timeout_ms=5000)
        cluster.up(directory, cluster.UpOptions(chaincode="kv", pbft=pbft))
        yield directory


def test_schedule_is_fixed_by_the_seed_and_bounded() -> None:
    kinds = tuple(FAULTS.split(","))
    first = schedule(11, 36.0, kinds)
    assert first == schedule(11, 36.0, kinds) != schedule(12, 36.0, kinds)
    assert {f.kind for f in first} == set(kinds)
    for before, after in itertools.pairwise(first):
        assert after.at_s >= before.at_s + before.hold_s  # never two at once
    assert first[-1].at_s + first[-1].hold_s <= 36.0


def test_nemesis_run_passes_its_checks(net: Path, tmp_path: Path) -> None:
    plot = tmp_path / "timeline.svg"
    out, err = io.StringIO(), io.StringIO()
    args = ["nemesis", "--network", str(net), "--seed", "11", "--duration", "36",
            "--faults", FAULTS, "--plot", str(plot), "--json"]  # fmt: skip
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    report = json.loads(out.getvalue())
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == CHECKS
    # Every check, "views-settled" included: with the two-stage request timer no
    # backup is left alone in a view change (docs/live.md, the lone suspecter).
    assert not [name for name, c in checks.items() if not c["ok"]], checks
    assert (code, report["ok"]) == (0, True), checks
    kinds = [f["kind"] for f in report["faults"]]
    assert set(kinds) == set(FAULTS.split(",")), kinds
    assert all(f["targets"] for f in report["faults"] if f["kind"] != "broker-restart")
    assert report["load"]["committed"] > 0 and report["probe"]["committed"] > 0
    first_fault = report["faults"][0]["struck_s"]
    before = sum(r["committed"] for r in report["timeline"] if r["t"] + 1 <= first_fault)
    after = sum(
        r["committed"] for r in report["timeline"] if r["t"] >= report["faults"][-1]["healed_s"]
    )
    assert before > 0 and after > 0
    assert plot.read_text().count("#f4b6b6") == len(kinds)  # one shaded window per fault
    assert "nemesis: healed" in err.getvalue() and "Traceback" not in err.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--faults", "kill-backup,meteor"], "--faults: expected a comma list of"),
        (["--duration", "3"], "--duration: expected at least 10 seconds"),
        (["--rate", "0"], "--rate: expected a positive number"),
    ],
)
def test_bad_nemesis_options_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["nemesis", "--network", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_bridge_cut_needs_a_bridged_network(net: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nemesis", "--network", str(net), "--faults", "bridge-cut"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a network made with --bridged" in err


def test_nemesis_without_a_network_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["nemesis", "--network", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no live network here" in err
