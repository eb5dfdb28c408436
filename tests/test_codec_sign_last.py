"""The codec's fast signing of flat records gives the defined bytes, or declines."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from ledger.codec import CodecError, cached_encoding, decode, sign_last
from pbft.messages import Checkpoint, Commit, PrePrepare, Reply, Request, sign_message


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
    signed = sign_last(blank, sign)
    assert signed == dataclasses.replace(blank, signature=b"\x07" * size)
    assert signed_over == [_packed(blank)]
    if size <= 64 * 1024:
        assert decode(_packed(signed)) is signed
        assert cached_encoding(signed) == _packed(signed)
    else:  # too large to keep: decoded afresh, to an equal value
        assert cached_encoding(signed) is None
        assert decode(_packed(signed)) == signed


def test_declines_what_decoding_would_not_give_back() -> None:
    def sign(_payload: bytes) -> bytes:
        raise AssertionError("nothing may be signed when the fast way declines")

    odd = Commit(True, 2, bytes(32), 3, 1, b"")  # a bool where the codec wants an int
    assert sign_last(odd, sign) is None
    assert sign_last(Checkpoint(4, bytes(32), 1, b"already"), sign) is None
    nested = PrePrepare(0, 1, bytes(32), 0, (Request(1000, 1, b"op", b"s"),), 0, b"")
    assert sign_last(nested, sign) is None


def test_sign_message_falls_back_and_never_remembers_odd_types() -> None:
    odd = Commit(True, 2, bytes(32), 3, 1, b"")
    signed = sign_message(odd, lambda _payload: b"sig")
    assert signed.signature == b"sig" and signed.view is True
    with pytest.raises(CodecError):
        decode(_packed(signed))  # still refused: ``true`` is not an int on the wire


def test_a_signer_returning_non_bytes_gets_its_copy_unremembered() -> None:
    blank = Commit(1, 2, bytes(32), 3, 1, b"")
    signed = sign_last(blank, lambda _payload: bytearray(b"sig"))  # type: ignore[arg-type,return-value]
    assert signed is not None and signed.signature == bytearray(b"sig")
    assert cached_encoding(signed) is None
