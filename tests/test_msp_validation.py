"""MSP validation: each way an identity can be bad is rejected, with its reason."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from msp import (
    FIXED_NOT_AFTER,
    MSP,
    Identity,
    KeySource,
    MSPError,
    Validity,
    at_virtual_ms,
    generate_network,
    load_network,
    revoke,
)

NOW = at_virtual_ms(60_000)
NET = generate_network(2, 1, 1, seed=b"validation", admins=2)
USER = NET.signer("User1@org1.example.com")


def test_valid_members_of_every_role_pass() -> None:
    manager = NET.msps()
    for member in NET.members():
        assert manager.validate(member, NOW).ok
        assert manager.validate(member, NOW, role=member.role).ok
        assert manager.validate(member, NOW, role="member").ok


def test_foreign_ca_with_the_same_names_is_unknown() -> None:
    other = generate_network(2, 1, 1, seed=b"someone else")
    impostor = other.signer("User1@org1.example.com")
    assert impostor.cert.issuer == USER.cert.issuer
    verdict = NET.msps().validate(impostor, NOW)
    assert not verdict.ok and "unknown CA" in verdict.reason


def test_other_orgs_certificate_under_this_mspid_is_unknown() -> None:
    org2_cert = NET.signer("User1@org2.example.com").cert
    verdict = NET.msps().validate(Identity("Org1", org2_cert), NOW)
    assert not verdict.ok and "unknown CA" in verdict.reason


def _tampered(identity: Identity, old: bytes, new: bytes) -> Identity:
    der = identity.cert.public_bytes(serialization.Encoding.DER)
    assert der.count(old) == 1
    return Identity(identity.mspid, x509.load_der_x509_certificate(der.replace(old, new)))


def test_tampered_subject_or_role_breaks_the_ca_signature() -> None:
    for old, new in ((b"User1@", b"User9@"), (b"client", b"admin\x00"[:6])):
        forged = _tampered(USER, old, new)
        verdict = NET.msps().validate(forged, NOW)
        assert not verdict.ok and "tampered" in verdict.reason, verdict


def test_expired_and_not_yet_valid() -> None:
    org = NET.org("Org1")
    short = org.enroll(
        "Temp@org1.example.com",
        "client",
        KeySource(b"short-lived"),
        Validity(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)),
    )
    msp = org.msp()
    assert msp.validate(short, datetime(2024, 1, 1, 12, tzinfo=UTC)).ok
    expired = msp.validate(short, datetime(2024, 1, 3, tzinfo=UTC))
    assert not expired.ok and "expired" in expired.reason
    early = msp.validate(short, datetime(2023, 12, 31, tzinfo=UTC))
    assert not early.ok and "not yet valid" in early.reason
    late = msp.validate(USER, FIXED_NOT_AFTER.replace(year=2121))
    assert not late.ok and "expired" in late.reason


def test_wrong_role_and_missing_role() -> None:
    manager = NET.msps()
    verdict = manager.validate(USER, NOW, role="admin")
    assert not verdict.ok and verdict.reason == "role is client, expected admin"
    org = NET.org("Org1")
    keys = KeySource(b"no role")
    key = keys.key("ecdsa-p256", "x")
    cert = org.issuer.enroll(
        key.public_key(), org.domain, "Odd@org1.example.com", "auditor", 7, Validity()
    )
    odd = Identity("Org1", cert)
    assert odd.role == ""
    verdict = manager.validate(odd, NOW)
    assert not verdict.ok and "no NodeOU role" in verdict.reason
    with pytest.raises(MSPError):
        manager.validate(USER, NOW, role="superuser")


def test_ca_certificate_and_wrong_msp_are_rejected() -> None:
    root = NET.org("Org1").root.cert
    verdict = NET.msps().validate(Identity("Org1", root), NOW)
    assert not verdict.ok and "CA certificate" in verdict.reason
    assert "unknown MSP" in NET.msps().validate(Identity("Org9", USER.cert), NOW).reason
    assert "presented to MSP" in NET.org("Org2").msp().validate(USER, NOW).reason


def test_in_memory_revocation_hits_only_the_revoked() -> None:
    org = NET.org("Org1").revoking(USER, when=NOW)
    net = NET.replace_org(org)
    verdict = net.msps().validate(USER, NOW)
    assert not verdict.ok and "revoked" in verdict.reason
    assert net.msps().validate(NET.signer("Admin@org1.example.com"), NOW).ok
    again = org.revoking(NET.signer("Admin2@org1.example.com"), when=NOW)
    assert len(again.crls) == 1 and len(list(again.crls[0])) == 2


def test_revoke_on_disk_msp_and_openssl_agree(tmp_path: Path) -> None:
    NET.write(tmp_path)
    org_dir = tmp_path / "peerOrganizations" / "org1.example.com"
    cert = org_dir / "users" / "User1@org1.example.com" / "msp" / "signcerts"
    cert = cert / "User1@org1.example.com-cert.pem"
    revoke(org_dir / "ca", cert, NOW)
    revoke(org_dir / "ca", cert, NOW)  # idempotent
    crls = list((org_dir / "msp" / "crls").iterdir())
    assert len(crls) == 1 and (org_dir / "ca" / crls[0].name).is_file()
    assert len(list(x509.load_pem_x509_crl(crls[0].read_bytes()))) == 1
    msp = MSP.load(org_dir / "msp")
    assert "revoked" in msp.validate(USER, NOW).reason
    assert msp.validate(NET.signer("Admin@org1.example.com"), NOW).ok
    assert "revoked" in load_network(tmp_path).msps().validate(USER, NOW).reason
    ca = org_dir / "ca" / "ca.org1.example.com-cert.pem"
    check = ["openssl", "verify", "-crl_check", "-CRLfile", str(crls[0]), "-CAfile", str(ca)]
    result = subprocess.run([*check, str(cert)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "revoked" in result.stdout + result.stderr


def test_revoke_through_intermediate_and_bad_inputs(tmp_path: Path) -> None:
    net = generate_network(1, 1, 1, seed=b"ica-crl", intermediate=True)
    net.write(tmp_path)
    org_dir = tmp_path / "peerOrganizations" / "org1.example.com"
    cert = next(org_dir.glob("peers/*/msp/signcerts/*.pem"))
    crl = revoke(org_dir / "ca", cert)
    assert "ica." in crl.issuer.rfc4514_string()
    peer = net.signer("peer0.org1.example.com")
    assert "revoked" in MSP.load(org_dir / "msp").validate(peer, NOW).reason
    with pytest.raises(MSPError, match="no such certificate"):
        revoke(org_dir / "ca", org_dir / "nope.pem")
    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(NET.signer("User1@org2.example.com").cert_pem)
    with pytest.raises(MSPError, match="not issued by a CA"):
        revoke(org_dir / "ca", foreign)
    with pytest.raises(MSPError):
        revoke(tmp_path / "missing", foreign)


def test_crl_signed_by_a_stranger_is_refused(tmp_path: Path) -> None:
    stranger = generate_network(1, 1, 1, seed=b"stranger").org("Org1")
    bogus = stranger.root.revoke([USER.cert.serial_number], NOW)
    with pytest.raises(MSPError, match="CRL"):
        MSP("Org1", [NET.org("Org1").root.cert], crls=[bogus])


def test_manager_identity_is_cached_and_refuses_garbage() -> None:
    manager = NET.msps()
    first = manager.identity("Org1", USER.cert_pem)
    assert manager.identity("Org1", USER.cert_pem) is first
    assert first == USER and hash(first) == hash(USER)
    assert manager.identity("Org1", USER.cert_pem.decode()) == USER
    for garbage in (b"", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        with pytest.raises(MSPError):
            manager.identity("Org1", garbage)
    with pytest.raises(MSPError):
        manager.identity("Nope", USER.cert_pem)


@settings(max_examples=150, deadline=None)
@given(
    mspid=st.sampled_from(["Org1", "Org2", "", "Org1\x00"]),
    cert=st.one_of(
        st.binary(max_size=300),
        st.just(USER.cert_pem),
        st.binary(max_size=40).map(lambda b: USER.cert_pem[:200] + b + USER.cert_pem[240:]),
    ),
    data=st.binary(max_size=64),
    signature=st.binary(max_size=80),
)
def test_authenticate_never_raises_on_peer_input(
    mspid: str, cert: bytes, data: bytes, signature: bytes
) -> None:
    verdict = NET.msps().authenticate(mspid, cert, data, signature, NOW)
    assert isinstance(verdict.reason, str) and verdict.reason
    assert not verdict.ok


def test_authenticate_accepts_a_real_signature_only() -> None:
    manager = NET.msps()
    sig = USER.sign(b"tx")
    assert manager.authenticate("Org1", USER.cert_pem, b"tx", sig, NOW).ok
    assert manager.authenticate("Org1", USER.cert_pem, b"tx", sig, NOW, role="client").ok
    assert not manager.authenticate("Org1", USER.cert_pem, b"tX", sig, NOW).ok
    assert not manager.authenticate("Org1", USER.cert_pem, b"tx", sig, NOW, role="peer").ok
    assert not manager.authenticate("Org2", USER.cert_pem, b"tx", sig, NOW).ok


def test_malformed_extension_is_a_verdict_not_an_exception() -> None:
    org = NET.org("Org1")
    key = KeySource(b"dup-ext").key("ecdsa-p256", "dup")
    cert = org.issuer.enroll(
        key.public_key(), org.domain, "Dup@org1.example.com", "client", 9, Validity()
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    # rename the KeyUsage OID (2.5.29.15) to SubjectKeyIdentifier's (2.5.29.14): a duplicate
    forged = der.replace(b"\x06\x03\x55\x1d\x0f", b"\x06\x03\x55\x1d\x0e")
    assert forged != der
    identity = Identity("Org1", x509.load_der_x509_certificate(forged))
    verdict = NET.msps().validate(identity, NOW)
    assert not verdict.ok and "malformed" in verdict.reason
