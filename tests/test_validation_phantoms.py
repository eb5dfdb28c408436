"""Phantom reads at the edges of a range, against state and this block's earlier writes.

A range read is re-run at validation over the committed state overlaid with the
writes of the block's earlier valid transactions. These cases sit on each edge
of that overlay: a write at the start key (inside) and at the end key (outside),
before the start, past an open end, in another namespace, a delete (also of a
key that does not exist), a range the contract stopped reading early. Each is one
transaction after one earlier writer in the same block; the state holds kv keys
a, b, c and other:b2. Validation must give a code, never raise, whatever the block.
"""

from __future__ import annotations

import pytest

from ledger.block import ValidationCode
from ledger.peer import PeerLedger
from ledger.transaction import KVRead, KVWrite, RangeRead, Version
from ledger.validator import ChannelConfig
from msp.policy import parse as parse_policy
from sim.explore.hostile import CHANNEL, POLICY, HostileChannel, serialized
from sim.explore.hostile_identities import NOW_MS, identity_pool

V = ValidationCode
A, B, C = (KVRead(key, Version(1, 0)) for key in "abc")


def tx(label: str, chaincode: str = "kv", **result: object) -> bytes:
    """A transaction of ``chaincode`` with the given result fields, honestly endorsed."""
    channel = HostileChannel(identity_pool())
    user = identity_pool().user("Org1")
    header = channel.header(serialized(user), label, chaincode=chaincode, key=label)
    outcome = channel.result(header, namespace=chaincode, **result)  # type: ignore[arg-type]
    endorsers = (identity_pool().peer("Org1"), identity_pool().peer("Org2"))
    return channel.seal(header, outcome, channel.endorse(outcome, *endorsers), user)


def writes(*keys: str, delete: bool = False) -> tuple[KVWrite, ...]:
    return tuple(KVWrite(k, b"" if delete else b"v", delete) for k in keys)


def ledger() -> PeerLedger:
    policy = parse_policy(POLICY)
    config = ChannelConfig(CHANNEL, identity_pool().manager(), {"kv": policy, "other": policy})
    peer = PeerLedger(config, lambda item: item)
    seeded = peer.commit(
        1,
        (tx("seed", writes=writes("a", "b", "c")), tx("seed2", "other", writes=writes("b2"))),
        timestamp_ms=NOW_MS,
    )
    assert [c.name for c in seeded.codes] == ["VALID", "VALID"]
    return peer


CASES = [
    # (earlier writer: chaincode, writes; the range read; expected code of the reader)
    ("nothing written", "kv", (), RangeRead("a", "c", True, (A, B)), V.VALID),
    ("open end, all", "kv", (), RangeRead("a", "", True, (A, B, C)), V.VALID),
    (
        "insert inside",
        "kv",
        writes("b5"),
        RangeRead("a", "c", True, (A, B)),
        V.PHANTOM_READ_CONFLICT,
    ),
    (
        "rewrite start",
        "kv",
        writes("a"),
        RangeRead("a", "c", True, (A, B)),
        V.PHANTOM_READ_CONFLICT,
    ),
    ("write at end", "kv", writes("c"), RangeRead("a", "c", True, (A, B)), V.VALID),
    ("write before", "kv", writes("0"), RangeRead("a", "c", True, (A, B)), V.VALID),
    ("other namespace", "other", writes("b3"), RangeRead("a", "c", True, (A, B)), V.VALID),
    (
        "delete inside",
        "kv",
        writes("b", delete=True),
        RangeRead("a", "c", True, (A, B)),
        V.PHANTOM_READ_CONFLICT,
    ),
    (
        "delete absent key",
        "kv",
        writes("b7", delete=True),
        RangeRead("a", "c", True, (A, B)),
        V.VALID,
    ),
    ("delete outside", "kv", writes("c", delete=True), RangeRead("a", "c", True, (A, B)), V.VALID),
    (
        "past open end",
        "kv",
        writes("zz"),
        RangeRead("a", "", True, (A, B, C)),
        V.PHANTOM_READ_CONFLICT,
    ),
    ("stopped early", "kv", writes("b5"), RangeRead("a", "", False, (A, B)), V.VALID),
    (
        "early, insert",
        "kv",
        writes("a5"),
        RangeRead("a", "", False, (A, B)),
        V.PHANTOM_READ_CONFLICT,
    ),
]


@pytest.mark.parametrize(
    ("name", "chaincode", "written", "ranged", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_range_read_after_an_earlier_write_in_the_block(
    name: str, chaincode: str, written: tuple[KVWrite, ...], ranged: RangeRead, expected: V
) -> None:
    """Each edge of the overlay, one case each.

    Defeats mutant ``phantom-check-assumes-deleted-key-exists`` (an earlier delete of a
    key that is not in the state crashes the range re-run), which mutmut found.
    """
    peer = ledger()
    items = (
        tx("writer", chaincode, writes=written or writes("00")),
        tx("reader", range_reads=(ranged,), writes=writes("r")),
    )
    try:
        result = peer.commit(2, items, timestamp_ms=NOW_MS)
    except Exception as exc:  # a peer's block must never knock validation over
        pytest.fail(f"{name}: validation raised {exc!r}")
    assert [c.name for c in result.codes] == ["VALID", expected.name], name


def test_read_with_wrong_versions_is_a_phantom() -> None:
    """The versions seen are part of the range read, not just the keys."""
    peer = ledger()
    stale = RangeRead("a", "c", True, (KVRead("a", Version(1, 1)), B))
    result = peer.commit(
        2, (tx("reader", range_reads=(stale,), writes=writes("r")),), timestamp_ms=NOW_MS
    )
    assert [c.name for c in result.codes] == ["PHANTOM_READ_CONFLICT"]
