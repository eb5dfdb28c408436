"""The hot-path shortcuts give exactly the answers of the slow paths they replace.

Each shortcut (spliced encoding, known bytes per object, decoding answered
from what was encoded here, signing without re-encoding, the HMAC
verification memo, the fault-free network path) is compared with a
straightforward reference computed independently of it.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.codec import (
    CodecError,
    cached_encoding,
    decode,
    encode,
    encode_replacing_last,
    record,
    remember_decoding,
)
from pbft.auth import Keyring
from pbft.messages import (
    Commit,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    Request,
    ViewChange,
    sign_message,
    signed_wire,
    signing_bytes,
    wire_signing_bytes,
    with_signature,
)
from sim.scenario.model import Latency
from sim.world.network import LinkFault, Network


@record(193)
@dataclass(frozen=True, slots=True)
class Pair:
    left: int
    right: tuple[int, str]


@record(194)
@dataclass(frozen=True, slots=True)
class Holder:
    pairs: tuple[Pair, ...]
    one: Pair | None
    nested: tuple[tuple[int, Pair], ...]
    tail: bytes


def reference(value: Any) -> bytes:
    """The canonical bytes by the definition: ``[tag, fields...]`` packed in one go."""

    def wire(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            tags = {
                cls: tag for tag, cls in __import__("ledger.codec").codec.registered_tags().items()
            }
            return [tags[type(v)], *[wire(getattr(v, f.name)) for f in dataclasses.fields(v)]]
        if isinstance(v, (tuple, list)):
            return [wire(x) for x in v]
        return v

    packed: bytes = msgpack.packb(wire(value), use_bin_type=True)
    return packed


small = st.integers(min_value=0, max_value=2**40)
blobs = st.binary(max_size=40)
digests = st.binary(min_size=32, max_size=32)
requests = st.builds(Request, small, small, blobs, blobs)
pre_prepares = st.builds(
    PrePrepare,
    small,
    small,
    digests,
    small,
    st.lists(requests, max_size=4).map(tuple),
    small,
    blobs,
)
prepares = st.builds(Prepare, small, small, digests, small, small, blobs)
proofs = st.builds(PreparedProof, pre_prepares, st.lists(prepares, max_size=4).map(tuple))
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
pairs = st.builds(Pair, ints, st.tuples(ints, st.text(max_size=5)))
holders = st.builds(
    Holder,
    st.lists(pairs, max_size=3).map(tuple),
    st.none() | pairs,
    st.lists(st.tuples(ints, pairs), max_size=3).map(tuple),
    blobs,
)
# Three levels of records none of whose bytes are known: each is pieced from its parts.
view_changes = st.builds(
    ViewChange, small, small, st.just(()), st.lists(proofs, max_size=2).map(tuple), small, blobs
)
records = st.one_of(requests, pre_prepares, prepares, proofs, holders, view_changes)


@settings(max_examples=150, deadline=None)
@given(records)
def test_encoding_matches_the_definition_fresh_and_after_a_round_trip(value: Any) -> None:
    data = encode(value)
    assert data == reference(value)
    back: Any = decode(data)
    assert back == value
    assert encode(back) == data
    # Parts of a decoded value are known too, and must be their own canonical bytes.
    for field in dataclasses.fields(back):
        part = getattr(back, field.name)
        if dataclasses.is_dataclass(part):
            assert encode(part) == reference(part)


@settings(max_examples=100, deadline=None)
@given(st.one_of(requests, pre_prepares, prepares), blobs)
def test_signing_bytes_and_signed_bytes_match_the_definition(
    message: Any, signature: bytes
) -> None:
    blank = dataclasses.replace(message, signature=b"")
    assert encode_replacing_last(message, b"") == reference(blank)
    assert signing_bytes(message) == reference(blank)
    signed = with_signature(blank, signature)
    assert signed == dataclasses.replace(message, signature=signature)
    assert signed_wire(reference(blank), signature) == reference(signed)
    assert wire_signing_bytes(reference(signed), signature) == reference(blank)


def test_sign_message_signs_the_blank_encoding_and_knows_the_signed_bytes() -> None:
    seen: list[bytes] = []

    def sign(payload: bytes) -> bytes:
        seen.append(payload)
        return b"s" * 300  # long enough to need a two-byte bin header

    unsigned = Commit(1, 2, bytes(32), 3, 1, b"")
    signed = sign_message(unsigned, sign)
    assert seen == [reference(unsigned)]
    assert signed == dataclasses.replace(unsigned, signature=b"s" * 300)
    assert cached_encoding(signed) == reference(signed)
    assert decode(reference(signed)) is signed  # receivers share the sender's object


def test_decoding_is_never_answered_for_values_with_non_canonical_types() -> None:
    # bool is an int to Python but not to the codec: the bytes hold ``true``.
    odd = Request(True, 1, b"op", b"")
    data = encode(odd)
    with pytest.raises(CodecError) as err:
        decode(data)
    assert err.value.reason == "field-type"
    # A list where the type says tuple encodes the same, but decoding gives a tuple.
    inner = Request(1, 1, b"op", b"")
    listy = PrePrepare(0, 1, bytes(32), 0, [inner], 0, b"")  # type: ignore[arg-type]
    back: PrePrepare = decode(encode(listy))
    assert (
        back is not listy
        and type(back.requests) is tuple
        and back == PrePrepare(0, 1, bytes(32), 0, (inner,), 0, b"")
    )
    # remember_decoding itself refuses too.
    remember_decoding(odd, b"\x94\x01\xc3\x01\xc4\x00")
    with pytest.raises(CodecError):
        decode(b"\x94\x01\xc3\x01\xc4\x00")


def test_objects_are_told_apart_by_identity_not_equality() -> None:
    first = Reply(0, 1, 2, 3, b"result", b"sig")
    twin = Reply(0, 1, 2, 3, b"result", b"sig")
    assert encode(first) == encode(twin) == reference(first)
    other = Reply(0, 1, 2, 3, b"other", b"sig")
    assert encode(other) == reference(other) != encode(first)


def test_view_change_with_known_parts_splices_to_the_same_bytes() -> None:
    rng = random.Random(7)
    reqs = tuple(Request(k, k, rng.randbytes(20), rng.randbytes(16)) for k in range(3))
    pp: PrePrepare = decode(encode(PrePrepare(1, 5, bytes(32), 9, reqs, 1, b"x")))
    preps: tuple[Prepare, ...] = tuple(
        decode(encode(Prepare(1, 5, bytes(32), 9, r, b"y"))) for r in (2, 3)
    )
    vc = ViewChange(2, 0, (), (PreparedProof(pp, preps),), 3, b"")
    assert encode(vc) == reference(vc)
    assert encode_replacing_last(vc, b"zz") == reference(dataclasses.replace(vc, signature=b"zz"))


def test_keyring_memo_keeps_every_answer() -> None:
    keyring = Keyring(5)
    alice, bob = keyring.authenticator(1), keyring.authenticator(2)
    payload = b"payload"
    good = alice.sign(payload)
    assert bob.verify(1, payload, good) and bob.verify(1, payload, good)
    assert not bob.verify(2, payload, good)  # right bytes, wrong signer
    assert not bob.verify(1, payload + b"!", good)
    forged = bytes(16)
    assert not bob.verify(1, payload, forged) and not bob.verify(1, payload, forged)
    assert keyring.verify_count == 6  # every check is counted, memo or not


@pytest.mark.parametrize(
    ("latency", "plain"),
    [
        (Latency(kind="fixed", min_ms=2.0, max_ms=2.0), True),
        (Latency(kind="uniform", min_ms=1.0, max_ms=9.0), True),
        (Latency(kind="fixed", min_ms=2.0, max_ms=2.0, drop_rate=0.1), False),
        (Latency(kind="fixed", min_ms=2.0, max_ms=2.0, duplicate_rate=0.1), False),
        (Latency(kind="uniform", min_ms=1.0, max_ms=9.0, reorder=False), False),
    ],
)
def test_plain_network_draws_what_route_would(latency: Latency, plain: bool) -> None:
    routed = Network(latency, random.Random(3), 4)
    drawn = Network(latency, random.Random(3), 4)
    assert routed.plain is plain
    if plain:
        for k in range(50):
            now = k * 0.7
            assert routed.route(0, 1 + k % 3, now) == ([now + drawn.latency()], None)
    routed.start_link_fault(1, LinkFault(0, 1, 0.0, 1.0))
    assert not routed.plain
    routed.end_link_fault(1, 0, 1)
    routed.start_partition(2, ((0,), (1,)))
    assert not routed.plain
