"""Membership service providers: which certificates count as members of an organisation.

An identity is valid for an MSP when its certificate chains, through the
MSP's intermediate CAs, to one of its root CAs; every certificate on the chain
is within its validity period at the ``now`` the caller passes (ledger or
virtual time: the MSP reads no clock); none is revoked by a CRL its issuer
signed; it is an end-entity certificate; and its subject OU names a NodeOU
role. The expensive, time-independent part (signature checks up the chain,
CRL look-ups) is computed once per certificate and cached: validation is on
the hot path of every transaction.

NodeOUs are always on: ``config.yaml`` is written for Fabric's own tools, but
the role is read from the OU directly rather than by parsing YAML (the MSP may
import nothing beyond ``cryptography`` and the standard library).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from msp.certs import authority_key_id, common_name, is_ca, issued_by, key_id, organization
from msp.errors import ACCEPTED, MSPError, Verdict, rejected
from msp.identity import Identity
from msp.names import ROLES, mspid_from_domain

_SHA256 = hashes.SHA256()
MAX_CHAIN = 8
IDENTITY_CACHE_SIZE = 65536

SIM_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""Virtual time 0 of a simulation, as a date: certificates are checked against it."""


@functools.lru_cache(maxsize=64)
def at_virtual_ms(ms: int) -> datetime:
    """The date a simulation's virtual clock reading ``ms`` stands for.

    Remembered for a few readings: a block's validation asks for its timestamp's
    date once per signer of every transaction.
    """
    return SIM_EPOCH + timedelta(milliseconds=ms)


def _utc(now: datetime) -> datetime:
    if not isinstance(now, datetime):
        raise TypeError(f"now must be a datetime, got {type(now).__name__}")
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Chain:
    """What validation learnt about one certificate that does not depend on time."""

    problem: str | None
    not_before: datetime
    not_after: datetime


def read_pem_certificates(directory: Path, pattern: str = "*") -> list[x509.Certificate]:
    """Every certificate in the files of ``directory`` matching ``pattern``."""
    if not directory.is_dir():
        return []
    certs = []
    for path in sorted(directory.glob(pattern)):
        if path.is_file():
            try:
                certs.extend(x509.load_pem_x509_certificates(path.read_bytes()))
            except ValueError as exc:
                raise MSPError(f"{path}: not a PEM certificate ({exc})") from None
    return certs


def read_crls(directory: Path) -> list[x509.CertificateRevocationList]:
    if not directory.is_dir():
        return []
    crls = []
    for path in sorted(directory.iterdir()):
        if path.is_file():
            data = path.read_bytes()
            try:
                crl = (
                    x509.load_pem_x509_crl(data)
                    if data.lstrip().startswith(b"-----")
                    else x509.load_der_x509_crl(data)
                )
            except ValueError as exc:
                raise MSPError(f"{path}: not a CRL ({exc})") from None
            crls.append(crl)
    return crls


class MSP:
    """One organisation's trust anchors: roots, intermediates and CRLs."""

    def __init__(
        self,
        mspid: str,
        roots: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate] = (),
        crls: Sequence[x509.CertificateRevocationList] = (),
    ) -> None:
        if not roots:
            raise MSPError(f"MSP {mspid}: no root CA certificate")
        for cert in roots:
            if not is_ca(cert) or not issued_by(cert, cert):
                subject = cert.subject.rfc4514_string()
                raise MSPError(f"MSP {mspid}: root {subject} is not a self-signed CA")
        self.mspid = mspid
        self.roots = tuple(roots)
        self.intermediates = tuple(intermediates)
        self._revoked: dict[bytes, set[int]] = {}
        self._chains: dict[bytes, _Chain] = {}
        for cert in self.intermediates:
            if not is_ca(cert) or self._issuer_of(cert) is None:
                raise MSPError(
                    f"MSP {mspid}: intermediate {cert.subject.rfc4514_string()} "
                    "is not a CA issued by this MSP"
                )
        for crl in crls:
            self.add_crl(crl)

    @classmethod
    def load(cls, msp_dir: str | Path, mspid: str | None = None) -> MSP:
        """Read ``cacerts/``, ``intermediatecerts/`` and ``crls/`` of an MSP directory.

        Without ``mspid``, it is derived from the root CA's organisation
        (``org1.example.com`` -> ``Org1``), the cryptogen convention.
        """
        root_dir = Path(msp_dir)
        if not root_dir.is_dir():
            raise MSPError(f"{root_dir}: no such MSP directory")
        roots = read_pem_certificates(root_dir / "cacerts")
        if not roots:
            raise MSPError(f"{root_dir / 'cacerts'}: no CA certificate")
        if mspid is None:
            mspid = mspid_from_subject(roots[0])
        return cls(
            mspid,
            roots,
            read_pem_certificates(root_dir / "intermediatecerts"),
            read_crls(root_dir / "crls"),
        )

    @property
    def authorities(self) -> tuple[x509.Certificate, ...]:
        return self.roots + self.intermediates

    def add_crl(self, crl: x509.CertificateRevocationList) -> None:
        """Trust ``crl`` if one of this MSP's CAs signed it; forget cached verdicts."""
        issuer = next(
            (
                ca
                for ca in self.authorities
                if ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
            ),
            None,
        )
        if issuer is None:
            issuer_name = crl.issuer.rfc4514_string()
            raise MSPError(f"MSP {self.mspid}: CRL of {issuer_name} is not signed by its CAs")
        serials = self._revoked.setdefault(issuer.fingerprint(_SHA256), set())
        serials.update(entry.serial_number for entry in crl)
        self._chains.clear()

    def identity(self, cert_pem: bytes | str) -> Identity:
        return Identity.from_pem(self.mspid, cert_pem)

    def validate(self, identity: Identity, now: datetime, role: str | None = None) -> Verdict:
        """Whether ``identity`` is a valid member at ``now`` (with ``role``, if given)."""
        when = _utc(now)
        if role is not None and role != "member" and role not in ROLES:
            raise MSPError(f"unknown role {role!r}: expected member or one of {', '.join(ROLES)}")
        if identity.mspid != self.mspid:
            return rejected(f"identity of {identity.mspid} presented to MSP {self.mspid}")
        chain = self._chains.get(identity.fingerprint)
        if chain is None:
            try:
                chain = self._walk(identity.cert)
            except (ValueError, x509.DuplicateExtension) as exc:  # extensions parse lazily
                epoch = identity.cert.not_valid_before_utc
                chain = _Chain(f"malformed certificate: {exc}", epoch, epoch)
            if len(self._chains) >= IDENTITY_CACHE_SIZE:
                self._chains.clear()
            self._chains[identity.fingerprint] = chain
        if chain.problem is not None:
            return rejected(chain.problem)
        if when < chain.not_before:
            return rejected(f"certificate not yet valid (from {chain.not_before.isoformat()})")
        if when > chain.not_after:
            return rejected(f"certificate expired (valid until {chain.not_after.isoformat()})")
        if not identity.role:
            return rejected(f"certificate subject has no NodeOU role ({'/'.join(ROLES)})")
        if role not in (None, "member") and identity.role != role:
            return rejected(f"role is {identity.role}, expected {role}")
        return ACCEPTED

    def _issuer_of(self, cert: x509.Certificate) -> x509.Certificate | None:
        for ca in self.authorities:
            if ca.subject == cert.issuer and ca is not cert and issued_by(cert, ca):
                return ca
        return None

    def _walk(self, cert: x509.Certificate) -> _Chain:
        not_before = cert.not_valid_before_utc
        not_after = cert.not_valid_after_utc

        def problem(reason: str) -> _Chain:
            return _Chain(reason, not_before, not_after)

        if is_ca(cert):
            return problem("a CA certificate cannot be used as an identity")
        current = cert
        for _ in range(MAX_CHAIN):
            issuer = self._issuer_of(current)
            if issuer is None:
                return problem(self._why_no_issuer(current))
            if current.serial_number in self._revoked.get(issuer.fingerprint(_SHA256), ()):
                who = "certificate" if current is cert else "intermediate CA"
                serial = f"{current.serial_number:x}"
                return problem(f"{who} serial {serial} revoked by {common_name(issuer)}")
            not_before = max(not_before, issuer.not_valid_before_utc)
            not_after = min(not_after, issuer.not_valid_after_utc)
            if any(issuer is root for root in self.roots):
                return _Chain(None, not_before, not_after)
            current = issuer
        return problem("certificate chain too long")

    def _why_no_issuer(self, cert: x509.Certificate) -> str:
        named = [ca for ca in self.authorities if ca.subject == cert.issuer]
        wanted = authority_key_id(cert)
        if not named or (wanted is not None and all(key_id(ca) != wanted for ca in named)):
            return f"unknown CA: {cert.issuer.rfc4514_string()} is not a CA of MSP {self.mspid}"
        return f"tampered certificate: signature by {common_name(named[0])} does not verify"

    def __repr__(self) -> str:
        counts = f"roots={len(self.roots)}, intermediates={len(self.intermediates)}"
        return f"MSP({self.mspid!r}, {counts})"


def mspid_from_subject(cert: x509.Certificate) -> str:
    org = organization(cert)
    if org is None:
        raise MSPError(f"CA {cert.subject.rfc4514_string()} has no O= to name its MSP")
    return mspid_from_domain(org)


class MSPManager:
    """All the MSPs of a channel, looked up by id; the entry point for peers' input."""

    def __init__(self, msps: Iterable[MSP]) -> None:
        self._msps = {m.mspid: m for m in msps}
        self._identities: dict[tuple[str, bytes], Identity] = {}

    @property
    def mspids(self) -> tuple[str, ...]:
        return tuple(self._msps)

    def msp(self, mspid: str) -> MSP:
        try:
            return self._msps[mspid]
        except KeyError:
            raise MSPError(f"unknown MSP {mspid!r}") from None

    def identity(self, mspid: str, cert_pem: bytes | str) -> Identity:
        """The (cached) identity for a creator or signer field; ``MSPError`` on garbage."""
        raw = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
        if not isinstance(mspid, str) or not isinstance(raw, bytes):
            raise MSPError("mspid must be str and cert_pem bytes")
        key = (mspid, raw)
        found = self._identities.get(key)
        if found is None:
            self.msp(mspid)
            found = Identity.from_pem(mspid, raw)
            if len(self._identities) >= IDENTITY_CACHE_SIZE:
                self._identities.clear()
            self._identities[key] = found
        return found

    def validate(self, identity: Identity, now: datetime, role: str | None = None) -> Verdict:
        msp = self._msps.get(identity.mspid)
        if msp is None:
            return rejected(f"unknown MSP {identity.mspid!r}")
        return msp.validate(identity, now, role)

    def authenticate(
        self,
        mspid: str,
        cert_pem: bytes | str,
        data: bytes,
        signature: bytes,
        now: datetime,
        role: str | None = None,
    ) -> Verdict:
        """Valid member *and* valid signature, in one call that never raises on peer input."""
        try:
            identity = self.identity(mspid, cert_pem)
        except MSPError as exc:
            return rejected(f"bad identity: {exc}")
        verdict = self.validate(identity, now, role)
        return verdict if not verdict.ok else identity.check(data, signature)
