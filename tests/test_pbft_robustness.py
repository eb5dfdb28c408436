"""Bad input from a peer never raises out of ``step()`` (docs/design.md,
"Bad input from a peer").

Hypothesis feeds replicas and clients random bytes, corrupted encodings of real
protocol messages, and well-signed messages with nonsense field values (what a
Byzantine replica with its own key can send). Every one must be dropped or
handled and, when dropped, counted with a reason.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pbft_harness import Cluster

from ledger.codec import decode, encode
from pbft.api import CLIENT_ID_BASE, Deliver, Tick
from pbft.auth import Keyring
from pbft.client import Client
from pbft.messages import Checkpoint, PrePrepare, signing_bytes, wire_signing_bytes
from pbft.replica import Replica

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def corpus() -> tuple[Cluster, tuple[bytes, ...]]:
    """Every distinct message a small run with a view change and a state transfer produces."""
    c = Cluster(
        n=4,
        settings={
            "batch_size": 2,
            "checkpoint_interval": 2,
            "watermark_window": 4,
            "view_change_timeout_ms": 200,
            "client_retry_ms": 80,
        },
    )
    seen: dict[str, list[bytes]] = {}

    def record(sender: int, to: int, msg: Any) -> bool:
        kept = seen.setdefault(type(msg).__name__, [])
        if msg is not None and len(kept) < 4:
            kept.append(encode(msg))
        return True

    c.filters.append(record)
    c.crash(3)
    c.run_requests(3)
    c.crash(0)
    c.recover(3)
    c.run_requests(3)
    return c, tuple(m for kept in seen.values() for m in kept)


def fresh_replica(c: Cluster, i: int) -> Replica:
    from pbft.memapp import MemoryApplication

    return Replica(i, c.config, c.keyring.authenticator(i), MemoryApplication())


def assert_counted(replica: Replica, before: int) -> None:
    """The step that was just taken added at least one counted outcome."""
    assert sum(replica.stats.values()) > before


@FAST
@given(data=st.binary(max_size=300), sender=st.integers(-5, 2000), target=st.integers(0, 3))
def test_random_bytes_never_raise(data: bytes, sender: int, target: int) -> None:
    c, _ = corpus()
    r = fresh_replica(c, target)
    before = sum(r.stats.values())
    r.step(Deliver(0, sender, data))
    assert_counted(r, before)  # every rejection is counted
    assert any(k.startswith(("drop.", "stash.")) for k in r.stats)


@FAST
@given(index=st.integers(0, 10**6), flips=st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
def test_corrupted_real_messages_never_raise(index: int, flips: list[int]) -> None:
    c, messages = corpus()
    data = bytearray(messages[index % len(messages)])
    for pos in flips:
        data[pos % len(data)] ^= 1 + pos % 255
    for r in (fresh_replica(c, 1), c.replicas[2]):
        r.step(Deliver(c.now, 0, bytes(data)))
    client = Client(CLIENT_ID_BASE, c.config, c.keyring.authenticator(CLIENT_ID_BASE))
    client.submit(b"x", 0)
    client.step(Deliver(1, 0, bytes(data)))


@FAST
@given(
    index=st.integers(0, 10**6),
    field_pick=st.integers(0, 50),
    value=st.one_of(st.integers(0, 2**40), st.binary(max_size=40), st.just(())),
    target=st.integers(0, 3),
)
def test_well_signed_nonsense_never_raises(
    index: int, field_pick: int, value: Any, target: int
) -> None:
    """A Byzantine replica signs whatever it likes with its own key."""
    c, messages = corpus()
    msg: Any = decode(messages[index % len(messages)])
    fields = [f.name for f in dataclasses.fields(msg) if f.name != "signature"]
    name = fields[field_pick % len(fields)]
    try:
        bent = dataclasses.replace(msg, **{name: value})
        data = encode(bent)
    except (TypeError, ValueError):
        return  # not constructible or not encodable: it could never reach the wire
    signer = getattr(bent, "replica", getattr(bent, "client", 0))
    if isinstance(signer, int):
        bent = dataclasses.replace(bent, signature=b"")
        signature = Keyring(c.seed).authenticator(signer).sign(encode(bent))
        data = encode(dataclasses.replace(bent, signature=signature))
    r = fresh_replica(c, target)
    r.step(Deliver(0, 1, data))
    r.step(Tick(10**7))
    c.replicas[target].step(Deliver(c.now, 1, data))


@FAST
@given(seq=st.integers(0, 2**63), sig=st.binary(max_size=300), replica=st.integers(0, 2**31))
def test_wire_signing_bytes_equals_reencoding(seq: int, sig: bytes, replica: int) -> None:
    cp = Checkpoint(seq, b"\x07" * 32, replica, sig)
    assert wire_signing_bytes(encode(cp), sig) == signing_bytes(cp)


def test_wire_signing_bytes_with_large_nested_message() -> None:
    _, messages = corpus()
    for data in messages:
        msg: Any = decode(data)
        assert wire_signing_bytes(data, msg.signature) == signing_bytes(msg)
    big = PrePrepare(0, 1, b"\x00" * 32, 0, (), 0, b"\x01" * 70000)
    assert wire_signing_bytes(encode(big), big.signature) == signing_bytes(big)


def test_corpus_covers_every_protocol_message() -> None:
    _, messages = corpus()
    kinds = {type(decode(m)).__name__ for m in messages}
    assert {"Request", "PrePrepare", "Prepare", "Commit", "Reply", "Checkpoint"} <= kinds
    assert {"ViewChange", "NewView", "FetchState", "StateChunk", "Status"} <= kinds
