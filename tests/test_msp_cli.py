"""``ledgersim crypto generate`` / ``revoke``, driven through their own parser.

The parser is built from ``sim.cli.crypto.register`` alone so these tests do
not depend on the other sub-commands being importable.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from msp import MSP, at_virtual_ms, load_network
from sim.cli import crypto as cli_crypto
from sim.errors import InputError


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ledgersim")
    cli_crypto.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_generate_json_and_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ("crypto", "generate", "--orgs", "2", "--peers", "1", "--users", "1", "--admins", "2")
    assert run(*common, "--seed", "7", "--out", str(tmp_path / "a"), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    roles = sorted({(i["mspid"], i["role"]) for i in summary["identities"]})
    assert roles == [(o, r) for o in ("Org1", "Org2") for r in ("admin", "client", "peer")]
    assert len(summary["identities"]) == 2 * (1 + 2 + 1)
    assert run(*common, "--seed", "7", "--out", str(tmp_path / "b")) == 0
    assert "wrote 8 identities" in capsys.readouterr().out
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert run(*common, "--out", str(tmp_path / "c")) == 0
    assert files(tmp_path / "c") != files(tmp_path / "a")
    assert load_network(tmp_path / "c").identities() == load_network(tmp_path / "a").identities()


def test_revoke_updates_the_org_crl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("crypto", "generate", "--orgs", "1", "--seed", "r", "--out", str(tmp_path)) == 0
    org_dir = tmp_path / "peerOrganizations" / "org1.example.com"
    cert = next(org_dir.glob("users/User1@*/msp/signcerts/*.pem"))
    capsys.readouterr()
    assert run("crypto", "revoke", "--ca", str(org_dir / "ca"), "--cert", str(cert), "--json") == 0
    assert len(json.loads(capsys.readouterr().out)["revoked"]) == 1
    user = load_network(tmp_path).signer("User1@org1.example.com")
    assert "revoked" in MSP.load(org_dir / "msp").validate(user, at_virtual_ms(0)).reason


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["generate", "--orgs", "0"], "--orgs: expected an integer >= 1, got 0"),
        (["generate", "--peers", "-1"], "--peers"),
        (["revoke", "--ca", "{tmp}/none", "--cert", "{tmp}/x.pem"], "no such CA directory"),
        (["revoke", "--ca", "{tmp}", "--cert", "{tmp}/x.pem"], "no such certificate"),
    ],
)
def test_bad_input_is_one_line_input_error(tmp_path: Path, argv: list[str], words: str) -> None:
    if argv[0] == "generate":
        argv = [*argv, "--out", str(tmp_path / "out")]
    with pytest.raises(InputError) as caught:
        run("crypto", *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_out_must_be_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        run("crypto", "generate", "--out", str(target))
