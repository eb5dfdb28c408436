"""The TUF/Uptane attacks of docs/patchset.md, tried with ``ledgersim patch`` over a sim network.

The contract side of each defence has its harness test in
``tests/test_patchset_threats.py``; these show the client and the simulated
network keep their half: revocation reaches the peers, the client checks
what it is told against the request and the CAs, and no download is logged
that did not happen.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from patchnet import ADMIN1, ADMIN2, USER1, SimNet, run

from sim.fabric.blobs import DirectoryBlobStore
from sim.fabric.gateway import Refused
from sim.fabric.simnet import SimGateway

FIX = b"--- a/ssl.c\n+++ b/ssl.c\n" * 200


def test_a_revoked_admin_can_neither_upload_nor_approve_over_a_sim_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = SimNet(tmp_path, capsys)
    assert net.upload(ADMIN1, "openssl", "3.0.1", FIX)[0] == 0
    net.revoke(ADMIN2)
    status, _, err = net.patch("approve", ADMIN2, "openssl", "3.0.1")
    assert status == 2 and "revoked" in err and err.count("\n") == 1
    status, _, err = net.upload(ADMIN2, "zlib", "1.3", FIX)
    assert status == 2 and "revoked" in err
    status, listing, _ = net.patch("list", ADMIN1)
    assert [(v["name"], v["status"]) for v in listing["patches"]] == [("openssl", "pending")]


def test_the_peers_inside_a_session_honour_the_crl_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Skip the gateway's own endorsement: the session's endorsers and validators still refuse."""
    net = SimNet(tmp_path, capsys)
    assert net.upload(ADMIN1, "openssl", "3.0.1", FIX)[0] == 0
    net.revoke(ADMIN2)
    with SimGateway.open(net.dir) as gateway:
        monkeypatch.setattr(gateway, "evaluate", lambda *args: b"")
        with pytest.raises(Refused, match="revoked"):
            gateway.submit(ADMIN2, "approve", ("openssl", "3.0.1"))
        assert gateway.sessions[-1].code != "VALID"
    _, listing, _ = net.patch("list", ADMIN1)
    assert [(v["name"], v["status"]) for v in listing["patches"]] == [("openssl", "pending")]


def released_to_user1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> SimNet:
    net = SimNet(tmp_path, capsys)
    net.release("openssl", "3.0.1", FIX)
    assert net.patch("register", USER1, "--os", "debian", "--group", "finance")[0] == 0
    return net


def downloads(net: SimNet) -> list[str]:
    """Who the ledger says downloaded openssl 3.0.1."""
    _, hist, _ = net.patch("history", ADMIN2, "openssl", "3.0.1")
    return [e["creator"]["name"] for e in hist["events"] if e["action"] == "download"]


def test_a_release_whose_deployer_was_revoked_is_not_fetched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The contract cannot read CRLs; the client checks the deployer's certificate itself."""
    net = released_to_user1(tmp_path, capsys)
    net.revoke(ADMIN1)
    status, _, err = net.patch("download", USER1, "openssl")
    assert status == 2 and err.count("\n") == 1
    assert "deployer certificate is not trusted: certificate serial" in err and "revoked" in err
    assert downloads(net) == []


def test_a_client_trusting_other_cas_refuses_the_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = released_to_user1(tmp_path, capsys)
    other = tmp_path / "other"
    assert net.cli("net", "init", "--sim", str(other), "--seed", "99")[0] == 0
    status, _, err = net.patch("download", USER1, "openssl", "--msp", str(other / "crypto"))
    assert status == 2 and "not trusted: unknown CA" in err
    assert downloads(net) == []


def test_the_device_never_accepts_a_version_below_its_own_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = released_to_user1(tmp_path, capsys)
    status, _, err = net.patch("download", USER1, "openssl", "--installed", "3.0.2")
    assert status == 2 and "older than the installed 3.0.2: never go back" in err
    assert downloads(net) == []


def test_no_download_is_logged_when_no_peer_serves_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = released_to_user1(tmp_path, capsys)
    for blob in (net.dir / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()
    status, _, err = net.patch("download", USER1, "openssl")
    assert status == 2 and err.count("\n") == 1 and "no peer served sha256:" in err
    assert downloads(net) == []
    status, _, err = net.patch("report", USER1, "openssl", "3.0.1", "--outcome", "installed")
    assert status == 2


def test_no_download_is_logged_when_the_out_path_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = released_to_user1(tmp_path, capsys)
    missing = tmp_path / "no-such-dir" / "fix.patch"
    status, _, err = net.patch("download", USER1, "openssl", "--out", str(missing))
    assert status == 2 and err.count("\n") == 1 and "no such directory" in err
    assert "Traceback" not in err and downloads(net) == []
    assert net.patch("download", USER1, "openssl", "--out", str(tmp_path))[0] == 2  # a directory
    assert downloads(net) == []
    good = tmp_path / "fix.patch"
    assert net.patch("download", USER1, "openssl", "--out", str(good))[0] == 0
    assert good.read_bytes() == FIX and downloads(net) == [USER1]


LONE = "\udced"
"""A lone UTF-16 surrogate: what a shell passes for bytes that are not UTF-8."""


@pytest.mark.parametrize(
    ("action", "argv", "reason"),
    [
        ("upload", ("--deadline-ms", str(2**70)), "deadline_ms must be null or an integer"),
        ("upload", ("--description", f"fix{LONE}"), "description is not valid Unicode text"),
        ("withdraw", ("openssl", "3.0.1", "--reason", LONE), "not valid Unicode text"),
        ("download", (f"openssl{LONE}",), "not valid Unicode text"),
        ("register", ("--os", f"debian{LONE}"), "not a valid name"),
        ("history", (f"openssl{LONE}",), "not valid Unicode text"),
    ],
)
def test_bad_text_and_huge_times_get_a_rule_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    action: str,
    argv: tuple[str, ...],
    reason: str,
) -> None:
    net = SimNet(tmp_path, capsys)
    upload = ("--file", str(net.file(FIX)), "--name", "openssl", "--version", "3.0.2")
    user = {"upload": ADMIN1, "withdraw": ADMIN1, "history": ADMIN1}.get(action, USER1)
    status, _, err = net.patch(action, user, *(upload if action == "upload" else ()), *argv)
    assert (status, err.count("\n")) == (2, 1) and reason in err, err
    assert "Traceback" not in err


def stored_files(net: SimNet) -> set[str]:
    """Every patch file on every peer, as ``<peer>/<sha256>`` (each store's ``placed.json``,
    when its files were placed, is bookkeeping: ``sim.fabric.filegc``)."""
    return {
        f"{peer.name}/{digest}"
        for peer in (net.dir / "blobs").iterdir()
        for digest in DirectoryBlobStore(peer).digests()
    }


def test_a_refused_upload_leaves_no_file_on_the_peers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = SimNet(tmp_path, capsys)
    net.release("openssl", "3.0.1", FIX)
    kept = stored_files(net)
    net.revoke(ADMIN2)
    for user, version, reason in (
        (USER1, "3.0.2", "requires an admin identity"),
        (ADMIN2, "3.0.2", "revoked"),
        (ADMIN1, "3.0.0", "no rollback or replay"),
    ):
        status, _, err = net.upload(user, "openssl", version, b"rogue bytes " + user.encode())
        assert status == 2 and reason in err, err
    assert stored_files(net) == kept and len(kept) == 4


def test_the_demo_releases_only_on_two_sign_offs(capsys: pytest.CaptureFixture[str]) -> None:
    """``ledgersim demo``'s Exam 1: pending after the upload, released by a second admin."""
    status, text, _ = run(capsys, "demo")
    assert status == 0
    assert "status: pending (1 of 2 sign-offs: one administrator cannot release alone)" in text
    assert f"2 of 2 sign-offs: deployed by {ADMIN1}, approved by {ADMIN2}" in text
    assert "certificate\n    (chain to Org1's CA, not revoked)" in text
