"""``ledgersim demo``: the three experiments survive a Byzantine primary and a crashed peer."""

from __future__ import annotations

import json

import pytest

from sim.cli.main import main
from sim.fabric.demo import BYZANTINE, CRASHED, DemoResult, run_demo


@pytest.fixture(scope="module")
def demo() -> DemoResult:
    return run_demo(7)


def test_audit_shows_each_record_with_the_right_identity(demo: DemoResult) -> None:
    steps = [
        (e["action"], e["creator"]["name"], e["creator"]["role"]) for e in demo.history["events"]
    ]
    assert steps == [
        ("upload", "Admin@org1.example.com", "admin"),
        ("release", "Admin@org2.example.com", "admin"),
        ("download", "User1@org1.example.com", "client"),
        ("report", "User1@org1.example.com", "client"),
    ]
    tx_ids = [s["tx_id"] for s in demo.steps]
    assert all(e["tx_id"] in tx_ids for e in demo.history["events"])


def test_every_step_committed_valid_and_the_ledger_verifies(demo: DemoResult) -> None:
    assert [s["validation_code"] for s in demo.steps] == ["VALID"] * len(demo.steps)
    assert all(s["safety_ok"] for s in demo.steps)
    assert demo.ok
    assert len({v["head_hash"] for v in demo.verification}) == 1
    # Genesis, one block per step, and the null block the view change left.
    null_blocks = demo.steps[0]["view_change"]["null_blocks"]
    assert null_blocks == [1]
    assert {v["blocks"] for v in demo.verification} == {len(demo.steps) + 2}


def test_the_byzantine_primary_is_replaced_and_later_steps_run_in_the_new_view(
    demo: DemoResult,
) -> None:
    upload, *later = demo.steps
    story = upload["view_change"]
    assert (upload["view_changes"], upload["view"]) == (1, 1)
    assert (story["old_view"], story["old_primary"]) == (0, BYZANTINE)
    assert len(story["pre_prepare_versions"]) == 2  # the equivocation
    # The two backups that got the same version prepared it (they sent COMMITs),
    # and the narration says so rather than claiming nothing prepared.
    same = next(v["to"] for v in story["pre_prepare_versions"] if len(v["to"]) == 2)
    assert story["prepared_by"] == same
    assert any("that version was prepared" in line for line in demo.lines)
    assert sorted(e["replica"] for e in story["timed_out"]) == [1, 2, 3]
    assert [e["replica"] for e in story["joined"]] == [BYZANTINE]
    assert story["new_view"]["primary"] == 1 and story["new_view"]["view"] == 1
    assert story["messages"]["VIEW-CHANGE"] == upload["messages"]["ViewChange"] > 0
    assert story["messages"]["NEW-VIEW"] == upload["messages"]["NewView"] > 0
    # Continuity: the next commands start in view 1 and address its primary directly.
    for step in later:
        assert (step["view"], step["view_changes"], step["view_change"]) == (1, 0, None)
        assert "ViewChange" not in step["messages"] and step["messages"]["Request"] == 1
    # Block times keep growing across commands (backups check it).
    stamps = [s["timestamp_ms"] for s in demo.steps]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_the_corrupt_and_the_crashed_peer_are_skipped(demo: DemoResult) -> None:
    outcomes = [(a["peer"], a["outcome"]) for a in demo.download["attempts"]]
    assert outcomes == [
        ("peer0.org1.example.com", "rejected"),
        ("peer1.org1.example.com", "unavailable"),
        ("peer0.org2.example.com", "served"),
    ]
    assert demo.download["served_by"] == "peer0.org2.example.com"
    assert demo.download["intact"]
    assert (BYZANTINE, CRASHED) == (0, 2)


def test_compliance_flags_the_device_that_never_installed(demo: DemoResult) -> None:
    rows = {r["user_id"]: (r["status"], r["overdue"]) for r in demo.compliance["rows"]}
    assert rows == {
        "Org1/User1@org1.example.com": ("installed", False),
        "Org2/User1@org2.example.com": ("missing", True),
    }


@pytest.mark.slow
def test_demo_is_deterministic_and_has_json(
    capsys: pytest.CaptureFixture[str], demo: DemoResult
) -> None:
    assert main(["demo", "--seed", "7", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(demo.to_json()))
    assert main(["demo", "--seed", "7"]) == 0
    text = capsys.readouterr().out
    assert text == "\n".join(demo.lines) + "\n"
    assert "Exam 3 - audit" in text and "all peers hold the same chain" in text
    assert "VIEW CHANGE: replica 0, the primary of view 0, is replaced." in text
    table = text[text.index("device  ") :].splitlines()
    assert table[0].split() == ["device", "patch", "status", "deadline_ms", "overdue"]
    assert table[3].split()[-1] == "yes" and table[2].split()[-1] == "no"
