"""``Mac.tag`` and ``ModelledAuthenticator.sign`` share one tag computation (issue 17, q1).

Both are compiled from ``pbft.auth._TAG`` (``sign`` writes it out, sparing a
call per message signed), so a signature is exactly the truncated RFC 2104
HMAC-SHA256 under the signer's key, as a ``Mac`` under that key computes it;
signing still counts and enters its verdict, and a forged tag still fails.
"""

from __future__ import annotations

import hmac

from hypothesis import given
from hypothesis import strategies as st

from pbft.auth import SIGNATURE_SIZE, Keyring, Mac, ModelledAuthenticator


@given(st.integers(min_value=0, max_value=40), st.binary(max_size=300))
def test_sign_is_the_macs_tag_and_hmac(principal: int, payload: bytes) -> None:
    keyring = Keyring(9)
    key = keyring.secret(principal)
    signer = keyring.authenticator(principal)
    signature = signer.sign(payload)
    assert signature == Mac(key).tag(payload) == signer.tag(payload)
    assert signature == hmac.digest(key, payload, "sha256")[:SIGNATURE_SIZE]
    assert keyring.sign_count == 1
    assert keyring._verified[principal] == {signature: payload}


def test_signed_is_verified_and_a_forgery_is_not() -> None:
    keyring = Keyring(4)
    alice, bob = keyring.authenticator(1), keyring.authenticator(2)
    signature = alice.sign(b"vote")
    assert bob.verify(1, b"vote", signature)
    assert not bob.verify(2, b"vote", signature)  # under another name
    assert not bob.verify(1, b"vote", bob.sign(b"vote"))  # bob's own key, alice's name
    assert not Keyring(4).authenticator(2).verify(1, b"vote", bytes(SIGNATURE_SIZE))
    assert keyring.verify_count == 3


def test_the_generated_methods_name_their_classes() -> None:
    assert Mac.tag.__qualname__ == "Mac.tag"
    assert ModelledAuthenticator.sign.__qualname__ == "ModelledAuthenticator.sign"
    assert issubclass(ModelledAuthenticator, Mac)
