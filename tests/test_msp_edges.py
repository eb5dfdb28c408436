"""MSP edges the mutation run found untested: trust-anchor checks, long chains, local misuse.

An MSP refuses, with a message naming the culprit, a root that is not a
self-signed CA and an intermediate that is not a CA of its own; a chain longer
than the MSP follows is refused rather than walked forever; identities compare
by MSP id *and* certificate; the local-misuse errors say what was wrong.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from msp.ca import NetworkCrypto, generate_network
from msp.certs import Authority, Validity
from msp.errors import MSPError
from msp.identity import Identity, SigningIdentity, parse_certificate
from msp.keys import ECDSA_P256, KeySource
from msp.msp import MAX_CHAIN, MSP, at_virtual_ms

NOW = at_virtual_ms(0)


@functools.cache
def net() -> NetworkCrypto:
    return generate_network(2, 2, 1, seed=b"msp-edges", intermediate=True)


def subject(identity: Identity | Authority) -> str:
    return identity.cert.subject.rfc4514_string()


def test_msp_needs_roots_that_are_self_signed_cas() -> None:
    org = net().org("Org1")
    assert org.intermediate is not None
    with pytest.raises(MSPError) as none:
        MSP("Org1", [])
    assert str(none.value) == "MSP Org1: no root CA certificate"
    member = org.members[0]
    for not_root in (org.intermediate.cert, member.cert):
        with pytest.raises(MSPError) as bad:
            MSP("Org1", [not_root])
        name = not_root.subject.rfc4514_string()
        assert str(bad.value) == f"MSP Org1: root {name} is not a self-signed CA"


def test_intermediates_must_be_cas_of_this_msp() -> None:
    org, other = net().org("Org1"), net().org("Org2")
    assert other.intermediate is not None
    for stranger in (org.members[0].cert, other.intermediate.cert):
        with pytest.raises(MSPError) as bad:
            MSP("Org1", [org.root.cert], [stranger])
        assert str(bad.value) == (
            f"MSP Org1: intermediate {stranger.subject.rfc4514_string()}"
            " is not a CA issued by this MSP"
        )


def test_crl_of_a_stranger_names_its_issuer() -> None:
    other = net().org("Org2")
    crl = other.root.revoke([1], NOW)
    with pytest.raises(MSPError) as bad:
        MSP("Org1", [net().org("Org1").root.cert], crls=[crl])
    assert str(bad.value) == f"MSP Org1: CRL of {subject(other.root)} is not signed by its CAs"


def test_unknown_role_is_local_misuse() -> None:
    member = net().org("Org1").members[0]
    with pytest.raises(MSPError) as bad:
        net().msps().validate(member, NOW, role="auditor")
    assert str(bad.value) == (
        "unknown role 'auditor': expected member or one of client, peer, admin, orderer"
    )


def chain_of(length: int) -> tuple[MSP, SigningIdentity]:
    """A root, ``length`` intermediates each issued by the one before, and a member."""
    keys = KeySource(b"long chain")
    domain = "org1.example.com"
    issuer = Authority.root(keys.key(ECDSA_P256, "root"), domain, "root", 1, Validity())
    root, intermediates = issuer, []
    for level in range(length):
        name = f"ica{level}"
        issuer = issuer.intermediate(
            keys.key(ECDSA_P256, name), domain, name, 2 + level, Validity()
        )
        intermediates.append(issuer.cert)
    key = keys.key(ECDSA_P256, "member")
    cert = issuer.enroll(key.public_key(), domain, "User@org1", "client", 99, Validity())
    return MSP("Org1", [root.cert], intermediates), SigningIdentity("Org1", cert, key)


def test_chain_longer_than_the_msp_follows_is_refused() -> None:
    """MAX_CHAIN issuers are followed; one more intermediate and the chain is refused."""
    msp, member = chain_of(MAX_CHAIN - 1)
    assert msp.validate(member, NOW).ok
    msp, member = chain_of(MAX_CHAIN)
    verdict = msp.validate(member, NOW)
    assert (verdict.ok, verdict.reason) == (False, "certificate chain too long")


def test_identities_are_equal_only_with_the_same_msp_id_and_certificate() -> None:
    first, second = net().org("Org1").members[:2]
    assert Identity("Org1", first.cert) == first.public()
    assert Identity("Org1", first.cert) != Identity("Org1", second.cert)
    assert Identity("Org1", first.cert) != Identity("Org2", first.cert)
    assert len({first.public(), second.public(), Identity("Org2", first.cert)}) == 3


def test_public_identity_keeps_its_msp_id_and_reads_plainly() -> None:
    member = net().org("Org2").members[0]
    public = member.public()
    assert (public.mspid, public.cert) == ("Org2", member.cert)
    assert repr(public) == f"Identity('Org2', {member.name!r}, role={member.role!r})"
    assert repr(member) == f"SigningIdentity('Org2', {member.name!r}, role={member.role!r})"


def test_parse_certificate_takes_pem_text_or_bytes_only() -> None:
    member = net().org("Org1").members[0]
    assert parse_certificate(member.cert_pem.decode()) == member.cert
    with pytest.raises(MSPError) as wrong_type:
        parse_certificate(12)  # type: ignore[arg-type]
    assert str(wrong_type.value) == "certificate must be PEM bytes, got int"
    with pytest.raises(MSPError) as garbage:
        parse_certificate(b"junk")
    assert str(garbage.value).startswith("not a PEM certificate: ")


def test_manager_refuses_wrong_types_with_one_message() -> None:
    member = net().org("Org1").members[0]
    for mspid, pem in ((3, member.cert_pem), ("Org1", 3)):
        with pytest.raises(MSPError) as bad:
            net().msps().identity(mspid, pem)  # type: ignore[arg-type]
        assert str(bad.value) == "mspid must be str and cert_pem bytes"


def test_signing_identity_refuses_a_key_of_another_certificate() -> None:
    first, second = net().org("Org1").members[:2]
    with pytest.raises(MSPError) as bad:
        SigningIdentity("Org1", first.cert, second.private_key)
    assert str(bad.value) == f"private key does not match the certificate of {first.name!r}"


def test_validity_bounds_are_inclusive() -> None:
    """Valid at exactly not_before and exactly not_after; a microsecond outside, not."""
    org = net().org("Org1")
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    member = org.enroll("Edge@org1.example.com", "client", KeySource(b"edge"), Validity(start, end))
    msp = org.msp()
    assert msp.validate(member, start).ok and msp.validate(member, end).ok
    early = msp.validate(member, start - timedelta(microseconds=1))
    late = msp.validate(member, end + timedelta(microseconds=1))
    assert early.reason == "certificate not yet valid (from 2024-01-01T00:00:00+00:00)"
    assert late.reason == "certificate expired (valid until 2024-01-02T00:00:00+00:00)"


def test_malformed_certificate_is_refused_by_a_fresh_msp() -> None:
    """A duplicated extension, first seen by this MSP (nothing cached): a verdict with the
    reason, not an exception."""
    org = net().org("Org1")
    key = KeySource(b"dup-ext-fresh").key(ECDSA_P256, "dup")
    cert = org.issuer.enroll(
        key.public_key(), org.domain, "Dup@org1.example.com", "client", 11, Validity()
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    key_usage, subject_key_id = b"\x06\x03\x55\x1d\x0f", b"\x06\x03\x55\x1d\x0e"
    forged = x509.load_der_x509_certificate(der.replace(key_usage, subject_key_id))
    verdict = org.msp().validate(Identity("Org1", forged), NOW)
    assert not verdict.ok and verdict.reason.startswith("malformed certificate: ")


def test_unusable_and_unsupported_public_keys_are_refused() -> None:
    member = net().org("Org1").members[0]
    der = member.cert.public_bytes(serialization.Encoding.DER)
    p256, unknown = bytes.fromhex("06082A8648CE3D030107"), bytes.fromhex("06082A8648CE3D03017F")
    with pytest.raises(MSPError) as unusable:
        Identity("Org1", x509.load_der_x509_certificate(der.replace(p256, unknown)))
    assert str(unusable.value).startswith("unusable public key: ")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa")])
    rsa_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.public_key())
        .serial_number(5)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2030, 1, 1, tzinfo=UTC))
        .sign(rsa_key, hashes.SHA256())
    )
    with pytest.raises(MSPError) as unsupported:
        Identity("Org1", rsa_cert)
    assert str(unsupported.value) == "unsupported public key type RSAPublicKey"


def test_check_of_non_bytes_says_so() -> None:
    member = net().org("Org1").members[0]
    signature = member.sign(b"data")
    for data, sig in (("data", signature), (b"data", signature.hex())):
        verdict = member.check(data, sig)  # type: ignore[arg-type]
        assert (verdict.ok, verdict.reason) == (False, "data and signature must be bytes")
    assert member.check(b"data", signature).ok
