"""Private keys and raw signatures: derivable from a seed, replayable, not malleable.

Two algorithms: ECDSA P-256 with SHA-256 (Fabric's default) and Ed25519.
ECDSA signatures are RFC 6979 deterministic and then low-S normalised, so the
same key and message always give the same bytes (a seeded simulation replays
byte for byte) and a third party cannot flip ``s`` to ``n - s`` to mint a
second valid signature of the same message (Fabric rejects high-S for exactly
that reason). Verification therefore rejects high-S and non-canonical DER.
Ed25519 is deterministic and strict about ``S`` by construction.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from msp.errors import MSPError

ECDSA_P256 = "ecdsa-p256"
ED25519 = "ed25519"
ALGORITHMS = (ECDSA_P256, ED25519)

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_HALF_ORDER = P256_ORDER // 2

_DETERMINISTIC_ECDSA = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_ECDSA = ec.ECDSA(hashes.SHA256())


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise MSPError(f"unknown algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    return algorithm


def algorithm_of(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return ED25519
    if isinstance(key.curve, ec.SECP256R1):
        return ECDSA_P256
    raise MSPError(f"unsupported elliptic curve {key.curve.name}: only P-256 is supported")


class KeySource:
    """Where keys and certificate serial numbers come from.

    Seeded, everything is a hash of the seed and a label naming its owner, so
    one seed gives the same network every time; unseeded, fresh randomness
    from the operating system (through ``cryptography``) for real deployments.
    """

    def __init__(self, seed: bytes | None) -> None:
        self.seed = seed

    def _material(self, purpose: str, label: str) -> bytes:
        assert self.seed is not None
        return hashlib.sha512(
            b"ledgersim/msp/" + purpose.encode() + b"\0" + self.seed + b"\0" + label.encode()
        ).digest()

    def key(self, algorithm: str, label: str) -> PrivateKey:
        check_algorithm(algorithm)
        if self.seed is None:
            if algorithm == ED25519:
                return ed25519.Ed25519PrivateKey.generate()
            return ec.generate_private_key(ec.SECP256R1())
        material = self._material("key", label)
        if algorithm == ED25519:
            return ed25519.Ed25519PrivateKey.from_private_bytes(material[:32])
        scalar = int.from_bytes(material, "big") % (P256_ORDER - 1) + 1
        return ec.derive_private_key(scalar, ec.SECP256R1())

    def serial(self, label: str) -> int:
        if self.seed is None:
            return x509.random_serial_number()
        # 127 bits: positive, never zero, and at most 16 bytes in DER.
        return (int.from_bytes(self._material("serial", label)[:16], "big") >> 1) | 1


def sign(key: PrivateKey, data: bytes) -> bytes:
    """Deterministic signature: Ed25519, or low-S DER ECDSA (RFC 6979)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    r, s = decode_dss_signature(key.sign(data, _DETERMINISTIC_ECDSA))
    if s > P256_HALF_ORDER:
        s = P256_ORDER - s
    return encode_dss_signature(r, s)


def signature_problem(key: PublicKey, data: bytes, signature: bytes) -> str | None:
    """Why ``signature`` is not a valid signature of ``data``, or None if it is.

    Never raises: whatever a peer sends, the answer is a reason.
    """
    if not isinstance(data, bytes) or not isinstance(signature, bytes):
        return "data and signature must be bytes"
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
            return None
        try:
            r, s = decode_dss_signature(signature)
        except ValueError:
            return "malformed ECDSA signature"
        if encode_dss_signature(r, s) != signature:
            return "non-canonical DER signature"
        if not 0 < s <= P256_HALF_ORDER:
            return "high-S ECDSA signature"
        key.verify(signature, data, _ECDSA)
        return None
    except InvalidSignature:
        return "bad signature"
    except (ValueError, TypeError, OverflowError):
        return "malformed signature"


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes, source: str = "private key") -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise MSPError(f"{source}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise MSPError(f"{source}: unsupported key type {type(key).__name__}")
    algorithm_of(key)
    return key


def same_public_key(a: PublicKey, b: PublicKey) -> bool:
    return public_key_pem(a) == public_key_pem(b)
