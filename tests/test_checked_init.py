"""The generated message constructors accept and refuse exactly what the dataclass ones did.

``pbft.checked_init`` replaces ``dataclasses``' ``__init__`` plus a
``__post_init__`` of shape checks; these tests hold it to the checks' old
behaviour: the same fields refused, in the same order, with the same errors,
and frozen instances equal to ones built field by field.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbft.api import Deliver, Send, Tick
from pbft.checked_init import checked
from pbft.messages import (
    SIGNED_TYPES,
    Checkpoint,
    Commit,
    CommittedBatch,
    Prepare,
    PreparedProof,
    Reply,
    Request,
)


def test_every_message_has_a_generated_constructor() -> None:
    for cls in (*SIGNED_TYPES, CommittedBatch, PreparedProof):
        assert cls.__init__.__module__ == "pbft.messages", cls
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


def test_fields_are_stored_in_order_and_stay_frozen() -> None:
    reply = Reply(1, 2, 1003, 4, b"r", b"s")
    assert dataclasses.astuple(reply) == (1, 2, 1003, 4, b"r", b"s")
    assert reply == Reply(view=1, timestamp=2, client=1003, replica=4, result=b"r", signature=b"s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.view = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Reply(-1, 0, 0, 0, b"", b""), "Reply.view must be >= 0, got -1"),
        (lambda: Reply(0, 0, 0, -3, b"", b""), "Reply.replica must be >= 0, got -3"),
        # The first listed field that fails is the one named, as before.
        (lambda: Request(-1, -2, b"", b""), "Request.client must be >= 0, got -1"),
        (lambda: Prepare(0, 1, b"short", 0, 0, b""), "Prepare.digest must be 32 bytes"),
        # Signs are checked before the digest's size.
        (lambda: Checkpoint(-1, b"short", 0, b""), "Checkpoint.seq must be >= 0, got -1"),
    ],
)
def test_bad_fields_are_refused_with_the_old_errors(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        build()  # type: ignore[operator]


def test_arity_and_names_are_the_dataclass_ones() -> None:
    with pytest.raises(TypeError):
        Reply(0, 0, 0, 0, b"")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Reply(0, 0, 0, 0, b"", b"", b"")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Reply(0, 0, 0, 0, b"", sig=b"")  # type: ignore[call-arg]


@given(st.integers(-3, 3), st.integers(-3, 3), st.binary(max_size=40))
def test_refuses_exactly_what_the_post_init_checks_refused(
    view: int, replica: int, digest: bytes
) -> None:
    expected: str | None = None
    if view < 0:
        expected = f"Commit.view must be >= 0, got {view}"
    elif replica < 0:
        expected = f"Commit.replica must be >= 0, got {replica}"
    elif len(digest) != 32:
        expected = "Commit.digest must be 32 bytes"
    if expected is None:
        commit = Commit(view, 1, digest, 0, replica, b"")
        assert (commit.view, commit.digest, commit.replica) == (view, digest, replica)
    else:
        with pytest.raises(ValueError, match=f"^{expected}$"):
            Commit(view, 1, digest, 0, replica, b"")


def test_refuses_classes_it_cannot_serve() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithDefault:
        a: int = 0

    @dataclasses.dataclass(frozen=True, slots=True)
    class Plain:
        a: int

    with pytest.raises(TypeError, match="slots"):
        checked()(NoSlots)
    with pytest.raises(TypeError, match="no defaults"):
        checked()(WithDefault)
    with pytest.raises(TypeError, match="unknown fields"):
        checked(nonneg=("b",))(Plain)


def test_the_host_facing_records_are_generated_too() -> None:
    for cls in (Send, Deliver, Tick):
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
    assert Send(to=3, message=Reply(0, 1, 1003, 3, b"r", b"s")).to == 3
    assert Deliver(5, 2, b"x") == Deliver(now_ms=5, sender=2, data=b"x")
    assert Tick(7).now_ms == 7


WIRE_EXAMPLES = (
    Request(1003, 2, b"op", b"s"),
    Prepare(1, 2, bytes(32), 5, 3, b"s"),
    Commit(1, 2, bytes(32), 5, 3, b"s"),
    Reply(1, 2, 1003, 4, b"r", b"s"),
    Checkpoint(2, bytes(32), 3, b"s"),
)


@pytest.mark.parametrize("message", WIRE_EXAMPLES, ids=lambda m: type(m).__name__)
def test_decoding_runs_the_generated_checks(message: object) -> None:
    """Bytes a Byzantine sender shapes with a negative number or a short digest are refused.

    The codec's compiled decoders fill a record's slots themselves when its
    ``__init__`` is the one ``dataclasses`` wrote; a generated constructor holds
    the checks, so the decoder must call it (a merge once left them skipped).
    """
    import msgpack

    from ledger.codec import CodecError, decode, encode

    wire = msgpack.unpackb(encode(message), use_list=True)
    assert decode(msgpack.packb(wire, use_bin_type=True)) == message
    names = [f.name for f in dataclasses.fields(type(message))]
    for index, (name, value) in enumerate(zip(names, wire[1:], strict=True)):
        bad = list(wire)
        if type(value) is int:
            bad[index + 1] = -1
        elif name == "digest":
            bad[index + 1] = bytes(7)
        else:
            continue
        with pytest.raises(CodecError, match=name):
            decode(msgpack.packb(bad, use_bin_type=True))
