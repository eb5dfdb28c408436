"""The modelled MAC's precomputed pads give exactly HMAC-SHA256, truncated."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pbft.auth import SIGNATURE_SIZE, Keyring, Mac


@pytest.mark.parametrize("key_size", [0, 1, 32, 63, 64, 65, 200])
@pytest.mark.parametrize("payload_size", [0, 1, 55, 64, 100, 5000])
def test_tag_is_truncated_hmac_sha256(key_size: int, payload_size: int) -> None:
    key = hashlib.sha256(str(key_size).encode()).digest() * 8
    key = key[:key_size]
    payload = bytes(range(256)) * (payload_size // 256 + 1)
    payload = payload[:payload_size]
    expected = hmac.digest(key, payload, "sha256")[:SIGNATURE_SIZE]
    mac = Mac(key)
    assert mac.tag(payload) == expected
    assert mac.tag(payload) == expected  # the pads' states are copied, never consumed


def test_keyring_and_authenticator_agree_with_hmac() -> None:
    keyring = Keyring(3)
    signer = keyring.authenticator(2)
    payload = b"a commit's signing bytes"
    signature = signer.sign(payload)
    assert signature == hmac.digest(keyring.secret(2), payload, "sha256")[:SIGNATURE_SIZE]
    assert keyring.mac(2, payload) == signature
    assert keyring.authenticator(9).verify(2, payload, signature)
    assert not keyring.authenticator(9).verify(3, payload, signature)
    assert not keyring.authenticator(9).verify(2, payload + b"!", signature)
