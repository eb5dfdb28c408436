"""The codec's fast signing of flat records gives the defined bytes, or declines."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from ledger.codec import CodecError, cached_encoding, decode, sign_fields
from pbft.messages import Checkpoint, Commit, PrePrepare, Reply, Request, sign_message, signed


def _packed(message: object) -> bytes:
    fields = [getattr(message, f.name) for f in dataclasses.fields(message)]  # type: ignore[arg-type]
    tag = {Reply: 5, Commit: 4, Checkpoint: 6}[type(message)]
    packed: bytes = msgpack.packb([tag, *fields], use_bin_type=True)
    return packed


@pytest.mark.parametrize("size", [0, 16, 255, 256, 70000])
def test_signed_copy_and_its_bytes_are_the_definition(size: int) -> None:
    signed_over: list[bytes] = []

    def sign(payload: bytes) -> bytes:
        signed_over.append(payload)
        return b"\x07" * size

    blank = Reply(2, 9, 1003, 1, b"result", b"")
    message = sign_fields(Reply, (2, 9, 1003, 1, b"result"), sign)
    assert message == dataclasses.replace(blank, signature=b"\x07" * size)
    assert signed_over == [_packed(blank)]
    if size <= 64 * 1024:
        assert decode(_packed(message)) is message
        assert cached_encoding(message) == _packed(message)
    else:  # too large to keep: decoded afresh, to an equal value
        assert cached_encoding(message) is None
        assert decode(_packed(message)) == message


def test_declines_what_decoding_would_not_give_back() -> None:
    def sign(_payload: bytes) -> bytes:
        raise AssertionError("nothing may be signed when the fast way declines")

    # a bool where the codec wants an int, a field too many or too few, records inside
    assert sign_fields(Commit, (True, 2, bytes(32), 3, 1), sign) is None
    assert sign_fields(Checkpoint, (4, bytes(32), 1, b"extra"), sign) is None
    assert sign_fields(Checkpoint, (4, bytes(32)), sign) is None
    batch = (Request(1000, 1, b"op", b"s"),)
    assert sign_fields(PrePrepare, (0, 1, bytes(32), 0, batch, 0), sign) is None


@pytest.mark.parametrize("how", ["signed", "sign_message"])
def test_odd_types_fall_back_and_are_never_remembered(how: str) -> None:
    def sign(_payload: bytes) -> bytes:
        return b"sig"

    if how == "signed":
        message = signed(Commit, (True, 2, bytes(32), 3, 1), sign)
    else:
        message = sign_message(Commit(True, 2, bytes(32), 3, 1, b""), sign)
    assert message.signature == b"sig" and message.view is True
    with pytest.raises(CodecError):
        decode(_packed(message))  # still refused: ``true`` is not an int on the wire


def test_signed_equals_signing_the_built_message() -> None:
    def sign(payload: bytes) -> bytes:
        return payload[-6:-2] * 4

    fields = (3, 4, bytes(range(32)), 5, 2)
    direct = signed(Commit, fields, sign)
    built = sign_message(Commit(*fields, b""), sign)
    assert direct == built and cached_encoding(direct) == _packed(built)
    nested = (0, 1, bytes(32), 0, (Request(1000, 1, b"op", b"s"),), 0)
    assert signed(PrePrepare, nested, sign) == sign_message(PrePrepare(*nested, b""), sign)
    with pytest.raises(ValueError):
        signed(Commit, (-1, 4, bytes(32), 5, 2), sign)  # construction checks still run


def test_a_signer_returning_non_bytes_gets_its_copy_unremembered() -> None:
    def sign(_payload: bytes) -> bytes:
        return bytearray(b"sig")  # type: ignore[return-value]

    message = sign_fields(Commit, (1, 2, bytes(32), 3, 1), sign)
    assert message is not None and message.signature == bytearray(b"sig")
    assert cached_encoding(message) is None
