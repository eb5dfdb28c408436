"""The client's check of a ``metadata`` answer: trust anchors, and the answer fits the request.

A peer answers the query, so the device re-checks it with its own CA
certificates and CRLs and against what it asked for. Each test changes one
thing a lying peer or a rogue CA could and shows ``check_release`` refuses it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chaincode.patchset import PatchSetContract, manifest_from_json, manifest_to_json, sign_manifest
from chaincode.shim import Creator
from chaincode.testing import ContractHarness
from msp.ca import NetworkCrypto, generate_network
from msp.msp import MSPManager
from sim.fabric.blobs import sha256_hex
from sim.fabric.distribution import FileRef, ReleaseRejected, ReleaseRequest, check_release

PAYLOAD = b"tzdata 2024.1\n" * 100
ADMIN1, ADMIN2, USER = "Admin@org1.example.com", "Admin@org2.example.com", "User1@org1.example.com"
CHANNEL = generate_network(2, 1, 1, seed=b"release-check")
ROGUE = generate_network(2, 1, 1, seed=b"someone else's CA")
"""Same organisation and member names as CHANNEL, under CAs the channel never trusted."""


def released(crypto: NetworkCrypto, version: str = "2024.1") -> dict[str, Any]:
    """A genuine ``metadata`` answer, signed and approved by ``crypto``'s administrators."""

    def who(name: str) -> Creator:
        s = crypto.signer(name)
        return Creator(s.mspid, s.role, s.name, s.cert_pem)

    m = manifest_from_json(
        {
            "name": "tzdata",
            "version": version,
            "file": {"name": "tzdata.patch", "sha256": sha256_hex(PAYLOAD), "size": len(PAYLOAD)},
            "policy": {"install": "mandatory", "log": "write", "reboot": "unrebooting"},
        }
    )
    h = ContractHarness(PatchSetContract())
    h.invoke(
        who(ADMIN1),
        "upload",
        json.dumps(manifest_to_json(m)),
        sign_manifest(crypto.signer(ADMIN1), m),
    )
    h.invoke(who(ADMIN2), "approve", "tzdata", version)
    h.invoke(who(USER), "register", '{"os": "debian-12"}')
    return dict(json.loads(h.invoke(who(USER), "metadata", "tzdata")))


@pytest.fixture(scope="module")
def release() -> dict[str, Any]:
    return released(CHANNEL)


def test_a_genuine_release_is_accepted(release: dict[str, Any]) -> None:
    ref = check_release(release, ReleaseRequest("tzdata"), CHANNEL.msps())
    assert ref == FileRef(sha256_hex(PAYLOAD), len(PAYLOAD))
    assert check_release(release, ReleaseRequest("tzdata", "2024.1.0"), CHANNEL.msps()) == ref


def test_a_release_signed_under_another_ca_is_refused() -> None:
    """Self-consistent (digest, signature, certificate) but not chained to the channel's CAs."""
    forged = released(ROGUE)
    with pytest.raises(ReleaseRejected, match="deployer certificate is not trusted: unknown CA"):
        check_release(forged, ReleaseRequest("tzdata"), CHANNEL.msps())


def test_a_release_by_a_revoked_deployer_is_refused(release: dict[str, Any]) -> None:
    org = CHANNEL.org("Org1").revoking(
        CHANNEL.signer(ADMIN1), when=datetime(2025, 1, 1, tzinfo=UTC)
    )
    msps = MSPManager(o.msp() for o in CHANNEL.replace_org(org).orgs)
    with pytest.raises(ReleaseRejected, match=r"not trusted: certificate serial \w+ revoked"):
        check_release(release, ReleaseRequest("tzdata"), msps)


@pytest.mark.parametrize(
    ("request_", "change", "reason"),
    [
        (ReleaseRequest("zlib"), {}, "asked for zlib, the answer is about tzdata"),
        (ReleaseRequest("tzdata", "2023.9"), {}, "asked for tzdata 2023.9, the answer is"),
        (
            ReleaseRequest("tzdata"),
            {"head": {"current": "2025.1", "top": "2025.1"}},
            "not the current",
        ),
        (ReleaseRequest("tzdata"), {"released_ms": None}, "is not a release"),
        (ReleaseRequest("tzdata"), {"status": "withdrawn"}, "is not a release"),
        (ReleaseRequest("tzdata"), {"expires_ms": 0}, "expired at 0"),
        (ReleaseRequest("tzdata", installed="2024.2"), {}, "older than the installed 2024.2"),
        (ReleaseRequest("tzdata"), {"installed": "2025.1"}, "older than the installed 2025.1"),
    ],
)
def test_an_answer_that_does_not_fit_the_request_is_refused(
    release: dict[str, Any], request_: ReleaseRequest, change: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ReleaseRejected, match=reason):
        check_release({**release, **change}, request_, CHANNEL.msps())
