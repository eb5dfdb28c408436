"""Decoding work the codec does not repeat: a nested record's bytes, once packed, decode to it."""

from __future__ import annotations

from ledger import codec
from ledger.codec import decode, encode
from pbft.messages import PrePrepare, Request


def test_a_request_taken_from_a_pre_prepare_decodes_to_itself() -> None:
    requests = (Request(1000, 1, b"op-a", b"s"), Request(1001, 1, b"op-b", b"s"))
    expected = encode(Request(1000, 1, b"op-a", b"s"))
    data = encode(PrePrepare(0, 1, bytes(32), 5, requests, 0, b""))
    codec.forget_everything()  # as a peer gets it: bytes this process never encoded
    received = decode(bytes(data))
    nested = received.requests[0]
    item = encode(nested)  # how a block stores it
    assert item == expected
    assert decode(bytes(item), Request) is nested  # read back from the block: not rebuilt


def test_decoding_checks_still_apply_to_reused_bytes() -> None:
    data = encode(PrePrepare(0, 1, bytes(32), 5, (Request(1000, 1, b"op", b"s"),), 0, b""))
    nested = decode(bytes(data)).requests[0]
    item = encode(nested)
    try:
        decode(item, PrePrepare)
    except ValueError as exc:
        assert "unexpected-type" in str(exc)
    else:
        raise AssertionError("a Request's bytes decoded as a PrePrepare")
