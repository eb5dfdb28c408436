"""Hypothesis strategies for hostile identities and hostile transaction envelopes.

A permissioned ledger is only as good as what its validators refuse, so these
generators produce what an attacker (or a careless client) would submit:
identities that look like members but are not (revoked, expired, issued by a
revoked or expired intermediate, with several or no NodeOU roles, issued by an
impostor CA whose name collides with a trusted one, presented under another
organisation's MSP id) and envelopes built from them or tampered with
(endorsements replayed from another transaction, signed by the wrong org,
duplicated, truncated or reordered). Every draw comes with the exact verdict a
correct peer must reach: the MSP's rejection reason for an identity, the
validation code for each envelope.

Key generation and signing are the slow part, so :func:`identity_pool` builds
every identity once per process (seeded, hence identical on every run) and the
strategies only choose among them.

The channel (:class:`HostileChannel`) has two organisations: ``Org1`` whose root
CA issues directly, and ``Org2`` whose root issues through intermediates, one of
which it has revoked and one of which has expired. Chaincode ``kv`` is deployed
with ``AND('Org1.member','Org2.member')``; nothing else is.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from ledger.block import ValidationCode
from ledger.codec import encode
from ledger.transaction import (
    STATUS_ERROR,
    STATUS_OK,
    Endorsement,
    Envelope,
    KVRead,
    KVWrite,
    ProposalResult,
    RangeRead,
    Response,
    RWSet,
    SerializedIdentity,
    TxHeader,
    TxPayload,
    Version,
    compute_tx_id,
    proposal_hash,
)
from ledger.validator import ChannelConfig
from msp.certs import Authority, Validity
from msp.identity import SigningIdentity
from msp.keys import ECDSA_P256, KeySource
from msp.msp import MSP, MSPManager, at_virtual_ms
from msp.policy import parse as parse_policy

V = ValidationCode

CHANNEL = "hostile"
CHAINCODE = "kv"
POLICY = "AND('Org1.member','Org2.member')"
NOW_MS = 3_600_000
"""Virtual time of every hostile block: 2024-01-01 01:00 UTC."""
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


# --------------------------------------------------------------------- envelopes


@dataclass(frozen=True)
class HostileChannel:
    """Builds transactions for the hostile channel out of the pool's identities.

    Endorsements are signed with the peers' keys directly rather than by running
    an endorser: the validator must not trust that an endorser checked anything,
    so the envelopes here are what colluding or careless endorsers could sign.
    """

    pool: IdentityPool

    def config(self) -> ChannelConfig:
        """A fresh configuration (fresh MSP and policy caches) for one example."""
        return ChannelConfig(CHANNEL, self.pool.manager(), {CHAINCODE: parse_policy(POLICY)})

    def header(
        self,
        creator: SerializedIdentity,
        label: str,
        *,
        chaincode: str = CHAINCODE,
        channel: str = CHANNEL,
        key: str = "k",
    ) -> TxHeader:
        nonce = hashlib.sha256(b"ledgersim/hostile/nonce/" + label.encode()).digest()[:24]
        tx_id = compute_tx_id(nonce, creator)
        return TxHeader(tx_id, channel, chaincode, "put", (key, label), NOW_MS, creator, nonce)

    def result(
        self,
        header: TxHeader,
        *,
        status: int = STATUS_OK,
        namespace: str = CHAINCODE,
        reads: tuple[KVRead, ...] = (),
        range_reads: tuple[RangeRead, ...] = (),
        writes: tuple[KVWrite, ...] | None = None,
    ) -> ProposalResult:
        """What ``kv.put`` on an empty ledger gives, or a variant of it."""
        key, value = header.args
        if writes is None:
            writes = (KVWrite(key, value.encode(), False),)
        rwset = RWSet(namespace, reads, range_reads, writes)
        return ProposalResult(proposal_hash(header), rwset, Response(status, "", b"", None))

    @staticmethod
    def endorse(result: ProposalResult, *signers: SigningIdentity) -> tuple[Endorsement, ...]:
        signed = encode(result)
        return tuple(
            Endorsement(SerializedIdentity(s.mspid, s.cert_pem), s.sign(signed)) for s in signers
        )

    @staticmethod
    def seal(
        header: TxHeader,
        result: ProposalResult,
        endorsements: Sequence[Endorsement],
        signer: SigningIdentity,
    ) -> bytes:
        payload = encode(TxPayload(header, result, tuple(endorsements)))
        return encode(Envelope(payload, signer.sign(payload)))

    def honest_tx(self, label: str, key: str) -> tuple[TxHeader, ProposalResult, bytes]:
        """A transaction every check passes: header, result and envelope."""
        user = self.pool.user("Org1")
        header = self.header(serialized(user), label, key=key)
        result = self.result(header)
        endorsements = self.endorse(result, self.pool.peer("Org1"), self.pool.peer("Org2"))
        return header, result, self.seal(header, result, endorsements, user)


def serialized(signer: SigningIdentity) -> SerializedIdentity:
    """The creator or endorser field naming ``signer``."""
    return SerializedIdentity(signer.mspid, signer.cert_pem)


@dataclass(frozen=True)
class HostileTx:
    """One data item of a hostile block, the code it must get, and its tx id ("" if none)."""

    kind: str
    item: bytes
    expected: ValidationCode
    tx_id: str
    writes: tuple[str, ...] = ()
    """Keys it writes if valid."""


Builder = Callable[[HostileChannel, str, HostileIdentity], HostileTx]


def _tampered(
    kind: str,
    expected: ValidationCode,
    endorse: Callable[[HostileChannel, ProposalResult, ProposalResult], tuple[Endorsement, ...]],
) -> Builder:
    """A transaction whose endorsements are built by ``endorse`` from its own and a decoy result."""

    def build(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
        user = channel.pool.user("Org1")
        header = channel.header(serialized(user), label, key=label)
        result = channel.result(header)
        decoy = channel.result(channel.header(serialized(user), label + "/decoy", key=label))
        item = channel.seal(header, result, endorse(channel, result, decoy), user)
        return HostileTx(kind, item, expected, header.tx_id)

    return build


def _peers(channel: HostileChannel, *mspids: str) -> tuple[SigningIdentity, ...]:
    return tuple(channel.pool.peer(m) for m in mspids)


def _variant(
    kind: str,
    expected: ValidationCode,
    change: Callable[[HostileChannel, TxHeader], tuple[TxHeader, ProposalResult]],
) -> Builder:
    """A transaction whose header or result ``change`` alters, then endorsed and signed honestly."""

    def build(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
        user = channel.pool.user("Org1")
        header, result = change(channel, channel.header(serialized(user), label, key=label))
        endorsements = channel.endorse(result, *_peers(channel, "Org1", "Org2"))
        item = channel.seal(header, result, endorsements, user)
        return HostileTx(kind, item, expected, header.tx_id)

    return build


def _honest(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
    header, _result, item = channel.honest_tx(label, label)
    return HostileTx("honest", item, V.VALID, header.tx_id, (label,))


def _reordered(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
    user = channel.pool.user("Org1")
    header = channel.header(serialized(user), label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, *_peers(channel, "Org2", "Org1"))
    item = channel.seal(header, result, endorsements, user)
    return HostileTx("reordered-endorsements", item, V.VALID, header.tx_id, (label,))


def _with_hostile_extra(channel: HostileChannel, label: str, hostile: HostileIdentity) -> HostileTx:
    """Enough honest endorsements plus a hostile one: the bad one is ignored, not fatal."""
    user = channel.pool.user("Org1")
    header = channel.header(serialized(user), label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, *_peers(channel, "Org1", "Org2"), hostile.signer)
    item = channel.seal(header, result, endorsements, user)
    return HostileTx("extra-hostile-endorsement", item, V.VALID, header.tx_id, (label,))


def _hostile_endorser(channel: HostileChannel, label: str, hostile: HostileIdentity) -> HostileTx:
    """The endorsement of the hostile identity's claimed org comes from that identity.

    Were the MSP to accept it, the policy would be met: only its refusal makes
    this ENDORSEMENT_POLICY_FAILURE.
    """
    claimed = hostile.signer.mspid
    other = "Org2" if claimed == "Org1" else "Org1"
    user = channel.pool.user("Org1")
    header = channel.header(serialized(user), label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, hostile.signer, channel.pool.peer(other))
    item = channel.seal(header, result, endorsements, user)
    return HostileTx("hostile-endorser", item, V.ENDORSEMENT_POLICY_FAILURE, header.tx_id)


def _hostile_creator(channel: HostileChannel, label: str, hostile: HostileIdentity) -> HostileTx:
    header = channel.header(hostile.serialized, label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, *_peers(channel, "Org1", "Org2"))
    item = channel.seal(header, result, endorsements, hostile.signer)
    return HostileTx("hostile-creator", item, V.BAD_CREATOR_SIGNATURE, header.tx_id)


def _signed_by_other(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
    user = channel.pool.user("Org1")
    header = channel.header(serialized(user), label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, *_peers(channel, "Org1", "Org2"))
    item = channel.seal(header, result, endorsements, channel.pool.user("Org2"))
    return HostileTx("creator-signature-by-another", item, V.BAD_CREATOR_SIGNATURE, header.tx_id)


def _truncated_envelope(
    channel: HostileChannel, label: str, _hostile: HostileIdentity
) -> HostileTx:
    _header, _result, item = channel.honest_tx(label, label)
    return HostileTx("truncated-envelope", item[: len(item) // 2], V.BAD_PAYLOAD, "")


def _stale_read(channel: HostileChannel, header: TxHeader) -> tuple[TxHeader, ProposalResult]:
    return header, channel.result(header, reads=(KVRead(header.args[0], Version(9, 0)),))


def _phantom(channel: HostileChannel, header: TxHeader) -> tuple[TxHeader, ProposalResult]:
    seen = RangeRead("zz", "", True, (KVRead("zz-ghost", Version(1, 0)),))
    return header, channel.result(header, range_reads=(seen,))


def _relabel(endorsement: Endorsement, mspid: str) -> Endorsement:
    return Endorsement(replace(endorsement.endorser, mspid=mspid), endorsement.signature)


BUILDERS: dict[str, Builder] = {
    "honest": _honest,
    "reordered-endorsements": _reordered,
    "extra-hostile-endorsement": _with_hostile_extra,
    "hostile-endorser": _hostile_endorser,
    "hostile-creator": _hostile_creator,
    "creator-signature-by-another": _signed_by_other,
    "truncated-envelope": _truncated_envelope,
    "replayed-endorsements": _tampered(
        "replayed-endorsements",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, _own, decoy: c.endorse(decoy, *_peers(c, "Org1", "Org2")),
    ),
    "one-replayed-endorsement": _tampered(
        "one-replayed-endorsement",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, decoy: (
            c.endorse(own, c.pool.peer("Org1")) + c.endorse(decoy, c.pool.peer("Org2"))
        ),
    ),
    "same-org-endorsers": _tampered(
        "same-org-endorsers",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: c.endorse(
            own, c.pool.peer("Org1"), c.pool.honest["peer1.org1.example.com"]
        ),
    ),
    "relabelled-endorser": _tampered(
        "relabelled-endorser",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: (
            *c.endorse(own, c.pool.peer("Org1")),
            _relabel(c.endorse(own, c.pool.honest["peer1.org1.example.com"])[0], "Org2"),
        ),
    ),
    "duplicated-endorsement": _tampered(
        "duplicated-endorsement",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: c.endorse(own, c.pool.peer("Org1")) * 2,
    ),
    "truncated-endorsements": _tampered(
        "truncated-endorsements",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: c.endorse(own, *_peers(c, "Org1", "Org2"))[:1],
    ),
    "truncated-signature": _tampered(
        "truncated-signature",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: (
            *c.endorse(own, c.pool.peer("Org1")),
            *(
                Endorsement(e.endorser, e.signature[:-1])
                for e in c.endorse(own, c.pool.peer("Org2"))
            ),
        ),
    ),
    "replayed-result": _variant(
        "replayed-result",
        V.INVALID_ENDORSER_TRANSACTION,
        lambda c, h: (h, c.result(replace(h, args=(h.args[0], "other")))),
    ),
    "foreign-namespace": _variant(
        "foreign-namespace",
        V.INVALID_ENDORSER_TRANSACTION,
        lambda c, h: (h, c.result(h, namespace="other")),
    ),
    "foreign-channel": _variant(
        "foreign-channel",
        V.TARGET_CHAIN_NOT_FOUND,
        lambda c, h: (replace(h, channel="elsewhere"), c.result(replace(h, channel="elsewhere"))),
    ),
    "forged-tx-id": _variant(
        "forged-tx-id",
        V.BAD_PROPOSAL_TXID,
        lambda c, h: (replace(h, tx_id="f" * 64), c.result(replace(h, tx_id="f" * 64))),
    ),
    "empty-tx-id": _variant(
        "empty-tx-id",
        V.BAD_COMMON_HEADER,
        lambda c, h: (replace(h, tx_id=""), c.result(replace(h, tx_id=""))),
    ),
    "undeployed-chaincode": _variant(
        "undeployed-chaincode",
        V.INVALID_CHAINCODEID,
        lambda c, h: (
            replace(h, chaincode="nope"),
            c.result(replace(h, chaincode="nope"), namespace="nope"),
        ),
    ),
    "duplicate-writes": _variant(
        "duplicate-writes",
        V.BAD_RWSET,
        lambda c, h: (h, c.result(h, writes=(KVWrite(h.args[0], b"1", False),) * 2)),
    ),
    "delete-with-value": _variant(
        "delete-with-value",
        V.BAD_RWSET,
        lambda c, h: (h, c.result(h, writes=(KVWrite(h.args[0], b"1", True),))),
    ),
    "failed-response": _variant(
        "failed-response",
        V.BAD_RESPONSE_PAYLOAD,
        lambda c, h: (h, c.result(h, status=STATUS_ERROR)),
    ),
    "stale-read": _variant("stale-read", V.MVCC_READ_CONFLICT, _stale_read),
    "phantom-range": _variant("phantom-range", V.PHANTOM_READ_CONFLICT, _phantom),
}
"""Every kind of hostile transaction, built from a label (unique in its block)."""

ENVELOPE_KINDS = tuple(BUILDERS)


@dataclass(frozen=True)
class HostileBlock:
    """A block's data items and the code each must get, in order."""

    txs: tuple[HostileTx, ...]

    @property
    def items(self) -> tuple[bytes, ...]:
        return tuple(tx.item for tx in self.txs)

    @property
    def expected(self) -> tuple[ValidationCode, ...]:
        return tuple(tx.expected for tx in self.txs)


@st.composite
def hostile_txs(
    draw: st.DrawFn,
    kinds: Sequence[str] = ENVELOPE_KINDS,
    identities: Sequence[str] = HOSTILE_KINDS,
    label: str = "tx",
) -> HostileTx:
    """One hostile (or honest) transaction with the code it must get alone in a block."""
    kind = draw(st.sampled_from(kinds))
    hostile = draw(hostile_identities(identities))
    return BUILDERS[kind](HostileChannel(identity_pool()), label, hostile)


@st.composite
def hostile_blocks(
    draw: st.DrawFn,
    kinds: Sequence[str] = ENVELOPE_KINDS,
    identities: Sequence[str] = HOSTILE_KINDS,
    max_size: int = 6,
) -> HostileBlock:
    """Blocks mixing hostile and honest transactions, some submitted twice.

    Each transaction writes its own key, so the only interaction between them
    is the one the block is about: a later copy of an envelope is a
    ``DUPLICATE_TXID`` exactly when the first copy's tx id was established
    (it got past the creator and tx-id checks); otherwise the copy fails as the
    original did.
    """
    size = draw(st.integers(1, max_size))
    txs = [draw(hostile_txs(kinds, identities, label=f"t{i}")) for i in range(size)]
    copies = draw(st.lists(st.integers(0, size - 1), max_size=2))
    for index in copies:
        txs.append(txs[index])
    order = draw(st.permutations(range(len(txs))))
    return block_of([txs[i] for i in order])


ESTABLISHING = frozenset(
    {
        V.VALID,
        V.INVALID_CHAINCODEID,
        V.INVALID_ENDORSER_TRANSACTION,
        V.BAD_RWSET,
        V.BAD_RESPONSE_PAYLOAD,
        V.ENDORSEMENT_POLICY_FAILURE,
        V.MVCC_READ_CONFLICT,
        V.PHANTOM_READ_CONFLICT,
    }
)
"""Codes after which a tx id counts as used (Fabric indexes these transactions' ids).

Stated here on its own, not imported from the validator, so a validator that
got its own set wrong is caught by comparison.
"""


def block_of(txs: Sequence[HostileTx]) -> HostileBlock:
    """A block of ``txs`` in this order, expected codes adjusted for repeated tx ids."""
    return HostileBlock(tuple(_with_duplicates(txs)))


def _with_duplicates(txs: Sequence[HostileTx]) -> list[HostileTx]:
    """Expected codes once repeated tx ids are taken into account, in block order."""
    used: set[str] = set()
    out = []
    for tx in txs:
        if tx.tx_id and tx.tx_id in used and tx.expected in ESTABLISHING:
            tx = replace(tx, expected=V.DUPLICATE_TXID, writes=())
        elif tx.expected in ESTABLISHING:
            used.add(tx.tx_id)
        out.append(tx)
    return out


def resubmitted(block: HostileBlock) -> HostileBlock:
    """The same items in a later block: what each must get the second time."""
    return HostileBlock(
        tuple(
            replace(tx, expected=V.DUPLICATE_TXID, writes=())
            if tx.expected in ESTABLISHING or tx.expected is V.DUPLICATE_TXID
            else tx
            for tx in block.txs
        )
    )
