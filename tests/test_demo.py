"""``ledgersim demo``: the three experiments survive a Byzantine replica and a crashed peer."""

from __future__ import annotations

import json

import pytest

from sim.cli import main
from sim.demo import BYZANTINE, CRASHED, DemoResult, run_demo


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
    assert {v["blocks"] for v in demo.verification} == {len(demo.steps) + 1}


def test_the_corrupt_and_the_crashed_peer_are_skipped(demo: DemoResult) -> None:
    outcomes = [(a["peer"], a["outcome"]) for a in demo.download["attempts"]]
    assert outcomes[:2] == [
        ("peer1.org2.example.com", "rejected"),
        ("peer0.org2.example.com", "unavailable"),
    ]
    assert demo.download["served_by"] == "peer0.org1.example.com"
    assert demo.download["intact"]
    assert (BYZANTINE, CRASHED) == (3, 1)


def test_compliance_flags_the_device_that_never_installed(demo: DemoResult) -> None:
    rows = {r["user_id"]: (r["status"], r["overdue"]) for r in demo.compliance["rows"]}
    assert rows == {
        "Org1/User1@org1.example.com": ("installed", False),
        "Org2/User1@org2.example.com": ("missing", True),
    }


def test_demo_is_deterministic_and_has_json(
    capsys: pytest.CaptureFixture[str], demo: DemoResult
) -> None:
    assert main(["demo", "--seed", "7", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(demo.to_json()))
    assert main(["demo", "--seed", "7"]) == 0
    text = capsys.readouterr().out
    assert (
        "Exam 3 - audit" in text and "OVERDUE" in text and "all peers hold the same chain" in text
    )
