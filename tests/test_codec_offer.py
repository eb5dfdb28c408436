"""The codec's "remember these bytes" code lives in one place.

``_remember`` (an object's bytes, for encoding) and ``_offer`` (that and the
bytes' object, for decoding) are the only code that fills the caches, and the
generated field signer calls ``_offer``. So signing a message, offering its
bytes by hand and decoding them all leave the caches in the same state, and
each empties a full cache the same way.
"""

from __future__ import annotations

import pytest

from ledger import codec
from ledger.codec import cached_encoding, decode, encode, field_signer, remember_decoding
from pbft.auth import Keyring
from pbft.messages import Prepare, Reply


def _reply(result: bytes, signature: bytes = b"") -> Reply:
    return Reply(1, 2, 3, 4, result, signature)


def test_the_signer_remembers_exactly_what_offer_would() -> None:
    codec.forget_everything()
    sign = Keyring(5).authenticator(4).sign
    made = field_signer(Reply)((1, 2, 3, 4, b"result"), sign)
    data = codec._encode_new(_reply(b"result", made.signature), codec._KEEP)
    signed_entries = (dict(codec._decoded), dict(codec._encoded), dict(codec._encoded_objects))
    assert signed_entries == ({data: made}, {id(made): data}, {id(made): made})
    assert decode(data) is made and cached_encoding(made) == data

    codec.forget_everything()
    codec._offer(made, data)
    assert (dict(codec._decoded), dict(codec._encoded), dict(codec._encoded_objects)) == (
        signed_entries
    )


def test_decoding_and_remember_decoding_offer_the_bytes_both_ways() -> None:
    codec.forget_everything()
    data = encode(_reply(b"x", b"s"))
    codec.forget_everything()
    value = decode(data)
    assert codec._decoded == {data: value}
    assert cached_encoding(value) is data

    codec.forget_everything()
    other = _reply(b"y", b"t")
    other_data = encode(other)  # encode offers through remember_decoding
    assert decode(other_data) is other and cached_encoding(other) is other_data
    codec.forget_everything()
    remember_decoding(other, other_data)
    assert decode(other_data) is other and cached_encoding(other) is other_data


def test_offer_and_remember_empty_a_full_cache_before_adding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec.forget_everything()
    monkeypatch.setattr(codec, "_DECODED_CACHE_SIZE", 2)
    monkeypatch.setattr(codec, "_ENCODED_CACHE_SIZE", 3)
    replies = [_reply(b"%d" % k, b"s") for k in range(4)]
    for reply in replies:
        codec._offer(reply, codec._encode_new(reply, codec._KEEP))
    # _decoded: 2 entries, emptied at the third, then 2 again; _encoded: 3, emptied, then 1.
    assert list(codec._decoded.values()) == replies[2:]
    assert list(codec._encoded_objects.values()) == replies[3:]
    codec._remember(replies[0], b"bytes")
    assert list(codec._encoded_objects.values()) == replies[3:] + replies[:1]
    codec.forget_everything()


def test_a_signed_vote_is_sent_and_received_as_one_object() -> None:
    codec.forget_everything()
    sign = Keyring(6).authenticator(2).sign
    vote = field_signer(Prepare)((0, 1, bytes(32), 5, 2), sign)
    data = encode(vote)
    assert data == codec._encode_new(vote, codec._KEEP)
    assert decode(data) is vote
