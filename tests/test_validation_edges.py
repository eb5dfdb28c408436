"""Validator edges the mutation run found untested.

Deletes take a key out of the state; history records valid transactions only,
also after an invalid one in the same block; the policy memo is kept per
chaincode; chaincodes outside the policy table fall back to the default policy;
an unwrap function that raises is the same as one that finds no envelope; and a
re-signed copy of a committed transaction fails for its signature, not as a
duplicate (the duplicate check applies only to envelopes whose creator is
proven, so a forger cannot make a victim's tx id look used).
"""

from __future__ import annotations

from ledger.codec import decode, encode
from ledger.peer import PeerLedger
from ledger.transaction import Envelope, KVRead, KVWrite, Version
from ledger.validator import ChannelConfig
from msp.policy import parse as parse_policy
from sim.explore.hostile import CHANNEL, POLICY, HostileChannel, serialized
from sim.explore.hostile_identities import NOW_MS, identity_pool

OPEN = "OR('Org1.member','Org2.member')"


def channel() -> HostileChannel:
    return HostileChannel(identity_pool())


def tx(
    label: str,
    chaincode: str = "kv",
    endorsers: tuple[str, ...] = ("Org1", "Org2"),
    **result: object,
) -> bytes:
    """The Org1 user's transaction on ``chaincode`` (its namespace), endorsed by ``endorsers``."""
    c = channel()
    user = identity_pool().user("Org1")
    header = c.header(serialized(user), label, chaincode=chaincode, key=label)
    outcome = c.result(header, namespace=chaincode, **result)  # type: ignore[arg-type]
    signers = tuple(identity_pool().peer(m) for m in endorsers)
    return c.seal(header, outcome, c.endorse(outcome, *signers), user)


def ledger(config: ChannelConfig | None = None) -> PeerLedger:
    return PeerLedger(config or channel().config(), lambda item: item)


def codes(peer: PeerLedger, *items: bytes) -> list[str]:
    return [c.name for c in peer.commit(peer.height, items, timestamp_ms=NOW_MS).codes]


def test_delete_takes_the_key_out_of_the_state() -> None:
    peer = ledger()
    assert codes(peer, tx("put", writes=(KVWrite("k", b"1", False),))) == ["VALID"]
    gone = tx("del", reads=(KVRead("k", Version(1, 0)),), writes=(KVWrite("k", b"", True),))
    assert codes(peer, gone) == ["VALID"]
    assert peer.get_state("kv", "k") is None
    history = peer.key_history("kv", "k")
    assert [entry.is_delete for entry in history] == [False, True]


def test_history_holds_valid_transactions_only_and_all_of_them() -> None:
    """An invalid transaction before a valid one: nothing of the first in the history,
    everything of the second."""
    peer = ledger()
    stale = tx("stale", reads=(KVRead("a", Version(9, 0)),), writes=(KVWrite("a", b"1", False),))
    fine = tx("fine", writes=(KVWrite("b", b"2", False),))
    assert codes(peer, stale, fine) == ["MVCC_READ_CONFLICT", "VALID"]
    assert peer.key_history("kv", "a") == []
    assert [entry.value for entry in peer.key_history("kv", "b")] == [b"2"]


def test_policy_memo_is_per_chaincode() -> None:
    """The same endorsers satisfy one chaincode's policy and not another's, in either order."""
    both, one = parse_policy(POLICY), parse_policy(OPEN)
    config = ChannelConfig(CHANNEL, identity_pool().manager(), {"kv": both, "open": one})
    peer = ledger(config)
    lenient = tx("o", "open", endorsers=("Org1",))
    strict = tx("k", "kv", endorsers=("Org1",))
    assert codes(peer, lenient, strict) == ["VALID", "ENDORSEMENT_POLICY_FAILURE"]
    config = ChannelConfig(CHANNEL, identity_pool().manager(), {"kv": both, "open": one})
    peer = ledger(config)
    assert codes(
        peer, tx("k2", "kv", endorsers=("Org1",)), tx("o2", "open", endorsers=("Org1",))
    ) == [
        "ENDORSEMENT_POLICY_FAILURE",
        "VALID",
    ]


def test_default_policy_covers_chaincodes_without_their_own() -> None:
    config = ChannelConfig(
        CHANNEL, identity_pool().manager(), {"kv": parse_policy(POLICY)}, parse_policy(OPEN)
    )
    peer = ledger(config)
    assert codes(peer, tx("any", "anything", endorsers=("Org2",))) == ["VALID"]
    assert codes(peer, tx("kv", "kv", endorsers=("Org2",))) == ["ENDORSEMENT_POLICY_FAILURE"]


def test_unwrap_that_raises_is_a_nil_envelope() -> None:
    def choking(item: bytes) -> bytes | None:
        raise ValueError("not a request")

    peer = PeerLedger(channel().config(), choking)
    assert codes(peer, b"anything") == ["NIL_ENVELOPE"]


def test_resigned_copy_of_a_committed_transaction_is_a_bad_signature() -> None:
    """Same payload as a committed transaction, signed by another member: the creator check
    fails first, in a later block and in the same block."""
    c = channel()
    header, _result, honest = c.honest_tx("victim", "v")
    forged = resign(honest)
    peer = ledger()
    assert codes(peer, honest, forged) == ["VALID", "BAD_CREATOR_SIGNATURE"]
    assert codes(peer, forged, honest) == ["BAD_CREATOR_SIGNATURE", "DUPLICATE_TXID"]
    assert peer.tx_status(header.tx_id) is not None


def resign(item: bytes) -> bytes:
    envelope = decode(item, Envelope)
    other = identity_pool().user("Org2")
    return encode(Envelope(envelope.payload, other.sign(envelope.payload)))
