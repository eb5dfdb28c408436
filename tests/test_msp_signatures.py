"""Signatures: deterministic, low-S, checkable by openssl, never raising on garbage."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from msp import SigningIdentity, generate_network
from msp.keys import P256_HALF_ORDER, P256_ORDER, public_key_pem

ECDSA = generate_network(1, 1, 1, seed=b"sig").signer("User1@org1.example.com")
EDDSA = generate_network(1, 1, 1, algorithm="ed25519", seed=b"sig").signer("User1@org1.example.com")


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_ecdsa_signatures_are_low_s_deterministic_and_valid(data: bytes) -> None:
    sig = ECDSA.sign(data)
    assert sig == ECDSA.sign(data)
    _r, s = decode_dss_signature(sig)
    assert 0 < s <= P256_HALF_ORDER
    assert ECDSA.verify(data, sig)
    assert ECDSA.public().verify(data, sig)
    assert not ECDSA.verify(data + b"!", sig)


def test_high_s_twin_is_valid_for_openssl_math_but_rejected() -> None:
    data = b"malleable?"
    r, s = decode_dss_signature(ECDSA.sign(data))
    twin = encode_dss_signature(r, P256_ORDER - s)
    raw = ECDSA.public_key
    assert isinstance(raw, ec.EllipticCurvePublicKey)
    raw.verify(twin, data, ec.ECDSA(hashes.SHA256()))  # mathematically valid
    verdict = ECDSA.check(data, twin)
    assert not verdict.ok and verdict.reason == "high-S ECDSA signature"


def test_non_canonical_der_is_rejected() -> None:
    sig = ECDSA.sign(b"der")
    # long-form length byte for the SEQUENCE: same integers, different bytes
    padded = b"\x30\x81" + sig[1:]
    assert not ECDSA.verify(b"der", padded)


@pytest.mark.parametrize("signer", [ECDSA, EDDSA], ids=["ecdsa", "ed25519"])
@settings(max_examples=150, deadline=None)
@given(data=st.one_of(st.binary(max_size=64), st.none(), st.integers()), sig=st.binary(max_size=90))
def test_verify_never_raises_on_garbage(signer: SigningIdentity, data: object, sig: bytes) -> None:
    assert signer.verify(data, sig) is False  # type: ignore[arg-type]
    assert signer.verify(b"x", data) is False  # type: ignore[arg-type]


def test_ed25519_signs_verifies_and_rejects_tampering() -> None:
    sig = EDDSA.sign(b"m")
    assert sig == EDDSA.sign(b"m") and len(sig) == 64
    assert EDDSA.public().verify(b"m", sig)
    assert not EDDSA.verify(b"m", sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not ECDSA.verify(b"m", sig) and not EDDSA.verify(b"m", ECDSA.sign(b"m"))


def test_openssl_verifies_our_ecdsa_signatures(tmp_path: Path) -> None:
    pub = tmp_path / "pub.pem"
    pub.write_bytes(public_key_pem(ECDSA.public_key))
    for i, message in enumerate((b"hello", b"", bytes(range(256)) * 3)):
        data, sig = tmp_path / f"data{i}", tmp_path / f"sig{i}.der"
        data.write_bytes(message)
        sig.write_bytes(ECDSA.sign(message))
        command = ["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(sig)]
        good = subprocess.run([*command, str(data)], capture_output=True, text=True, check=False)
        assert good.returncode == 0 and "Verified OK" in good.stdout
        data.write_bytes(message + b"x")
        bad = subprocess.run([*command, str(data)], capture_output=True, text=True, check=False)
        assert bad.returncode != 0


def test_verification_cache_gives_the_same_answers() -> None:
    fresh = ECDSA.public()
    sig = ECDSA.sign(b"cached")
    for _ in range(3):
        assert fresh.verify(b"cached", sig)
        assert not fresh.verify(b"cached", sig[:-1] + bytes([sig[-1] ^ 1]))
        assert not fresh.verify(b"cache", sig)
