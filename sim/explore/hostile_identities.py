"""Hypothesis strategies for hostile identities: members that are not, and why not.

Certificates that look like members of a channel's organisations but must be
refused: revoked (by the issuer's CRL, or because the root revoked their
intermediate CA), expired or not yet valid (themselves or their issuer), issued
by an intermediate the MSP does not list, carrying several NodeOU roles or none,
issued by an impostor CA whose name (and even key identifier) collides with a
trusted root, a CA certificate used as an identity, another org's certificate
under this MSP id, an unknown MSP id. Each comes with the exact reason a
correct MSP gives.

Key generation and signing are the slow part, so :func:`identity_pool` builds
every identity once per process (seeded, hence identical on every run) and the
strategies only choose among them. ``Org1``'s root CA issues directly;
``Org2``'s root issues through intermediates, one of which it has revoked, one
expired and one not yet valid. Envelopes built from these identities are in
:mod:`sim.explore.hostile`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from ledger.transaction import SerializedIdentity
from msp.certs import Authority, Validity
from msp.identity import SigningIdentity
from msp.keys import ECDSA_P256, KeySource
from msp.msp import MSP, MSPManager, at_virtual_ms

NOW_MS = 3_600_000
"""Virtual time at which identities are judged and hostile blocks are cut: 2024-01-01 01:00."""
NOW = at_virtual_ms(NOW_MS)

_PAST = Validity(datetime(2020, 1, 1, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC))
_FUTURE = Validity(datetime(2030, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
_ALWAYS = Validity()
_NO_ROLE = "certificate subject has no NodeOU role (client/peer/admin/orderer)"


@dataclass(frozen=True)
class HostileIdentity:
    """An identity a correct MSP must refuse, and the exact reason it must give."""

    kind: str
    signer: SigningIdentity
    """Holds the private key, so the identity can sign proposals and endorsements."""
    reason: str

    @property
    def serialized(self) -> SerializedIdentity:
        return SerializedIdentity(self.signer.mspid, self.signer.cert_pem)


@dataclass(frozen=True)
class OrgTrust:
    """What a channel trusts of one org: its CAs and CRLs."""

    mspid: str
    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]

    def msp(self) -> MSP:
        return MSP(self.mspid, self.roots, self.intermediates, self.crls)


@dataclass(frozen=True)
class IdentityPool:
    """The trusted orgs, their honest members, and every hostile identity."""

    orgs: tuple[OrgTrust, ...]
    honest: Mapping[str, SigningIdentity]
    """By certificate CN: two peers, an admin and a user of each org."""
    hostile: Mapping[str, HostileIdentity]
    """By kind."""

    def manager(self) -> MSPManager:
        """A fresh manager: no verdict cached by an earlier example carries over."""
        return MSPManager(org.msp() for org in self.orgs)

    def peer(self, mspid: str) -> SigningIdentity:
        return self.honest[f"peer0.{mspid.lower()}.example.com"]

    def user(self, mspid: str) -> SigningIdentity:
        return self.honest[f"User1@{mspid.lower()}.example.com"]


def issue(
    authority: Authority,
    subject: x509.Name,
    key_label: str,
    keys: KeySource,
    validity: Validity = _ALWAYS,
    *,
    ca: bool = False,
    authority_key_id: bytes | None = None,
) -> tuple[x509.Certificate, SigningIdentity | None]:
    """A certificate for any subject (several OUs, none, a CA's name) signed by ``authority``.

    ``msp.certs`` only issues well-formed member certificates; hostile ones need
    a free hand. ``authority_key_id`` forges the AKI extension (to claim a
    trusted CA issued it). Returns the certificate and, for end entities, an
    identity whose MSP id is the organisation named in ``subject``.
    """
    key = keys.key(ECDSA_P256, key_label)
    issuer_ski = authority.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = x509.AuthorityKeyIdentifier(authority_key_id or issuer_ski.value.digest, None, None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(keys.serial(key_label))
        .not_valid_before(validity.not_before)
        .not_valid_after(validity.not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(aki, False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True)
    )
    cert = builder.sign(authority.key, hashes.SHA256(), ecdsa_deterministic=True)
    return cert, None if ca else SigningIdentity(_mspid_of(subject), cert, key)


def _mspid_of(subject: x509.Name) -> str:
    org = subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    return str(org).split(".", 1)[0].capitalize()


def member_name(org: int, cn: str, units: Sequence[str]) -> x509.Name:
    """A cryptogen-style subject with any OUs (the NodeOU roles, or not)."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"org{org}.example.com")]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, u) for u in units]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


def _ca(
    parent: Authority | None, org: int, cn: str, keys: KeySource, validity: Validity
) -> Authority:
    domain = f"org{org}.example.com"
    key = keys.key(ECDSA_P256, cn)
    if parent is None:
        return Authority.root(key, domain, cn, keys.serial(cn), validity)
    return parent.intermediate(key, domain, cn, keys.serial(cn), validity)


def _enroll(
    issuer: Authority,
    org: int,
    cn: str,
    role: str,
    keys: KeySource,
    validity: Validity = _ALWAYS,
) -> SigningIdentity:
    key = keys.key(ECDSA_P256, cn)
    domain = f"org{org}.example.com"
    cert = issuer.enroll(key.public_key(), domain, cn, role, keys.serial(cn), validity)
    return SigningIdentity(f"Org{org}", cert, key)


def _unknown_ca(cert: x509.Certificate, mspid: str) -> str:
    return f"unknown CA: {cert.issuer.rfc4514_string()} is not a CA of MSP {mspid}"


@functools.cache
def identity_pool() -> IdentityPool:
    """Build the trusted orgs and every hostile identity once (seeded: same bytes every run)."""
    keys = KeySource(b"ledgersim/hostile")
    revoked_at = datetime(2023, 6, 1, tzinfo=UTC)
    root1 = _ca(None, 1, "ca.org1.example.com", keys, Validity())
    root2 = _ca(None, 2, "ca.org2.example.com", keys, Validity())
    ica2 = _ca(root2, 2, "ica.org2.example.com", keys, Validity())
    ica_revoked = _ca(root2, 2, "ica-revoked.org2.example.com", keys, Validity())
    ica_expired = _ca(root2, 2, "ica-expired.org2.example.com", keys, _PAST)
    ica_future = _ca(root2, 2, "ica-future.org2.example.com", keys, _FUTURE)
    ica_unlisted = _ca(root2, 2, "ica-unlisted.org2.example.com", keys, Validity())
    impostor = _ca(None, 1, "ca.org1.example.com", KeySource(b"impostor"), Validity())

    honest: dict[str, SigningIdentity] = {}
    for org, issuer in ((1, root1), (2, ica2)):
        for cn, role in (
            (f"peer0.org{org}.example.com", "peer"),
            (f"peer1.org{org}.example.com", "peer"),
            (f"Admin@org{org}.example.com", "admin"),
            (f"User1@org{org}.example.com", "client"),
        ):
            honest[cn] = _enroll(issuer, org, cn, role, keys)

    def hostile(kind: str, signer: SigningIdentity, reason: str) -> HostileIdentity:
        return HostileIdentity(kind, signer, reason)

    revoked1 = _enroll(root1, 1, "Revoked@org1.example.com", "client", keys)
    revoked2 = _enroll(ica2, 2, "Revoked@org2.example.com", "peer", keys)
    under_revoked = _enroll(ica_revoked, 2, "peer7.org2.example.com", "peer", keys)
    under_expired = _enroll(ica_expired, 2, "peer8.org2.example.com", "peer", keys)
    under_future = _enroll(ica_future, 2, "peer9.org2.example.com", "peer", keys)
    under_unlisted = _enroll(ica_unlisted, 2, "peer6.org2.example.com", "peer", keys)
    expired = _enroll(root1, 1, "Expired@org1.example.com", "client", keys, _PAST)
    future = _enroll(root1, 1, "Future@org1.example.com", "client", keys, _FUTURE)
    two_roles = issue(
        root1, member_name(1, "Two@org1.example.com", ("client", "admin")), "two", keys
    )
    three_roles = issue(
        ica2, member_name(2, "Three@org2.example.com", ("peer", "admin", "client")), "three", keys
    )
    no_role = issue(root1, member_name(1, "NoRole@org1.example.com", ()), "norole", keys)
    unknown_role = issue(
        ica2, member_name(2, "Auditor@org2.example.com", ("auditor",)), "aud", keys
    )
    impostor_user = _enroll(impostor, 1, "User1@org1.example.com", "client", KeySource(b"impostor"))
    forged_aki = issue(
        impostor,
        member_name(1, "Admin@org1.example.com", ("admin",)),
        "forged-aki",
        KeySource(b"impostor"),
        authority_key_id=_ski(root1.cert),
    )
    root_named_member = issue(
        impostor,
        impostor.cert.subject,
        "root-named",
        KeySource(b"impostor"),
        authority_key_id=_ski(root1.cert),
    )
    org2_peer = honest["peer0.org2.example.com"]

    crl1 = root1.revoke([revoked1.cert.serial_number], revoked_at)
    crl_root2 = root2.revoke([ica_revoked.cert.serial_number], revoked_at)
    crl_ica2 = ica2.revoke([revoked2.cert.serial_number], revoked_at)
    intermediates = (ica2.cert, ica_revoked.cert, ica_expired.cert, ica_future.cert)
    orgs = (
        OrgTrust("Org1", (root1.cert,), (), (crl1,)),
        OrgTrust("Org2", (root2.cert,), intermediates, (crl_root2, crl_ica2)),
    )

    def member(pair: tuple[x509.Certificate, SigningIdentity | None]) -> SigningIdentity:
        assert pair[1] is not None
        return pair[1]

    found = [
        hostile(
            "revoked",
            revoked1,
            f"certificate serial {revoked1.cert.serial_number:x} revoked by ca.org1.example.com",
        ),
        hostile(
            "revoked-by-intermediate",
            revoked2,
            f"certificate serial {revoked2.cert.serial_number:x} revoked by ica.org2.example.com",
        ),
        hostile(
            "issuer-revoked",
            under_revoked,
            f"intermediate CA serial {ica_revoked.cert.serial_number:x}"
            " revoked by ca.org2.example.com",
        ),
        hostile("expired", expired, "certificate expired (valid until 2023-01-01T00:00:00+00:00)"),
        hostile(
            "issuer-expired",
            under_expired,
            "certificate expired (valid until 2023-01-01T00:00:00+00:00)",
        ),
        hostile(
            "not-yet-valid", future, "certificate not yet valid (from 2030-01-01T00:00:00+00:00)"
        ),
        hostile(
            "issuer-not-yet-valid",
            under_future,
            "certificate not yet valid (from 2030-01-01T00:00:00+00:00)",
        ),
        hostile("issuer-unlisted", under_unlisted, _unknown_ca(under_unlisted.cert, "Org2")),
        hostile("two-roles", member(two_roles), _NO_ROLE),
        hostile("three-roles", member(three_roles), _NO_ROLE),
        hostile("no-role", member(no_role), _NO_ROLE),
        hostile("unknown-role", member(unknown_role), _NO_ROLE),
        hostile("impostor-ca", impostor_user, _unknown_ca(impostor_user.cert, "Org1")),
        hostile(
            "impostor-ca-forged-aki",
            member(forged_aki),
            "tampered certificate: signature by ca.org1.example.com does not verify",
        ),
        hostile(
            "named-like-root",
            member(root_named_member),
            "tampered certificate: signature by ca.org1.example.com does not verify",
        ),
        hostile(
            "ca-certificate",
            SigningIdentity("Org1", root1.cert, root1.key),
            "a CA certificate cannot be used as an identity",
        ),
        hostile(
            "other-org",
            SigningIdentity("Org1", org2_peer.cert, org2_peer.private_key),
            _unknown_ca(org2_peer.cert, "Org1"),
        ),
        hostile(
            "unknown-msp",
            SigningIdentity("Org9", org2_peer.cert, org2_peer.private_key),
            "unknown MSP 'Org9'",
        ),
    ]
    return IdentityPool(orgs, honest, {h.kind: h for h in found})


def _ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


HOSTILE_KINDS = (
    "revoked",
    "revoked-by-intermediate",
    "issuer-revoked",
    "expired",
    "issuer-expired",
    "not-yet-valid",
    "issuer-not-yet-valid",
    "issuer-unlisted",
    "two-roles",
    "three-roles",
    "no-role",
    "unknown-role",
    "impostor-ca",
    "impostor-ca-forged-aki",
    "named-like-root",
    "ca-certificate",
    "other-org",
    "unknown-msp",
)
"""Every kind in the pool; the order is the order Hypothesis shrinks towards."""


def hostile_identities(kinds: Sequence[str] = HOSTILE_KINDS) -> st.SearchStrategy[HostileIdentity]:
    """Identities a correct MSP refuses, each with its exact reason."""
    return st.sampled_from(kinds).map(lambda kind: identity_pool().hostile[kind])


def honest_members() -> st.SearchStrategy[SigningIdentity]:
    """Valid members of either org, of every role."""
    return st.sampled_from(sorted(identity_pool().honest)).map(
        lambda name: identity_pool().honest[name]
    )
