"""``ledgersim trace FILE --json`` and the figures derived from a trace (no browser here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_trace_html import RIVAL, batch_digest, synthetic_trace, write_trace

from sim.cli.main import main as cli_main
from sim.trace.derive import periods, slots, view_figures
from sim.trace.html import build_model

ROOT = Path(__file__).resolve().parent.parent


def test_json_summary_counts_what_the_trace_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = synthetic_trace(rounds=3, drop_every=9, view_change_after=2, equivocate_seq=1)
    trace = write_trace(tmp_path / "t.jsonl", events)
    assert cli_main(["trace", str(trace), "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    sends = [e for e in events if e["ev"] == "send"]
    assert data["messages"]["sent"] == len(sends)
    assert data["messages"]["by_type"]["Prepare"] == sum(1 for e in sends if e["type"] == "Prepare")
    assert data["messages"]["dropped"] == sum(1 for e in events if e["ev"] == "drop") > 0
    assert (data["view_changes"], data["views_installed"], data["highest_view"]) == (1, [1], 1)
    assert data["view_change_attempts"] == 3  # the byzantine primary's own is not counted
    assert [f["what"] for f in data["faults"]] == ["byzantine: silent </script><b>x</b>"]
    assert data["commits"] == 12 and data["sequence_numbers_executed"] == 3
    assert data["contested_sequence_numbers"] == [1]
    assert data["time_ms"]["first"] == 0 and data["time_ms"]["last"] == max(
        float(e["t"]) for e in events[1:]
    )
    assert data["cut_off"] is False and err == ""
    # With --html too, stdout stays pure JSON and the "wrote" line goes to stderr.
    assert cli_main(["trace", str(trace), "--json", "--html", str(tmp_path / "t.html")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == data and err.startswith("wrote ")


def test_view_changes_count_installs_not_attempts(tmp_path: Path) -> None:
    """A replica that times out alone asks for views 1 and 2; no view is installed."""
    root = ROOT / "scenarios"
    trace = tmp_path / "run.jsonl"
    argv = ["run", str(root / "byzantine-primary.toml"), "--trace", str(trace), "--quiet"]
    assert cli_main(argv) == 0
    lonely = [
        {"ev": "meta", "n": 4, "f": 1, "clients": []},
        {"ev": "view_change", "t": 10, "replica": 3, "view": 1},
        {"ev": "view_change", "t": 20, "replica": 3, "view": 2},
    ]
    figures = view_figures(lonely, lonely[0], set())
    assert (figures.installed, figures.attempts, figures.highest) == (0, 2, 2)
    # A real run: installed views are those a correct replica logged a new_view for.
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    model = build_model(events)
    installed = {e["view"] for e in events if e["ev"] == "new_view"}
    assert model.views.installed_views == sorted(installed) and installed
    # An old trace (no new_view events, no digests) falls back to NEW-VIEWs delivered.
    old = [
        {k: v for k, v in e.items() if k != "digest"} if e["ev"] == "send" else e
        for e in events
        if e["ev"] != "new_view"
    ]
    assert view_figures(old, old[0], set()).installed_views == sorted(installed)


def test_periods_pair_starts_with_ends() -> None:
    events = [
        {"ev": "fault", "t": 10, "kind": "crash", "replica": 2, "detail": "crash"},
        {"ev": "fault", "t": 20, "kind": "partition-start", "detail": "partition [[0], [1, 2]]"},
        {"ev": "fault", "t": 30, "kind": "recover", "replica": 2, "detail": "recover"},
        {"ev": "fault", "t": 35, "kind": "crash", "replica": 1, "detail": "crash"},
        {"ev": "fault", "t": 40, "kind": "partition-end", "detail": "partition-end"},
    ]
    assert periods(events, 99.0) == [
        [10.0, 30.0, "crashed", 2, "crashed", -1],
        [20.0, 40.0, "partition", 0, "partition {0} | {1, 2}", 0],
        [20.0, 40.0, "partition", 1, "partition {0} | {1, 2}", 1],
        [20.0, 40.0, "partition", 2, "partition {0} | {1, 2}", 1],
        [35.0, 99.0, "crashed", 1, "crashed", -1],  # never recovered: lasts to the end
    ]


def test_slots_follow_each_replica_through_the_phases() -> None:
    events = synthetic_trace(rounds=2, equivocate_seq=2)
    by_seq = {s["seq"]: s for s in slots(events, events[0])}
    one, two = by_seq[1], by_seq[2]
    assert one["digests"] == [batch_digest(1)] and len(one["proposals"]) == 1
    stages = {(s[1], s[2]) for s in one["states"]}
    assert stages == {(r, stage) for r in range(4) for stage in range(4)}
    assert two["digests"] == [batch_digest(2), RIVAL]
    assert [(p[2], p[4]) for p in two["proposals"]] == [(0, 2), (1, 1)]
    # Replica 3 got the rival batch and prepared it: pre-prepared, for digest index 1.
    assert any(s[1] == 3 and s[2] == 0 and s[4] == 1 for s in two["states"])
