"""Signed, time-limited requests and the signature forms the gateway accepts.

Every ``/api`` request names its identity and signs, with that identity's
key, one line per item: the method, the path with its query, the SHA-256 of
the body, a timestamp (ms since the epoch) and a fresh nonce. The gateway
accepts a request once, within :data:`WINDOW_MS` of its own clock: a
captured request cannot be replayed later, nor twice within the window
(nonces are remembered for as long as they could be accepted).

Signatures arrive as hex, either in the MSP's own form (DER, low-S) or as
the raw 64-byte ``r || s`` that WebCrypto produces; the raw form is turned
into low-S DER here, so the MSP sees only what it already accepts.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from msp.keys import P256_HALF_ORDER, P256_ORDER

WINDOW_MS = 60_000
"""How far a request's timestamp may be from the gateway's clock, either way."""
MAX_NONCES = 100_000

IDENTITY = "x-ledgersim-identity"
TIMESTAMP = "x-ledgersim-timestamp"
NONCE = "x-ledgersim-nonce"
SIGNATURE = "x-ledgersim-signature"
HEADERS = (IDENTITY, TIMESTAMP, NONCE, SIGNATURE)


class SignatureFormError(ValueError):
    """A signature that is neither hex DER nor hex raw ``r || s``."""


def request_digest(method: str, target: str, body: bytes, timestamp_ms: int, nonce: str) -> bytes:
    """The bytes a caller signs for one request (``target`` is the path plus ``?query``)."""
    lines = (method.upper(), target, hashlib.sha256(body).hexdigest(), str(timestamp_ms), nonce)
    return "\n".join(lines).encode()


def signature_bytes(text: str, ecdsa: bool = True) -> bytes:
    """A hex signature in the MSP's form: raw 64-byte P-256 ``r || s`` becomes low-S DER.

    ``ecdsa`` is False for an Ed25519 signer, whose signatures are 64 raw bytes already.
    """
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise SignatureFormError("the signature must be hex") from None
    if not ecdsa or len(raw) != 64 or (raw[0] == 0x30 and raw[1] == 62):
        return raw  # already DER (a 64-byte DER signature announces its own length)
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:], "big")
    if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
        raise SignatureFormError("raw signature values out of range")
    if s > P256_HALF_ORDER:
        s = P256_ORDER - s
    return encode_dss_signature(r, s)


class NonceBookFull(Exception):
    """Every slot holds a nonce that could still be replayed: refuse rather than forget one."""


class NonceBook:
    """Nonces seen within the replay window, each forgotten once it could not be accepted."""

    def __init__(self, window_ms: int = WINDOW_MS, limit: int = MAX_NONCES) -> None:
        self.window_ms = window_ms
        self.limit = limit
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()

    def fresh(self, who: str, nonce: str, now_ms: int) -> bool:
        """True the first time ``who`` uses ``nonce``; records it.

        :class:`NonceBookFull` when the book holds ``limit`` live nonces: forgetting the
        oldest would let a captured request be replayed while its timestamp still passes.
        """
        while self._seen:
            oldest, until = next(iter(self._seen.items()))
            if until > now_ms:
                break
            del self._seen[oldest]
        key = (who, nonce)
        if key in self._seen:
            return False
        if len(self._seen) >= self.limit:
            raise NonceBookFull(f"{len(self._seen)} requests within the replay window")
        self._seen[key] = now_ms + 2 * self.window_ms
        return True
