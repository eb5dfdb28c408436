"""The canonical codec: round trips, one encoding per value, and every rejection path."""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.codec import CodecError, decode, encode, record


@record(190)
@dataclass(frozen=True, slots=True)
class Leaf:
    flag: bool
    label: str


@record(191)
@dataclass(frozen=True, slots=True)
class Node:
    number: int
    blob: bytes
    names: tuple[str, ...]
    leaf: Leaf | None
    leaves: tuple[Leaf, ...]


@record(192)
@dataclass(frozen=True, slots=True)
class Positive:
    value: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError("value must be positive")


leaves = st.builds(Leaf, st.booleans(), st.text(max_size=8))
nodes = st.builds(
    Node,
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.binary(max_size=64),
    st.tuples(st.text(max_size=5)) | st.lists(st.text(max_size=5), max_size=4).map(tuple),
    st.none() | leaves,
    st.lists(leaves, max_size=3).map(tuple),
)


@pytest.mark.slow
@given(nodes)
def test_round_trip_is_identity(node: Node) -> None:
    assert decode(encode(node)) == node


@given(nodes)
def test_same_value_same_bytes(node: Node) -> None:
    rebuilt = Node(node.number, bytes(node.blob), tuple(node.names), node.leaf, node.leaves)
    assert encode(rebuilt) == encode(node)


@given(nodes)
def test_encoding_is_a_tagged_array_never_a_map(node: Node) -> None:
    raw = msgpack.unpackb(encode(node), raw=False)
    assert isinstance(raw, list)
    assert raw[0] == 191
    assert len(raw) == 6


@given(nodes, st.binary(min_size=1, max_size=4))
def test_trailing_bytes_rejected(node: Node, tail: bytes) -> None:
    with pytest.raises(CodecError) as err:
        decode(encode(node) + tail)
    assert err.value.reason in {"trailing-bytes", "malformed"}


@given(st.binary(max_size=200))
def test_garbage_raises_only_codec_error(data: bytes) -> None:
    """Any other exception type escaping would fail this test."""
    try:
        decode(data)
    except CodecError as exc:
        assert exc.reason


def _raw(obj: object) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_raw({"a": 1}), "map"),
        (_raw([9999, 1]), "unknown-tag"),
        (_raw(["x", 1]), "bad-tag"),
        (_raw([]), "not-a-record"),
        (_raw([190, True]), "arity"),
        (_raw([190, 1, "x"]), "field-type"),  # int where bool is declared
        (_raw([190, True, b"x"]), "field-type"),  # bytes where str is declared
        (_raw([191, 1, "x", [], None, []]), "field-type"),  # str where bytes is declared
        (_raw([191, 1, b"", [], [192, 5], []]), "field-type"),  # wrong record type nested
        (_raw([191, 1, b"", [], None, [[192, 5]]]), "field-type"),  # ... in a tuple of records
        (_raw([191, 1, b"", [], None, [[190, 1, "x"]]]), "field-type"),  # bad field in the tuple
        (_raw([191, 1, b"", [], None, "x"]), "field-type"),  # a string where a tuple is declared
        (_raw([192, 0]), "invalid"),  # __post_init__ refuses it
        (b"\xc1", "malformed"),
        (_raw([190, True, "a"])[:-1], "malformed"),
    ],
)
def test_rejections_carry_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(CodecError) as err:
        decode(raw)
    assert err.value.reason == reason


def test_decoded_records_are_the_records_the_class_makes() -> None:
    """Compiled decoders fill a record's slots directly: the object must still be one the
    class would make (equal, same hash, frozen, its ``__post_init__`` run)."""
    made = Node(7, b"b", ("n",), Leaf(True, "x"), (Leaf(False, ""), Leaf(True, "y")))
    decoded = decode(encode(made))
    assert decoded == made and hash(decoded) == hash(made) and repr(decoded) == repr(made)
    assert type(decoded.leaves) is tuple and type(decoded.leaves[0]) is Leaf
    with pytest.raises(AttributeError):
        decoded.number = 8  # type: ignore[misc]
    assert decode(encode(Positive(3))) == Positive(3)
    with pytest.raises(CodecError, match="value must be positive"):
        decode(_raw([192, -1]))


def test_non_minimal_integer_is_not_canonical() -> None:
    # 0xcd 0x00 0x05 is the integer 5 written as uint16: valid msgpack, not canonical.
    padded = b"\x92\xcc\xc0\xcd\x00\x05"
    assert msgpack.unpackb(padded) == [192, 5]
    with pytest.raises(CodecError) as err:
        decode(padded)
    assert err.value.reason == "non-canonical"


def test_size_limit() -> None:
    node = Node(1, b"x" * 1000, (), None, ())
    data = encode(node)
    assert decode(data, max_size=len(data)) == node
    with pytest.raises(CodecError) as err:
        decode(data, max_size=len(data) - 1)
    assert err.value.reason == "too-large"


def test_expected_type_enforced() -> None:
    data = encode(Leaf(True, "x"))
    assert decode(data, Leaf) == Leaf(True, "x")
    with pytest.raises(CodecError) as err:
        decode(data, Node)
    assert err.value.reason == "unexpected-type"


def test_invalid_utf8_rejected() -> None:
    data = b"\x93\xcc\xbe\xc3\xa1\xff"
    with pytest.raises(CodecError) as err:
        decode(data)
    assert err.value.reason == "bad-utf8"


def test_unregistered_and_floats_refused_on_encode() -> None:
    @dataclass(frozen=True, slots=True)
    class Loose:
        x: float

    with pytest.raises(TypeError):
        encode(Loose(1.0))
    with pytest.raises(TypeError):
        record(193)(Loose)
        encode(Loose(1.0))


def test_registration_requires_frozen_slots_and_unique_tag() -> None:
    @dataclass
    class Mutable:
        x: int

    with pytest.raises(TypeError):
        record(194)(Mutable)

    @dataclass(frozen=True, slots=True)
    class Other:
        x: int

    with pytest.raises(TypeError):
        record(190)(Other)
