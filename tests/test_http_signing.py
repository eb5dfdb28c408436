"""The signing rules both ends of the HTTP gateway share (no server needed)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from msp.identity import SigningIdentity
from msp.keys import P256_HALF_ORDER, P256_ORDER
from sim.http.signing import (
    NonceBook,
    NonceBookFull,
    SignatureFormError,
    request_digest,
    signature_bytes,
)
from sim.scenario.model import NetworkSpec, Scenario
from sim.world.auth import network_crypto


@pytest.fixture(scope="module")
def admin() -> SigningIdentity:
    crypto = network_crypto(Scenario(name="t", seed=3, network=NetworkSpec(orgs=2)))
    return crypto.signer("Admin@org1.example.com")


def raw_of(der: bytes, high: bool) -> bytes:
    r, s = decode_dss_signature(der)
    s = P256_ORDER - s if high else s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_request_digest_binds_every_part() -> None:
    base = ("GET", "/api/patches", b"", 1000, "n" * 16)
    digest = request_digest(*base)
    for i, other in enumerate(("POST", "/api/compliance", b"x", 1001, "m" * 16)):
        changed = list(base)
        changed[i] = other
        assert request_digest(*changed) != digest


@pytest.mark.parametrize("high", [False, True])
def test_raw_browser_signature_becomes_low_s_der_the_msp_accepts(
    admin: SigningIdentity, high: bool
) -> None:
    data = b"proposal bytes"
    der = admin.sign(data)
    converted = signature_bytes(raw_of(der, high).hex())
    assert converted == der
    assert decode_dss_signature(converted)[1] <= P256_HALF_ORDER
    assert admin.verify(data, converted)


def test_der_passes_through_and_ed25519_raw_is_left_alone(admin: SigningIdentity) -> None:
    der = admin.sign(b"x")
    assert signature_bytes(der.hex()) == der
    raw = bytes(range(64))
    assert signature_bytes(raw.hex(), ecdsa=False) == raw


@pytest.mark.parametrize("text", ["zz", "abc", "00" * 64])
def test_malformed_signatures_are_refused(text: str) -> None:
    with pytest.raises(SignatureFormError):
        signature_bytes(text)


def test_a_nonce_is_accepted_once_per_identity_within_the_window() -> None:
    book = NonceBook(window_ms=1_000)
    assert book.fresh("alice", "n1", now_ms=0)
    assert not book.fresh("alice", "n1", now_ms=500)
    assert book.fresh("bob", "n1", now_ms=500)
    assert not book.fresh("alice", "n1", now_ms=1_999)
    assert book.fresh("alice", "n1", now_ms=2_001)  # forgotten: its timestamp is stale by now


def test_a_full_nonce_book_refuses_instead_of_forgetting_a_live_nonce() -> None:
    """It used to evict the oldest live nonce, after which that request could be replayed."""
    book = NonceBook(window_ms=1_000, limit=2)
    assert book.fresh("alice", "n1", now_ms=0)
    assert book.fresh("alice", "n2", now_ms=1)
    with pytest.raises(NonceBookFull):
        book.fresh("alice", "n3", now_ms=2)
    assert not book.fresh("alice", "n1", now_ms=3)  # still remembered: a replay is refused
    assert book.fresh("alice", "n3", now_ms=2_001)  # n1 has expired, so there is room again
