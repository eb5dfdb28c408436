"""Bytes for storage: the canonical encoding, not offered to the decoder."""

from __future__ import annotations

from ledger.codec import cached_encoding, decode, encode, encode_unshared
from pbft.messages import Commit, Prepare, PreparedProof, PrePrepare, Request


def _proof(tag: bytes) -> PreparedProof:
    request = Request(1000, 1, b"op" + tag, b"s")
    pp = PrePrepare(0, 1, bytes(32), 0, (request,), 0, b"pp")
    return PreparedProof(pp, (Prepare(0, 1, bytes(32), 0, 2, b"p2"),))


def test_same_bytes_as_encode_but_nothing_remembered() -> None:
    stored = _proof(b"a")
    data = encode_unshared(stored)
    assert data == encode(_proof(b"a"))
    assert cached_encoding(stored) is None
    back = decode(data)
    assert back == stored and back is not stored


def test_known_bytes_are_reused() -> None:
    vote = Commit(0, 1, bytes(32), 0, 3, b"sig")
    data = encode(vote)
    assert encode_unshared(vote) is data
