"""X.509 issuance: root and intermediate CAs, enrollment certificates, CRLs.

Subjects follow cryptogen (C/ST/L, O = organisation domain, CN = name) plus
the NodeOU role in OU. Every signature an authority makes here is
deterministic (RFC 6979 ECDSA or Ed25519), and validity dates are inputs, so a
seeded network is byte-identical from run to run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import overload

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from msp.errors import MSPError
from msp.keys import PrivateKey, PublicKey, same_public_key

FIXED_NOT_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
FIXED_NOT_AFTER = datetime(2120, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Validity:
    not_before: datetime = FIXED_NOT_BEFORE
    not_after: datetime = FIXED_NOT_AFTER

    def __post_init__(self) -> None:
        if self.not_after <= self.not_before:
            raise MSPError(f"validity ends ({self.not_after}) before it starts ({self.not_before})")


def _name(domain: str, common_name: str, role: str | None) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, domain),
    ]
    if role is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Signing only; a CA may also sign certificates and CRLs (cryptogen's choice)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True, slots=True)
class Authority:
    """A CA certificate with its private key: something that can issue and revoke."""

    cert: x509.Certificate
    key: PrivateKey

    def __post_init__(self) -> None:
        if not same_public_key(self.cert.public_key(), self.key.public_key()):  # type: ignore[arg-type]
            subject = self.cert.subject.rfc4514_string()
            raise MSPError(f"CA key does not match certificate {subject}")

    @classmethod
    def root(
        cls, key: PrivateKey, domain: str, common_name: str, serial: int, validity: Validity
    ) -> Authority:
        name = _name(domain, common_name, None)
        builder = _builder(name, name, key.public_key(), serial, validity)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        builder = builder.add_extension(_key_usage(ca=True), True)
        return cls(_signed(builder, key), key)

    def intermediate(
        self, key: PrivateKey, domain: str, common_name: str, serial: int, validity: Validity
    ) -> Authority:
        builder = self._issued(_name(domain, common_name, None), key.public_key(), serial, validity)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        builder = builder.add_extension(_key_usage(ca=True), True)
        return Authority(self._sign(builder), key)

    def enroll(
        self,
        public_key: PublicKey,
        domain: str,
        common_name: str,
        role: str,
        serial: int,
        validity: Validity,
        dns_names: Sequence[str] = (),
    ) -> x509.Certificate:
        """An end-entity certificate for ``common_name`` with NodeOU ``role``."""
        builder = self._issued(_name(domain, common_name, role), public_key, serial, validity)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        builder = builder.add_extension(_key_usage(ca=False), True)
        if dns_names:
            san = x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names])
            builder = builder.add_extension(san, False)
        return self._sign(builder)

    def revoke(
        self,
        serials: Iterable[int],
        when: datetime,
        previous: x509.CertificateRevocationList | None = None,
    ) -> x509.CertificateRevocationList:
        """This CA's CRL listing ``previous``'s entries plus ``serials`` revoked at ``when``.

        ``when`` is also the CRL's last update (never earlier than the previous
        one's); the next update is the CA's expiry, as nothing here reissues CRLs.
        """
        entries = {e.serial_number: e.revocation_date_utc for e in previous or ()}
        for serial in serials:
            entries.setdefault(serial, when)
        last_update = max(when, previous.last_update_utc) if previous is not None else when
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(last_update)
            .next_update(self.cert.not_valid_after_utc)
            .add_extension(self._authority_key_id(), False)
        )
        for serial, revoked_at in sorted(entries.items()):
            entry = x509.RevokedCertificateBuilder().serial_number(serial)
            builder = builder.add_revoked_certificate(entry.revocation_date(revoked_at).build())
        return _signed(builder, self.key)

    def _authority_key_id(self) -> x509.AuthorityKeyIdentifier:
        ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)

    def _issued(
        self, subject: x509.Name, public_key: PublicKey, serial: int, validity: Validity
    ) -> x509.CertificateBuilder:
        builder = _builder(subject, self.cert.subject, public_key, serial, validity)
        return builder.add_extension(self._authority_key_id(), False)

    def _sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return _signed(builder, self.key)


@overload
def _signed(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate: ...
@overload
def _signed(
    builder: x509.CertificateRevocationListBuilder, key: PrivateKey
) -> x509.CertificateRevocationList: ...
def _signed(
    builder: x509.CertificateBuilder | x509.CertificateRevocationListBuilder, key: PrivateKey
) -> x509.Certificate | x509.CertificateRevocationList:
    """Sign deterministically: Ed25519 always is; ECDSA uses RFC 6979 nonces."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return builder.sign(key, None)
    return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    serial: int,
    validity: Validity,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )


def subject_attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def common_name(cert: x509.Certificate) -> str:
    names = subject_attribute(cert, NameOID.COMMON_NAME)
    return names[0] if names else cert.subject.rfc4514_string()


def organization(cert: x509.Certificate) -> str | None:
    orgs = subject_attribute(cert, NameOID.ORGANIZATION_NAME)
    return orgs[0] if orgs else None


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``cert`` (names match and the signature verifies)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def authority_key_id(obj: x509.Certificate | x509.CertificateRevocationList) -> bytes | None:
    try:
        aki = obj.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return aki.key_identifier
