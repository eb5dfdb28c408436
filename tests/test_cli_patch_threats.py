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
from patchnet import ADMIN1, ADMIN2, SimNet

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
