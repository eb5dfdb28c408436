"""Modelled signatures: HMAC-SHA256 with per-principal secrets derived from a seed.

Real public-key signatures (msp/) cost far more than the protocol logic, so
fault-injection sweeps and benchmarks use these instead. They keep the property
that matters to PBFT's fault model: a principal can produce signatures only
under its own name. A Byzantine replica is handed an authenticator bound to its
own id, so it can forge nobody else's messages; verification goes through the
shared :class:`Keyring`, which stands in for the public-key directory.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections.abc import Callable
from typing import Any

SIGNATURE_SIZE = 16
"""HMAC-SHA256 truncated to 128 bits: unforgeable enough for a simulation, half the bytes."""

VERIFIED_CACHE_SIZE = 16384
"""Verdicts the keyring keeps (payloads are held alive, so the memo is bounded as a whole)."""


class Keyring:
    """Every principal's secret, derived deterministically from one seed.

    Also counts signs and verifies across all authenticators built from it, so a
    benchmark can report crypto operations per committed request.
    """

    def __init__(self, seed: int | bytes) -> None:
        if isinstance(seed, int):
            seed = seed.to_bytes(16, "big", signed=True)
        self._seed = bytes(seed)
        self._secrets: dict[int, bytes] = {}
        self._macs: dict[int, Mac] = {}
        self.sign_count = 0
        self.verify_count = 0
        self._verified: dict[int, dict[bytes, bytes]] = {}
        """signer -> signature -> the payload it was found valid for.

        Every receiver of a broadcast checks the same signature over the same
        bytes; the answer cannot change, so it is computed once. Keying by the
        short signature and comparing the payload avoids hashing the payload.
        Only successes are kept (a forger cannot fill it); emptied when full.
        A signature is entered when it is made, too: the MAC is deterministic,
        so the signer's own tag over these bytes is exactly what a check would
        recompute, and its first receiver is spared the recomputation.
        One table per signer rather than (signer, signature) keys: a key pair
        per entry would be one more object for the garbage collector to track.
        All are emptied together when they hold ``VERIFIED_CACHE_SIZE`` verdicts.
        """
        self._verified_entries = 0

    def secret(self, principal: int) -> bytes:
        key = self._secrets.get(principal)
        if key is None:
            key = hashlib.sha256(
                b"ledgersim/modelled-key/"
                + self._seed
                + b"/"
                + principal.to_bytes(8, "big", signed=True)
            ).digest()
            self._secrets[principal] = key
        return key

    def authenticator(self, principal: int) -> ModelledAuthenticator:
        return ModelledAuthenticator(principal, self)

    def learn_valid(self, signer: int, payload: bytes, signature: bytes) -> None:
        """Remember that ``signature`` is ``signer``'s valid tag over ``payload``.

        Only immutable ``bytes`` payloads: a verdict on a buffer that can change
        afterwards would not stay true. Only tags of :data:`SIGNATURE_SIZE` bytes,
        which is what lets ``verify`` look a signature up before checking its length.
        """
        if type(payload) is not bytes or len(signature) != SIGNATURE_SIZE:
            return
        verified = self._verified
        if self._verified_entries >= VERIFIED_CACHE_SIZE:
            verified.clear()  # amortised O(1); the verdicts in use come back at once
            self._verified_entries = 0
        by_signer = verified.get(signer)
        if by_signer is None:
            by_signer = verified[signer] = {}
        by_signer[signature] = payload
        self._verified_entries += 1

    def mac(self, principal: int, payload: bytes) -> bytes:
        mac = self._macs.get(principal)
        if mac is None:
            mac = self._macs[principal] = Mac(self.secret(principal))
        return mac.tag(payload)


class Mac:
    """HMAC-SHA256 (RFC 2104) under one key, truncated to :data:`SIGNATURE_SIZE`.

    The key's inner and outer pads are hashed once, here; each tag then
    copies those two states instead of setting HMAC up from the key again,
    which costs less than half of ``hmac.digest``. The tags are exactly
    ``hmac.digest(key, payload, "sha256")[:SIGNATURE_SIZE]``.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = _sha256(key.translate(_IPAD))
        self._outer = _sha256(key.translate(_OPAD))

    def tag(self, payload: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:SIGNATURE_SIZE]


def _cheapest_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 where the build has it, else OpenSSL's (``hashlib.sha256``).

    Both give the same digests. A tag copies two hash states and hashes two
    short blocks, and copying CPython's state is a plain memory copy where
    OpenSSL's allocates a new context: about 7% less time per tag (0.64 us
    against 0.68 us, and 10,000 instructions against 12,500).
    """
    for name in ("_sha2", "_sha256"):  # its module in 3.12+, and in 3.11
        try:
            sha256: Callable[[bytes], Any] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return sha256
    return hashlib.sha256


_sha256 = _cheapest_sha256()
_BLOCK = 64
"""SHA-256's block size: HMAC pads its key to it."""
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class ModelledAuthenticator:
    """Signs as ``principal`` only; verifies anyone through the keyring."""

    __slots__ = ("_keyring", "_mac", "principal")

    def __init__(self, principal: int, keyring: Keyring) -> None:
        self.principal = principal
        self._keyring = keyring
        self._mac = Mac(keyring.secret(principal))

    def sign(self, payload: bytes) -> bytes:
        keyring = self._keyring
        keyring.sign_count += 1
        signature = self._mac.tag(payload)
        keyring.learn_valid(self.principal, payload, signature)
        return signature

    def verify(self, signer: int, payload: bytes, signature: bytes) -> bool:
        keyring = self._keyring
        keyring.verify_count += 1
        if type(signer) is not int or type(signature) is not bytes:
            return False
        by_signer = keyring._verified.get(signer)
        if by_signer is not None and by_signer.get(signature) == payload:
            return True  # the memo holds only tags of the right size: no length test first
        if len(signature) != SIGNATURE_SIZE:
            return False
        if not hmac.compare_digest(keyring.mac(signer, payload), signature):
            return False
        keyring.learn_valid(signer, payload, signature)
        return True
