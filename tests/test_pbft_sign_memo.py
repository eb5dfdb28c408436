"""Verdicts learned when a message is signed: a memo that spares work, never a pass."""

from __future__ import annotations

import pytest

from pbft.auth import VERIFIED_CACHE_SIZE, Keyring


def _count_macs(keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    computed: list[int] = []
    real = keyring.mac

    def counting(principal: int, payload: bytes) -> bytes:
        computed.append(principal)
        return real(principal, payload)

    monkeypatch.setattr(keyring, "mac", counting)
    return computed


def test_a_fresh_signature_is_checked_from_the_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    keyring = Keyring(11)
    alice, bob = keyring.authenticator(1), keyring.authenticator(2)
    computed = _count_macs(keyring, monkeypatch)
    signature = alice.sign(b"reply bytes")
    assert bob.verify(1, b"reply bytes", signature)
    assert computed == []  # learned when signed, not recomputed
    assert keyring.verify_count == 1


def test_the_memo_still_refuses_tampering_and_impostors(monkeypatch: pytest.MonkeyPatch) -> None:
    keyring = Keyring(11)
    alice, bob = keyring.authenticator(1), keyring.authenticator(2)
    signature = alice.sign(b"reply bytes")
    computed = _count_macs(keyring, monkeypatch)
    assert not bob.verify(1, b"reply bytez", signature)  # tampered bytes
    assert not bob.verify(3, b"reply bytes", signature)  # someone else's name
    assert not bob.verify(1, b"reply bytes", bytes(16))  # a guessed signature
    assert computed == [1, 3, 1]  # every miss is a real check


def test_a_payload_changed_after_signing_is_not_vouched_for() -> None:
    keyring = Keyring(11)
    buffer = bytearray(b"reply bytes")
    signature = keyring.authenticator(1).sign(buffer)  # type: ignore[arg-type]
    buffer[0] ^= 1
    bob = keyring.authenticator(2)
    assert not bob.verify(1, buffer, signature)  # type: ignore[arg-type]
    assert bob.verify(1, b"reply bytes", signature)


def test_the_memo_stays_bounded_and_a_forgotten_verdict_is_recomputed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keyring = Keyring(11)
    alice = keyring.authenticator(1)
    first = alice.sign(b"payload 0")
    for k in range(1, VERIFIED_CACHE_SIZE + 5):
        alice.sign(b"payload %d" % k)
    assert sum(len(table) for table in keyring._verified.values()) <= VERIFIED_CACHE_SIZE
    computed = _count_macs(keyring, monkeypatch)
    assert keyring.authenticator(2).verify(1, b"payload 0", first)
    assert computed == [1]  # emptied meanwhile: checked for real, still valid
