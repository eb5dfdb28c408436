"""Identities: a certificate bound to an MSP id, able to check signatures.

Signature checking is the hot path of the whole system (every envelope,
endorsement and PBFT message), so an identity parses its certificate once and
remembers recent verification results: in one simulated process every replica
verifies the same message, and the answer for a given (message, signature)
cannot change. The cache is bounded and keyed by a SHA-256 of the message, so
a peer cannot make it grow or collide.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from msp.certs import common_name, subject_attribute
from msp.errors import ACCEPTED, MSPError, Verdict, rejected
from msp.keys import PrivateKey, PublicKey, algorithm_of, same_public_key, sign, signature_problem
from msp.names import ROLES

VERIFY_CACHE_SIZE = 4096


def parse_certificate(cert_pem: bytes | str) -> x509.Certificate:
    """Parse one PEM certificate; ``MSPError`` on anything else."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    if not isinstance(data, bytes):
        raise MSPError(f"certificate must be PEM bytes, got {type(cert_pem).__name__}")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise MSPError(f"not a PEM certificate: {exc}") from None


def role_from_certificate(cert: x509.Certificate) -> str:
    """The NodeOU role in the subject's OU; ``""`` when no OU names a known role."""
    units = subject_attribute(cert, NameOID.ORGANIZATIONAL_UNIT_NAME)
    known = [u for u in units if u in ROLES]
    return known[0] if len(known) == 1 else ""


class Identity:
    """A member of an MSP as others see it: who (``mspid``, ``name``, ``role``) and its key.

    Equal identities have the same MSP id and the same certificate (DER), so a
    set of identities counts each signer once, however its PEM was spelled.
    Being an ``Identity`` says nothing about validity: ask the MSP.
    """

    __slots__ = ("_cache", "cert", "cert_pem", "fingerprint", "mspid", "name", "public_key", "role")

    def __init__(self, mspid: str, cert: x509.Certificate) -> None:
        try:
            key = cert.public_key()
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise MSPError(f"unusable public key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
            raise MSPError(f"unsupported public key type {type(key).__name__}")
        algorithm_of(key)
        self.mspid = mspid
        self.cert = cert
        self.cert_pem: bytes = cert.public_bytes(serialization.Encoding.PEM)
        self.fingerprint: bytes = cert.fingerprint(hashes.SHA256())
        self.public_key: PublicKey = key
        self.name: str = common_name(cert)
        self.role: str = role_from_certificate(cert)
        self._cache: dict[bytes, str | None] = {}

    @classmethod
    def from_pem(cls, mspid: str, cert_pem: bytes | str) -> Identity:
        return cls(mspid, parse_certificate(cert_pem))

    def check(self, data: bytes, signature: bytes) -> Verdict:
        """Whether ``signature`` signs ``data`` under this identity's key, with the reason."""
        if not isinstance(data, bytes) or not isinstance(signature, bytes):
            return rejected("data and signature must be bytes")
        key = hashlib.sha256(data).digest() + signature
        try:
            problem = self._cache[key]
        except KeyError:
            problem = signature_problem(self.public_key, data, signature)
            if len(self._cache) >= VERIFY_CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = problem
        return ACCEPTED if problem is None else rejected(problem)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True only for a valid signature; never raises, whatever the input."""
        return self.check(data, signature).ok

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return self.mspid == other.mspid and self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash((self.mspid, self.fingerprint))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.mspid!r}, {self.name!r}, role={self.role!r})"


class SigningIdentity(Identity):
    """An identity whose private key we hold; signatures are deterministic."""

    __slots__ = ("private_key",)

    def __init__(self, mspid: str, cert: x509.Certificate, private_key: PrivateKey) -> None:
        super().__init__(mspid, cert)
        if not same_public_key(self.public_key, private_key.public_key()):
            raise MSPError(f"private key does not match the certificate of {self.name!r}")
        self.private_key = private_key

    def sign(self, data: bytes) -> bytes:
        return sign(self.private_key, data)

    def public(self) -> Identity:
        """The same identity without the private key, as a peer would hold it."""
        return Identity(self.mspid, self.cert)
