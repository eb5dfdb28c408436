"""The validator and committer: every Fabric validation code this ledger gives, end to end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ledger_fixtures import PEERS, Net, network

from ledger.block import ValidationCode
from ledger.codec import decode, encode
from ledger.transaction import Envelope, TxPayload
from ledger.validator import ChannelConfig, validate_block
from msp.msp import at_virtual_ms
from msp.policy import parse as parse_policy


@pytest.fixture
def net() -> Net:
    return Net(network())


def test_valid_transaction_updates_state_and_history(net: Net) -> None:
    tx = net.tx("put", "a", "1")
    assert net.codes(tx.envelope) == ["VALID"]
    for ledger in net.peers.values():
        found = ledger.get_state("kv", "a")
        assert found is not None and found.value == b"1"
        (entry,) = ledger.key_history("kv", "a")
        assert entry.tx_id == tx.tx_id and not entry.is_delete


def test_two_concurrent_read_modify_writes_one_wins(net: Net) -> None:
    net.codes(net.tx("put", "k", "10").envelope)
    first = net.tx("add", "k", "1")
    second = net.tx("add", "k", "2")  # endorsed on the same state: both read version (1, 0)
    assert net.codes(first.envelope, second.envelope) == ["VALID", "MVCC_READ_CONFLICT"]
    value = net.peers[PEERS[0]].get_state("kv", "k")
    assert value is not None and value.value == b"11"


def test_stale_read_across_blocks_conflicts(net: Net) -> None:
    net.codes(net.tx("put", "k", "10").envelope)
    stale = net.tx("add", "k", "5")
    net.codes(net.tx("put", "k", "20").envelope)
    assert net.codes(stale.envelope) == ["MVCC_READ_CONFLICT"]


def test_one_org_endorsement_fails_and_policy(net: Net) -> None:
    client = net.client()
    proposal = client.propose("kv", "put", ("x", "1"), net.now_ms)
    response = net.endorsers[PEERS[0]].process(proposal.signed, net.now_ms)
    assert response.result is not None and response.endorsement is not None
    envelope = client.envelope(proposal, response.result, [response.endorsement])
    assert net.codes(envelope) == ["ENDORSEMENT_POLICY_FAILURE"]
    assert net.peers[PEERS[0]].get_state("kv", "x") is None


def test_resubmitted_transaction_is_a_duplicate(net: Net) -> None:
    tx = net.tx("put", "a", "1")
    assert net.codes(tx.envelope, tx.envelope) == ["VALID", "DUPLICATE_TXID"]
    assert net.codes(tx.envelope) == ["DUPLICATE_TXID"]


def test_tampered_payload_breaks_creator_signature(net: Net) -> None:
    tx = net.tx("put", "a", "1")
    envelope = decode(tx.envelope, Envelope)
    payload = decode(envelope.payload, TxPayload)
    forged = payload.header.__class__(
        payload.header.tx_id,
        payload.header.channel,
        payload.header.chaincode,
        "put",
        ("a", "999"),
        payload.header.timestamp_ms,
        payload.header.creator,
        payload.header.nonce,
    )
    bad = encode(
        Envelope(
            encode(TxPayload(forged, payload.result, payload.endorsements)), envelope.signature
        )
    )
    assert net.codes(bad) == ["BAD_CREATOR_SIGNATURE"]


def test_revoked_client_is_rejected() -> None:
    base = network()
    user = base.signer("User2@org1.example.com")
    revoked = base.replace_org(
        base.org("Org1").revoking(user, when=at_virtual_ms(0) - timedelta(days=1))
    )
    good = Net(base)
    tx = good.tx("put", "r", "1", client=good.client("User2@org1.example.com"))
    strict = Net(revoked)
    assert strict.codes(tx.envelope) == ["BAD_CREATOR_SIGNATURE"]
    assert good.codes(tx.envelope) == ["VALID"]


def test_garbage_items_get_codes_and_do_not_raise(net: Net) -> None:
    assert net.codes(b"\x00garbage", encode(Envelope(b"junk", b""))) == [
        "BAD_PAYLOAD",
        "BAD_PAYLOAD",
    ]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_corrupted_envelope_is_invalid_and_never_raises(net: Net, data: st.DataObject) -> None:
    tx = net.tx("put", "fuzz", "1")
    raw = bytearray(tx.envelope)
    position = data.draw(st.integers(0, 4095)) % len(raw)  # lengths vary with the signature
    raw[position] ^= data.draw(st.integers(1, 255))
    number = net.peers[PEERS[0]].height
    verdict = validate_block(
        number, [bytes(raw)], net.now_ms, net.unwrap, net.config, net.peers[PEERS[0]].state
    )
    assert verdict.codes[0] is not ValidationCode.VALID
    assert not verdict.updates.writes


POLICY_TEXTS = (
    "AND('Org1.member','Org2.member')",
    "OutOf(2, 'Org1.peer', 'Org2.peer', 'Org1.admin')",
    "OR('Org2.admin', AND('Org1.client','Org1.peer'))",
)
SIGNERS = (
    "peer0.org1.example.com",
    "peer1.org1.example.com",
    "peer0.org2.example.com",
    "Admin@org1.example.com",
    "Admin@org2.example.com",
    "User1@org1.example.com",
)


@settings(max_examples=60, deadline=None)
@given(
    text=st.sampled_from(POLICY_TEXTS),
    rounds=st.lists(st.sets(st.sampled_from(SIGNERS)), min_size=1, max_size=6),
)
def test_memoised_policy_verdicts_equal_fresh_evaluation(text: str, rounds: list[set[str]]) -> None:
    """The channel's memo (keyed on endorsers' MSP ids and roles) never changes a verdict."""
    crypto = network()
    policy = parse_policy(text)
    config = ChannelConfig("ch", crypto.msps(), {"kv": policy})
    for names in rounds:
        endorsers = {crypto.signer(name).public() for name in names}
        assert config.endorsed("kv", policy, endorsers) == policy.evaluate(endorsers)
