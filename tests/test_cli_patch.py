"""The paper's three experiments by hand: ``net init --sim`` then ``ledgersim patch ...``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sim.cli.main import main

ADMIN1, ADMIN2 = "Admin@org1.example.com", "Admin@org2.example.com"
USER1 = "User1@org1.example.com"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    out = captured.out
    try:
        return status, json.loads(out), captured.err
    except ValueError:
        return status, out, captured.err


def test_three_experiments_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = tmp_path / "net"
    patch = tmp_path / "fix.patch"
    patch.write_bytes(b"--- a/x\n+++ b/x\n" * 500)
    assert run(capsys, "net", "init", "--sim", str(net), "--byzantine", "3:equivocate")[0] == 0
    common = ["--network", str(net), "--json"]

    # Exam 1
    status, up, _ = run(
        capsys,
        "patch",
        "upload",
        *common,
        "--as",
        ADMIN1,
        "--file",
        str(patch),
        "--name",
        "openssl",
        "--version",
        "1.0.1",
        "--group",
        "finance",
    )
    assert (status, up["status"], len(up["file_on"])) == (0, "pending", 4)
    status, _, err = run(capsys, "patch", "approve", "openssl", "1.0.1", *common, "--as", ADMIN1)
    assert status == 2 and "cannot approve their own upload" in err
    status, ok, _ = run(capsys, "patch", "approve", "openssl", "1.0.1", *common, "--as", ADMIN2)
    assert (status, ok["status"]) == (0, "released")

    # Exam 2
    status, _, err = run(capsys, "patch", "download", "openssl", *common, "--as", USER1)
    assert status == 2 and "call register first" in err
    run(capsys, "patch", "register", *common, "--as", USER1, "--os", "ubuntu", "--group", "finance")
    out = tmp_path / "got.patch"
    status, got, _ = run(
        capsys, "patch", "download", "openssl", *common, "--as", USER1, "--out", str(out)
    )
    assert status == 0 and out.read_bytes() == patch.read_bytes()
    attempts = got["attempts"]
    assert attempts[-1] == {"peer": got["served_by"], "outcome": "served", "reason": "intact"}
    assert all(
        a["outcome"] == "rejected" for a in attempts if a["peer"] == "peer1.org2.example.com"
    )
    status, rep, _ = run(
        capsys,
        "patch",
        "report",
        "openssl",
        "1.0.1",
        *common,
        "--as",
        USER1,
        "--outcome",
        "installed",
        "--rebooted",
    )
    assert (status, rep["outcome"], rep["rebooted"]) == (0, "installed", True)

    # Exam 3
    status, hist, _ = run(capsys, "patch", "history", "openssl", *common, "--as", ADMIN2)
    assert [(e["action"], e["creator"]["name"]) for e in hist["events"]] == [
        ("upload", ADMIN1),
        ("release", ADMIN2),
        ("download", USER1),
        ("report", USER1),
    ]
    status, comp, _ = run(capsys, "patch", "compliance", *common, "--as", ADMIN1)
    assert [(r["user_id"], r["status"]) for r in comp["rows"]] == [(f"Org1/{USER1}", "installed")]
    status, text, _ = run(
        capsys, "patch", "history", "openssl", "--network", str(net), "--as", ADMIN1
    )
    assert "release" in text and ADMIN2 in text

    # The directory is a node directory tree that verifies on its own.
    assert main(["ledger", "verify", str(net / "replica-2"), "--msp", str(net / "crypto")]) == 0


def test_bad_network_directory_and_unknown_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "patch", "list", "--network", str(tmp_path), "--as", ADMIN1)
    assert status == 2 and "not a network directory" in err
    net = tmp_path / "net"
    run(capsys, "net", "init", "--sim", str(net))
    status, _, err = run(capsys, "patch", "list", "--network", str(net), "--as", "Mallory@evil")
    assert status == 2 and "no identity 'Mallory@evil'" in err
    status, _, err = run(capsys, "net", "init", "--sim", str(net))
    assert status == 2 and "not an empty directory" in err


def test_commands_continue_one_network_across_a_view_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The primary of view 0 lies; the view change it forces holds for later commands."""
    net = tmp_path / "net"
    patch = tmp_path / "fix.patch"
    patch.write_bytes(b"fix\n" * 100)
    assert run(capsys, "net", "init", "--sim", str(net), "--byzantine", "0:equivocate")[0] == 0
    common = ["--network", str(net), "--json"]
    upload = ["--file", str(patch), "--name", "zlib", "--version", "1.3.1"]
    assert run(capsys, "patch", "upload", *common, "--as", ADMIN1, *upload)[0] == 0
    assert run(capsys, "patch", "approve", "zlib", "1.3.1", *common, "--as", ADMIN2)[0] == 0
    assert run(capsys, "patch", "register", *common, "--as", USER1, "--os", "debian")[0] == 0
    assert json.loads((net / "simnet.json").read_text())["client_view"] == 1

    status, dump, _ = run(capsys, "ledger", "dump", str(net / "replica-3"), "--json")
    blocks = [json.loads(line) for line in dump.splitlines()][1:]
    views = [b["metadata"]["view"] for b in blocks]
    times = [b["metadata"]["timestamp_ms"] for b in blocks]
    # Block 1 is the null batch the view change left; every later block is ordered in
    # view 1, by commands that each started with the replicas where the last one ended.
    assert status == 0 and views == [1, 1, 1, 1]
    assert [len(b["transactions"]) for b in blocks] == [0, 1, 1, 1]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert main(["ledger", "verify", str(net / "replica-1"), "--msp", str(net / "crypto")]) == 0


def test_manifest_upload_refuses_options_it_would_ignore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--manifest gives the whole patch set: a flag that would be silently ignored is an error."""
    net = tmp_path / "net"
    patch = tmp_path / "fix.patch"
    patch.write_bytes(b"fix\n" * 100)
    manifest = tmp_path / "m.json"
    manifest.write_text("{}")
    assert run(capsys, "net", "init", "--sim", str(net))[0] == 0
    status, _, err = run(
        capsys,
        "patch",
        "upload",
        "--network",
        str(net),
        "--as",
        ADMIN1,
        "--file",
        str(patch),
        "--manifest",
        str(manifest),
        "--name",
        "other",
        "--install",
        "optional",
    )
    assert status == 2
    assert "--manifest gives the whole patch set; drop --name, --install" in err
    assert err.count("\n") == 1
