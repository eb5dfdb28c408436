"""The signing shortcuts of issue 17 (round r1) give exactly what the plain ways gave.

- ``Mac`` may hash with CPython's own SHA-256: the tags stay RFC 2104 HMAC-SHA256.
- A checked record's ``construct`` (and ``__init__``, both through the unfrozen
  twin) makes the object the dataclass would, with the same refusals, and the
  record classes cannot be subclassed (a subclass could not take the twin's class).
- ``verify`` looks the memo up before testing the signature's size, which is
  sound because only tags of ``SIGNATURE_SIZE`` bytes ever enter the memo.
"""

from __future__ import annotations

import dataclasses
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.codec import constructor, decode, encode, field_signer
from pbft.api import Send
from pbft.auth import SIGNATURE_SIZE, Keyring, Mac
from pbft.messages import SIGNED_TYPES, CommittedBatch, Prepare, PreparedProof, Reply, signed


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_tags_are_truncated_hmac_sha256(key: bytes, payload: bytes) -> None:
    assert Mac(key).tag(payload) == hmac.digest(key, payload, "sha256")[:SIGNATURE_SIZE]


@given(
    st.integers(min_value=-3, max_value=2**40),
    st.integers(min_value=-3, max_value=2**40),
    st.binary(max_size=40),
)
def test_construct_is_the_class_call(view: int, timestamp: int, result: bytes) -> None:
    make = constructor(Reply)
    assert make is not Reply
    fields = (view, timestamp, 7, 3, result, b"s")
    try:
        expected = Reply(*fields)
    except ValueError as error:
        with pytest.raises(ValueError, match=str(error)):
            make(*fields)
        return
    made = make(*fields)
    assert type(made) is Reply
    assert made == expected
    assert dataclasses.astuple(made) == fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.view = 1  # type: ignore[misc]


def test_construct_checks_sizes_and_unchecked_classes_are_called() -> None:
    with pytest.raises(ValueError, match="digest must be 32 bytes"):
        constructor(Prepare)(0, 1, b"short", 0, 2, b"")
    assert constructor(int) is int
    assert constructor(Send)(3, "m") == Send(3, "m")  # type: ignore[arg-type]


def test_record_classes_are_final() -> None:
    for cls in (*SIGNED_TYPES, CommittedBatch, PreparedProof, Send):
        with pytest.raises(TypeError, match="final record class"):
            type("Sub", (cls,), {})


def test_reply_signer_matches_the_general_way() -> None:
    keyring = Keyring(5)
    sign = keyring.authenticator(2).sign
    fields = (1, 9, 1001, 2, b"result")
    fast = field_signer(Reply)(fields, sign)
    general = signed(Reply, fields, sign)
    assert fast == general == Reply(*fields, sign(encode(Reply(*fields, b""))))
    assert decode(encode(fast)) == fast
    assert field_signer(Reply)((1, 9, 1001, 2, "not bytes"), sign) is None


def test_the_memo_never_holds_a_tag_of_another_size() -> None:
    keyring = Keyring(5)
    bob = keyring.authenticator(2)
    keyring.learn_valid(1, b"payload", b"short")
    assert not bob.verify(1, b"payload", b"short")
    keyring.learn_valid(1, b"payload", bytes(SIGNATURE_SIZE))
    assert bob.verify(1, b"payload", bytes(SIGNATURE_SIZE))  # learned: the memo answers
    assert not bob.verify(True, b"payload", bytes(SIGNATURE_SIZE))  # type: ignore[arg-type]
