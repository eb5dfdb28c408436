"""Release proofs: ``ledgersim patch proof`` on a sim network, ``patch verify-proof`` offline.

One network releases ``zlib 1.3`` (2-of-n) and a device takes a proof of
it; every test then edits a copy of that proof file the way an attacker
could, or the trust material the way an operator would (a revoked peer), and
shows ``verify-proof`` refuses it with one line and exit status 1, using
nothing but the organisations' ``msp/`` directories (CA certificates, CRLs).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from patchnet import ADMIN1, ADMIN2, USER1, run

from ledger.block import Block, ValidationCode
from ledger.codec import decode, encode
from pbft.api import quorum_size
from pbft.messages import Commit
from sim.cli.main import main
from sim.fabric.proof import ProofRejected, verify_proof
from sim.fabric.verify import Trust

FIX = b"zlib fix\n" * 64


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A released patch, a proof of it, and a device's trust: the orgs' msp/ dirs only."""
    root = tmp_path_factory.mktemp("proof")
    net, fix, proof = root / "net", root / "fix.patch", root / "proof.json"
    fix.write_bytes(FIX)
    common = ["--network", str(net)]
    upload = ["--file", str(fix), "--name", "zlib", "--version", "1.3"]
    for argv in (
        ["net", "init", "--sim", str(net)],
        ["patch", "upload", *common, "--as", ADMIN1, *upload],
        ["patch", "approve", "zlib", "1.3", *common, "--as", ADMIN2],
        ["patch", "register", *common, "--as", USER1, "--os", "debian"],
        ["patch", "proof", "zlib", *common, "--as", USER1, "--out", str(proof)],
        ["net", "init", "--sim", str(root / "other"), "--seed", "99"],
    ):
        assert main(argv) == 0, argv
    device = root / "device-msp" / "peerOrganizations"
    for org in (net / "crypto" / "peerOrganizations").iterdir():
        shutil.copytree(org / "msp", device / org.name / "msp")
    return {"root": root, "net": net, "proof": proof, "device": device}


def verify(
    capsys: pytest.CaptureFixture[str], proof: Path, msp: Path, *more: str
) -> tuple[int, Any, str]:
    return run(capsys, "patch", "verify-proof", str(proof), "--msp", str(msp), *more)


def edited(world: dict[str, Path], change: Any, name: str = "edited.json") -> Path:
    """A copy of the proof file with ``change(proof)`` applied."""
    proof = json.loads(world["proof"].read_text())
    change(proof)
    path = world["root"] / name
    path.write_text(json.dumps(proof))
    return path


def with_block(proof: dict[str, Any], change: Any) -> None:
    proof["block"] = encode(change(decode(bytes.fromhex(proof["block"]), Block))).hex()


def refused(result: tuple[int, Any, str], reason: str) -> None:
    status, _, err = result
    assert status == 1 and err.count("\n") == 1 and reason in err, err


def test_a_proof_verifies_with_only_the_ca_certificates_and_crls(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert sorted(p.name for p in (world["device"] / "org1.example.com").iterdir()) == ["msp"]
    status, got, _ = verify(capsys, world["proof"], world["device"], "--json")
    assert status == 0
    assert (got["name"], got["version"], got["sha256"]) == (
        "zlib",
        "1.3",
        json.loads(world["proof"].read_text())["release"]["manifest"]["file"]["sha256"],
    )


def test_a_changed_manifest_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    def other_file(proof: dict[str, Any]) -> None:
        proof["release"]["manifest"]["file"]["sha256"] = "0" * 64

    refused(verify(capsys, edited(world, other_file), world["device"]), "not the one the block")

    def inside_the_block(proof: dict[str, Any]) -> None:
        raw = bytearray(bytes.fromhex(proof["block"]))
        at = raw.find(b"zlib")
        raw[at : at + 4] = b"zlic"
        proof["block"] = raw.hex()

    refused(verify(capsys, edited(world, inside_the_block), world["device"]), "data_hash")


def keep_commits(count: int) -> Any:
    def change(block: Block) -> Block:
        meta = replace(block.metadata, certificate=block.metadata.certificate[:count])
        return replace(block, metadata=meta)

    return lambda proof: with_block(proof, change)


def test_a_commit_certificate_below_the_quorum_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    q = quorum_size(4)  # ceil((n + f + 1) / 2) = 3 of 4
    assert verify(capsys, edited(world, keep_commits(q)), world["device"])[0] == 0
    refused(
        verify(capsys, edited(world, keep_commits(q - 1)), world["device"]),
        f"valid signatures from {q - 1} distinct replica(s), need a quorum of {q}",
    )
    # n is the device's knowledge, not the proof's: a larger channel needs more COMMITs.
    refused(
        verify(capsys, world["proof"], world["device"], "--replicas", "7"), "need a quorum of 5"
    )


def signers(proof: dict[str, Any]) -> list[int]:
    block = decode(bytes.fromhex(proof["block"]), Block)
    return sorted(decode(raw, Commit).replica for raw in block.metadata.certificate)


def test_a_commit_signed_by_a_revoked_peer_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    replica = signers(json.loads(world["proof"].read_text()))[0]
    peer = ["peer0.org1", "peer0.org2", "peer1.org1", "peer1.org2"][replica] + ".example.com"
    org = world["root"] / "revoked" / "peerOrganizations" / peer.split(".", 1)[1]
    shutil.copytree(world["net"] / "crypto", world["root"] / "revoked")
    cert = next((org / "peers" / peer / "msp" / "signcerts").glob("*.pem"))
    assert run(capsys, "crypto", "revoke", "--ca", str(org / "ca"), "--cert", str(cert))[0] == 0
    refused(
        verify(capsys, world["proof"], world["root"] / "revoked"),
        f"commit signer of replica {replica} is not trusted: certificate serial",
    )


def test_a_commit_signer_from_another_ca_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = world["root"] / "other" / "crypto" / "peerOrganizations"
    cert = next((foreign / "org1.example.com" / "peers").glob("peer0*/msp/signcerts/*.pem"))

    def swap(proof: dict[str, Any]) -> None:
        proof["commit_signers"]["0"] = {"mspid": "Org1", "cert_pem": cert.read_text()}

    refused(
        verify(capsys, edited(world, swap), world["device"]),
        "commit signer of replica 0 is not trusted: unknown CA",
    )

    # Leaving certificates out instead only loses those COMMITs: below Q, refused.
    present = signers(json.loads(world["proof"].read_text()))
    unused = present[: len(present) - quorum_size(4) + 1]

    def drop(proof: dict[str, Any]) -> None:
        for replica in unused:
            del proof["commit_signers"][str(replica)]

    refused(verify(capsys, edited(world, drop), world["device"]), "need a quorum of 3")


def test_a_proof_about_another_request_or_transaction_is_refused(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    def other_name(proof: dict[str, Any]) -> None:
        proof["request"]["name"] = "openssl"

    refused(verify(capsys, edited(world, other_name), world["device"]), "asked metadata")
    refused(
        verify(capsys, edited(world, lambda p: p.update(tx_index=1)), world["device"]),
        "has no transaction 1",
    )
    refused(verify(capsys, world["proof"], world["device"], "--installed", "1.4"), "older than")


def test_a_stale_answer_is_refused_by_its_block_time(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, got, _ = verify(capsys, world["proof"], world["device"], "--json")
    assert status == 0
    dated = got["dated_ms"]
    bound = ["--max-age-ms", "60000"]
    assert (
        verify(capsys, world["proof"], world["device"], "--now-ms", str(dated + 60_000), *bound)[0]
        == 0
    )
    refused(
        verify(capsys, world["proof"], world["device"], "--now-ms", str(dated + 60_001), *bound),
        "the bound is 60000 ms: refusing a stale or frozen answer",
    )


def test_download_takes_the_release_from_a_fresh_verified_proof(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--network", str(world["net"]), "--as", USER1]
    status, _, err = run(capsys, "patch", "download", "zlib", *common, "--max-age-ms", "0")
    assert status == 2 and "refusing a stale or frozen answer" in err
    status, got, _ = run(
        capsys, "patch", "download", "zlib", *common, "--max-age-ms", "60000", "--json"
    )
    assert status == 0 and got["manifest"]["version"] == "1.3"


def test_the_devices_channel_settings_are_checked_not_trusted(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """n < 4 would make the quorum vanish: a proof with no COMMIT at all must not pass."""
    empty = edited(world, keep_commits(0))
    refused(verify(capsys, empty, world["device"]), "need a quorum of 3")
    status, _, err = verify(capsys, empty, world["device"], "--replicas", "0")
    assert status == 2 and "--replicas: expected at least 4, got 0" in err
    status, _, err = verify(capsys, world["proof"], world["device"], "--policy", "AND(")
    assert status == 2 and err.startswith("ledgersim: error: --policy:") and err.count("\n") == 1


def test_any_flipped_byte_of_the_block_is_refused_never_a_crash(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Header, data, metadata (codes, certificate): every edit ends in ProofRejected."""
    proof = json.loads(world["proof"].read_text())
    raw = bytes.fromhex(proof["block"])
    msps = Trust.load(world["device"]).msps
    for at in range(0, len(raw), max(1, len(raw) // 97)):
        flipped = bytearray(raw)
        flipped[at] ^= 0x01
        with pytest.raises(ProofRejected):
            verify_proof({**proof, "block": bytes(flipped).hex()}, msps, replicas=4)
    block = decode(raw, Block)
    conflict = replace(block.metadata, validation_codes=(ValidationCode.MVCC_READ_CONFLICT,))
    with pytest.raises(ProofRejected, match="is marked MVCC_READ_CONFLICT, not VALID"):
        verify_proof(
            {**proof, "block": encode(replace(block, metadata=conflict)).hex()}, msps, replicas=4
        )
