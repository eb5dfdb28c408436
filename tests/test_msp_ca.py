"""Generation and the cryptogen tree: openssl accepts it, a seed reproduces it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from msp import (
    MSP,
    NetworkCrypto,
    at_virtual_ms,
    generate_network,
    load_network,
    load_signing_identity,
    replica_peer_name,
)

NOW = at_virtual_ms(0)


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[NetworkCrypto, Path]:
    net = generate_network(2, 2, 2, seed=b"tree", admins=2)
    out = tmp_path_factory.mktemp("crypto")
    net.write(out)
    return net, out


def test_names_roles_and_replica_mapping() -> None:
    net = generate_network(2, 2, 1, seed=b"names", admins=2)
    assert net.identities()[:5] == [
        ("peer0.org1.example.com", "Org1", "peer"),
        ("peer1.org1.example.com", "Org1", "peer"),
        ("Admin@org1.example.com", "Org1", "admin"),
        ("Admin2@org1.example.com", "Org1", "admin"),
        ("User1@org1.example.com", "Org1", "client"),
    ]
    assert [net.peer_name(i) for i in range(4)] == [
        "peer0.org1.example.com",
        "peer0.org2.example.com",
        "peer1.org1.example.com",
        "peer1.org2.example.com",
    ]
    assert replica_peer_name(5, 3) == "peer1.org3.example.com"
    assert net.replica_signer(3).name == "peer1.org2.example.com"


def test_every_identity_verifies_with_openssl_and_has_its_subject(
    tree: tuple[NetworkCrypto, Path],
) -> None:
    net, out = tree
    for org in net.orgs:
        org_dir = out / "peerOrganizations" / org.domain
        ca = org_dir / "ca" / f"ca.{org.domain}-cert.pem"
        certs = sorted(org_dir.glob("*/*/msp/signcerts/*-cert.pem"))
        assert len(certs) == 6
        result = openssl("verify", "-CAfile", str(ca), *map(str, certs))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count(": OK") == 6
        for member in org.members:
            cert = org_dir / ("peers" if member.role == "peer" else "users")
            cert = cert / member.name / "msp" / "signcerts" / f"{member.name}-cert.pem"
            subject = openssl("x509", "-noout", "-subject", "-in", str(cert)).stdout
            assert f"O = {org.domain}" in subject
            assert f"OU = {member.role}" in subject
            assert f"CN = {member.name}" in subject


def test_openssl_rejects_a_certificate_from_another_org(tree: tuple[NetworkCrypto, Path]) -> None:
    _, out = tree
    orgs = out / "peerOrganizations"
    ca1 = orgs / "org1.example.com" / "ca" / "ca.org1.example.com-cert.pem"
    foreign = next((orgs / "org2.example.com" / "users").glob("User1*/msp/signcerts/*.pem"))
    assert openssl("verify", "-CAfile", str(ca1), str(foreign)).returncode != 0


def test_tree_layout_modes_and_round_trip(tree: tuple[NetworkCrypto, Path]) -> None:
    net, out = tree
    org_dir = out / "peerOrganizations" / "org1.example.com"
    for sub in ("cacerts", "admincerts", "crls"):
        assert (org_dir / "msp" / sub).is_dir()
    assert b"Enable: true" in (org_dir / "msp" / "config.yaml").read_bytes()
    peer_msp = org_dir / "peers" / "peer0.org1.example.com" / "msp"
    for sub in ("cacerts", "signcerts", "keystore"):
        assert any((peer_msp / sub).iterdir())
    keys = list(out.rglob("keystore/*")) + list(out.rglob("ca/*_sk"))
    assert len(keys) == 2 * (6 + 1)
    assert all(k.stat().st_mode & 0o777 == 0o600 for k in keys)

    loaded = load_network(out)
    assert loaded.identities() == net.identities()
    assert [m.cert_pem for m in loaded.members()] == [m.cert_pem for m in net.members()]
    signer = load_signing_identity(peer_msp)
    assert signer.mspid == "Org1" and signer.role == "peer"
    assert signer.sign(b"x") == net.signer("peer0.org1.example.com").sign(b"x")
    assert MSP.load(org_dir / "msp").validate(signer, NOW).ok


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = generate_network(2, 1, 1, seed=b"s1")
    b = generate_network(2, 1, 1, seed=b"s1")
    c = generate_network(2, 1, 1, seed=b"s2")
    a.write(tmp_path / "a")
    b.write(tmp_path / "b")
    c.write(tmp_path / "c")
    files_a = all_files(tmp_path / "a")
    assert files_a == all_files(tmp_path / "b")
    files_c = all_files(tmp_path / "c")
    assert files_a.keys() == files_c.keys()
    assert all(files_a[k] != files_c[k] for k in files_a if k.endswith((".pem", "_sk")))
    sa, sb = a.signer("User1@org2.example.com"), b.signer("User1@org2.example.com")
    assert sa.sign(b"payload") == sb.sign(b"payload") == sa.sign(b"payload")


def test_unseeded_generation_is_fresh() -> None:
    a = generate_network(1, 1, 0)
    b = generate_network(1, 1, 0)
    assert (
        a.signer("peer0.org1.example.com").cert_pem != b.signer("peer0.org1.example.com").cert_pem
    )
    assert a.msps().validate(a.signer("Admin@org1.example.com"), NOW).ok


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ed25519"])
def test_intermediate_ca_chain_openssl_and_msp(tmp_path: Path, algorithm: str) -> None:
    net = generate_network(1, 1, 1, algorithm=algorithm, seed=b"ica", intermediate=True)
    net.write(tmp_path)
    org_dir = tmp_path / "peerOrganizations" / "org1.example.com"
    ca, ica = (
        org_dir / "ca" / "ca.org1.example.com-cert.pem",
        org_dir / "ca" / "ica.org1.example.com-cert.pem",
    )
    leaf = (
        org_dir
        / "users"
        / "User1@org1.example.com"
        / "msp"
        / "signcerts"
        / "User1@org1.example.com-cert.pem"
    )
    assert openssl("verify", "-CAfile", str(ca), str(leaf)).returncode != 0
    ok = openssl("verify", "-CAfile", str(ca), "-untrusted", str(ica), str(leaf))
    assert ok.returncode == 0, ok.stderr
    loaded = load_network(tmp_path)
    assert loaded.orgs[0].intermediate is not None
    user = loaded.signer("User1@org1.example.com")
    assert MSP.load(org_dir / "msp").validate(user, NOW).ok
    without_ica = MSP("Org1", [loaded.orgs[0].root.cert])
    assert "unknown CA" in without_ica.validate(user, NOW).reason
