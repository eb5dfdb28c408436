"""The "limits" section: what the primitives cost on this machine, alone.

Every other figure is read against these: a simulator committing N
transactions per second means little until it is set beside how many
signatures per second the machine can verify at all. So each signature
scheme is measured both through the project's own wrappers (the msp
identities, the modelled HMAC authenticator) and straight through the
library underneath, and the gap between the two is the wrappers' overhead.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import importlib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ledger import codec
from ledger.codec import decode, encode
from pbft.messages import Commit, PrePrepare, Request, batch_digest, signing_bytes
from sim.bench.timing import Budget, measure_rate


def sample(cls: type[T], **given: Any) -> T:
    """A well-formed ``cls`` with the ``given`` fields and plain values for the rest.

    Fields not named get 1 (ints), 32 zero bytes (bytes: the size of a digest),
    ``"x"`` or an empty tuple, so the samples keep working when the PBFT
    messages gain a field.
    """
    hints = typing.get_type_hints(cls)
    plain: dict[Any, Any] = {int: 1, bytes: bytes(32), str: "x", bool: False}
    values = {
        f.name: given[f.name] if f.name in given else plain.get(hints[f.name], ())
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
    }
    return cls(**values)


SIGNED_PAYLOAD = signing_bytes(sample(Commit, view=0, replica=1, signature=b""))
"""What the signature rows sign: a COMMIT's signing bytes, the most frequent signed message."""

CODEC_BATCH = 100
CODEC_OPERATION_BYTES = 1024
"""PRE-PREPARE codec rows carry 100 requests of 1 KiB (about one kv envelope each)."""

T = TypeVar("T")

SHA_BLOCK = 64 * 1024
SHA_SMALL = 128


@dataclass(frozen=True, slots=True)
class SignatureRow:
    """Sign and verify rates of one scheme through one code path (``None``: not measurable)."""

    scheme: str
    via: str
    sign_per_s: float | None
    verify_per_s: float | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "via": self.via,
            "sign_per_s": self.sign_per_s,
            "verify_per_s": self.verify_per_s,
            "note": self.note,
        }


def _row(
    scheme: str,
    via: str,
    make: Callable[[], tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], bool]]],
    budget: Budget,
) -> SignatureRow:
    """Measure one (sign, verify) pair built by ``make``; a missing module becomes a note."""
    try:
        sign, verify = make()
    except (ImportError, AttributeError) as exc:
        return SignatureRow(scheme, via, None, None, f"not available: {exc}")
    except Exception as exc:  # another package's bug must not sink the whole suite
        return SignatureRow(scheme, via, None, None, f"failed: {type(exc).__name__}: {exc}")
    signature = sign(SIGNED_PAYLOAD)
    if not verify(SIGNED_PAYLOAD, signature):
        raise RuntimeError(f"{scheme} via {via}: a fresh signature does not verify")
    return SignatureRow(
        scheme,
        via,
        measure_rate(lambda: sign(SIGNED_PAYLOAD), budget),
        measure_rate(lambda: verify(SIGNED_PAYLOAD, signature), budget),
    )


def _raw_ecdsa() -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], bool]]:
    key = ec.derive_private_key(0x5EED, ec.SECP256R1())
    public = key.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())

    def verify(data: bytes, signature: bytes) -> bool:
        public.verify(signature, data, algorithm)  # raises on a bad signature
        return True

    return (lambda data: key.sign(data, algorithm)), verify


def _raw_ed25519() -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], bool]]:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public = key.public_key()

    def verify(data: bytes, signature: bytes) -> bool:
        public.verify(signature, data)
        return True

    return key.sign, verify


def _raw_hmac() -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], bool]]:
    secret = hashlib.sha256(b"bench").digest()

    def sign(data: bytes) -> bytes:
        return hmac.new(secret, data, hashlib.sha256).digest()

    return sign, lambda data, signature: hmac.compare_digest(sign(data), signature)


def _first_sight(
    verify: Callable[[bytes, bytes], Any], owner: Any, cache_name: str
) -> Callable[[bytes, bytes], bool]:
    """``verify`` with ``owner``'s verdict cache emptied before each call.

    Identities and the modelled keyring remember signatures they have already
    checked (in one simulated process every replica checks the same ones);
    timing a repeated check would time a set lookup, not a verification.
    """
    cache = getattr(owner, cache_name, None)

    def checked(data: bytes, signature: bytes) -> bool:
        if cache is not None:
            cache.clear()
        return bool(verify(data, signature))

    return checked


def _msp(algorithm: str) -> Callable[[], tuple[Any, Any]]:
    def make() -> tuple[Any, Any]:
        ca = importlib.import_module("msp.ca")
        crypto = ca.generate_network(1, 1, 1, algorithm=algorithm, seed=b"ledgersim-bench")
        signer = crypto.signer("peer0.org1.example.com")
        verifier = signer.public()
        return signer.sign, _first_sight(verifier.verify, verifier, "_cache")

    return make


def _modelled() -> tuple[Any, Any]:
    auth = importlib.import_module("pbft.auth")
    keyring = auth.Keyring(b"ledgersim-bench")
    signer = keyring.authenticator(1)
    return signer.sign, _first_sight(functools.partial(signer.verify, 1), keyring, "_verified")


def signature_rows(budget: Budget, schemes: tuple[str, ...] | None = None) -> list[SignatureRow]:
    """Every (scheme, code path) row, or only those of the named schemes."""
    plan: list[tuple[str, str, Callable[[], tuple[Any, Any]]]] = [
        ("ecdsa-p256", "msp", _msp("ecdsa-p256")),
        ("ecdsa-p256", "cryptography", _raw_ecdsa),
        ("ed25519", "msp", _msp("ed25519")),
        ("ed25519", "cryptography", _raw_ed25519),
        ("hmac-sha256", "pbft.auth", _modelled),
        ("hmac-sha256", "hmac", _raw_hmac),
    ]
    return [
        _row(scheme, via, make, budget)
        for scheme, via, make in plan
        if schemes is None or scheme in schemes
    ]


def sha256_rates(budget: Budget) -> dict[str, float]:
    block = bytes(SHA_BLOCK)
    small = bytes(SHA_SMALL)
    per_block = measure_rate(lambda: hashlib.sha256(block).digest(), budget)
    return {
        "mb_per_s": per_block * SHA_BLOCK / 1e6,
        "small_per_s": measure_rate(lambda: hashlib.sha256(small).digest(), budget),
        "small_bytes": SHA_SMALL,
    }


def _sample_pre_prepare() -> PrePrepare:
    requests = tuple(
        sample(
            Request,
            client=1000 + i,
            timestamp=i + 1,
            operation=hashlib.sha256(i.to_bytes(4, "big")).digest() * (CODEC_OPERATION_BYTES // 32),
            signature=bytes(72),
        )
        for i in range(CODEC_BATCH)
    )
    return sample(
        PrePrepare,
        view=0,
        digest=batch_digest(requests),
        requests=requests,
        replica=0,
        signature=bytes(72),
    )


def _first_sight_decode(data: bytes, kind: type) -> Callable[[], object]:
    """A decode that cannot be answered from the codec's cache of recently decoded bytes.

    The cache makes a broadcast's n-1 copies cheap, but a message seen for the
    first time pays the full price, and that is the limit worth knowing.
    """
    cache = getattr(codec, "_decoded", None)

    def run() -> object:
        if cache is not None:
            cache.clear()
        return decode(data, kind)

    return run


def codec_rates(budget: Budget) -> dict[str, dict[str, float]]:
    """Encode and decode rates; decode includes the type checks and the canonical check."""
    samples: dict[str, Any] = {
        "pre_prepare_batch": _sample_pre_prepare(),
        "commit": sample(Commit, view=0, replica=1, signature=bytes(72)),
    }
    out: dict[str, dict[str, float]] = {}
    for name, message in samples.items():
        data = encode(message)
        out[name] = {
            "bytes": len(data),
            "encode_per_s": measure_rate(functools.partial(encode, message), budget),
            "decode_per_s": measure_rate(_first_sight_decode(data, type(message)), budget),
            "decode_repeat_per_s": measure_rate(
                functools.partial(decode, data, type(message)), budget
            ),
        }
    out["pre_prepare_batch"]["requests"] = CODEC_BATCH
    return out


def run_limits(budget: Budget) -> dict[str, Any]:
    return {
        "payload_bytes": len(SIGNED_PAYLOAD),
        "signatures": [row.to_json() for row in signature_rows(budget)],
        "sha256": sha256_rates(budget),
        "codec": codec_rates(budget),
    }


def preferred_rates(limits: dict[str, Any], scheme: str) -> tuple[float, float, str]:
    """(sign/s, verify/s, code path) of ``scheme`` as the project uses it.

    The project's own wrapper (msp, pbft.auth) when it was measured, else the
    library underneath.
    """
    rows = [r for r in limits["signatures"] if r["scheme"] == scheme and r["sign_per_s"]]
    if not rows:
        raise LookupError(f"no measured signature rate for {scheme}")
    row = next((r for r in rows if r["via"] in ("msp", "pbft.auth")), rows[0])
    return float(row["sign_per_s"]), float(row["verify_per_s"]), str(row["via"])
