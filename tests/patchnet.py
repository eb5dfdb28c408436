"""A simulated network driven through the CLI, for the ``ledgersim patch`` tests.

Every call is ``ledgersim ...`` in-process, with its exit status, its output
(parsed when it is JSON) and its standard error, so a test reads like the
commands a person would type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sim.cli.main import main

ADMIN1, ADMIN2 = "Admin@org1.example.com", "Admin@org2.example.com"
USER1, USER2 = "User1@org1.example.com", "User1@org2.example.com"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    try:
        return status, json.loads(captured.out), captured.err
    except ValueError:
        return status, captured.out, captured.err


class SimNet:
    """``net init --sim`` in a temporary directory, then ``patch`` commands over it."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str], *init: str) -> None:
        self.dir = tmp_path / "net"
        self.tmp = tmp_path
        self.capsys = capsys
        status, _, err = run(capsys, "net", "init", "--sim", str(self.dir), *init)
        assert status == 0, err

    @property
    def orgs(self) -> Path:
        return self.dir / "crypto" / "peerOrganizations"

    def cli(self, *argv: str) -> tuple[int, Any, str]:
        return run(self.capsys, *argv)

    def patch(self, action: str, user: str, *argv: str) -> tuple[int, Any, str]:
        """``ledgersim patch ACTION --network DIR --as USER --json ARGV...``."""
        return self.cli("patch", action, "--network", str(self.dir), "--as", user, "--json", *argv)

    def file(self, content: bytes, name: str = "fix.patch") -> Path:
        path = self.tmp / name
        path.write_bytes(content)
        return path

    def upload(self, user: str, name: str, version: str, content: bytes, *argv: str) -> Any:
        path = self.file(content, f"{name}-{version}.patch")
        return self.patch(
            "upload", user, "--file", str(path), "--name", name, "--version", version, *argv
        )

    def release(self, name: str, version: str, content: bytes, *argv: str) -> None:
        """Upload by Admin@org1 and approve by Admin@org2: a 2-of-n release."""
        status, _, err = self.upload(ADMIN1, name, version, content, *argv)
        assert status == 0, err
        status, reply, err = self.patch("approve", ADMIN2, name, version)
        assert (status, reply["status"]) == (0, "released"), err

    def revoke(self, user: str) -> None:
        """``ledgersim crypto revoke`` of a member's certificate, as an operator would."""
        domain = user.split("@", 1)[1]
        org = self.orgs / domain
        kind = "peers" if user.startswith("peer") else "users"
        certs = list((org / kind / user / "msp" / "signcerts").glob("*.pem"))
        assert len(certs) == 1, certs
        ca = str(org / "ca")
        status, _, err = self.cli("crypto", "revoke", "--ca", ca, "--cert", str(certs[0]))
        assert status == 0, err
