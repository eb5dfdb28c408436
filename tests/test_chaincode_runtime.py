"""Simulation and endorsement: captured read-write sets, ranges, composite keys, history, errors."""

from __future__ import annotations

import pytest
from test_ledger_fixtures import PEERS, Net, network

from chaincode.shim import Contract, ContractError, Stub, register, transaction
from ledger.transaction import STATUS_OK
from sim.fabric.sdk import EndorsementFailed


@register
class Registry(Contract):
    """A test contract using composite keys and ranges."""

    name = "registry-test"

    @transaction
    def enrol(self, stub: Stub, org: str, member: str) -> bytes:
        stub.put_state(stub.create_composite_key("member", [org, member]), member.encode())
        return b""

    @transaction
    def members(self, stub: Stub, org: str) -> bytes:
        found = []
        for key, _ in stub.get_state_by_partial_composite_key("member", [org]):
            _, parts = stub.split_composite_key(key)
            found.append("/".join(parts))
        return ",".join(found).encode()

    @transaction
    def first(self, stub: Stub) -> bytes:
        """Reads only the first simple key of the whole range, then stops."""
        for key, _ in stub.get_state_by_range("", ""):
            return key.encode()
        return b""

    @transaction
    def count(self, stub: Stub, start: str, end: str) -> bytes:
        return str(sum(1 for _ in stub.get_state_by_range(start, end))).encode()

    @transaction
    def put(self, stub: Stub, key: str, value: str) -> bytes:
        stub.put_state(key, value.encode())
        return b""

    @transaction
    def swap_read(self, stub: Stub, key: str) -> bytes:
        """Writes then reads: Fabric semantics say the read sees committed state only."""
        stub.put_state(key, b"new")
        seen = stub.get_state(key)
        return b"none" if seen is None else seen

    @transaction
    def explode(self, stub: Stub) -> bytes:
        raise RuntimeError("boom")


@pytest.fixture
def net() -> Net:
    n = Net(network())
    n.config.policies["registry-test"] = n.policy  # type: ignore[index]
    return n


def call(net: Net, function: str, *args: str) -> tuple[bytes, str]:
    client = net.client()
    proposal = client.propose("registry-test", function, args, net.now_ms)
    tx = client.endorse(proposal, [net.endorsers[p] for p in PEERS], net.policy, net.now_ms)
    return tx.payload, tx.envelope.hex()


def commit(net: Net, *functions: tuple[str, ...]) -> list[str]:
    envelopes = [bytes.fromhex(call(net, f[0], *f[1:])[1]) for f in functions]
    return net.codes(*envelopes)


def test_composite_keys_are_found_by_partial_key_and_split(net: Net) -> None:
    assert (
        commit(
            net, ("enrol", "org1", "alice"), ("enrol", "org1", "bob"), ("enrol", "org2", "carol")
        )
        == ["VALID"] * 3
    )
    payload, _ = call(net, "members", "org1")
    assert payload == b"org1/alice,org1/bob"


def test_simple_ranges_skip_composite_keys(net: Net) -> None:
    commit(net, ("enrol", "org1", "alice"), ("put", "b", "1"), ("put", "a", "1"))
    assert call(net, "first")[0] == b"a"
    assert call(net, "count", "", "")[0] == b"2"
    assert call(net, "count", "a", "b")[0] == b"1"


def test_a_key_inserted_into_a_read_range_is_a_phantom(net: Net) -> None:
    commit(net, ("put", "b", "1"), ("put", "d", "1"))
    _, counted = call(net, "count", "a", "z")
    assert commit(net, ("put", "c", "1")) == ["VALID"]
    assert net.codes(bytes.fromhex(counted)) == ["PHANTOM_READ_CONFLICT"]


def test_an_early_stop_ignores_keys_after_what_was_read(net: Net) -> None:
    commit(net, ("put", "b", "1"))
    _, first = call(net, "first")
    assert commit(net, ("put", "c", "1")) == ["VALID"]
    assert net.codes(bytes.fromhex(first)) == ["VALID"]
    _, again = call(net, "first")
    assert commit(net, ("put", "a", "1")) == ["VALID"]
    assert net.codes(bytes.fromhex(again)) == ["PHANTOM_READ_CONFLICT"]


def test_reads_do_not_see_own_writes(net: Net) -> None:
    assert call(net, "swap_read", "k")[0] == b"none"


def test_history_is_oldest_first_and_only_valid_changes(net: Net) -> None:
    ids = []
    for value in ("1", "2", "3"):
        tx = net.tx("put", "h", value)
        ids.append(tx.tx_id)
        assert net.codes(tx.envelope) == ["VALID"]
    dropped = net.tx("add", "h", "5")
    net.codes(net.tx("put", "h", "4").envelope)
    assert net.codes(dropped.envelope) == ["MVCC_READ_CONFLICT"]
    deleted = net.tx("delete", "h")
    net.codes(deleted.envelope)
    history = net.peers[PEERS[1]].key_history("kv", "h")
    assert [e.value for e in history] == [b"1", b"2", b"3", b"4", b""]
    assert [e.tx_id for e in history[:3]] == ids
    assert history[-1].is_delete and history[-1].tx_id == deleted.tx_id
    assert dropped.tx_id not in {e.tx_id for e in history}


def test_contract_error_message_reaches_the_client(net: Net) -> None:
    client = net.client()
    proposal = client.propose("kv", "get", ("missing",), net.now_ms)
    response = net.endorsers[PEERS[0]].process(proposal.signed, net.now_ms)
    assert response.status != STATUS_OK and response.endorsement is None
    assert response.message == "no key 'missing'"
    with pytest.raises(EndorsementFailed, match="no key 'missing'") as caught:
        client.endorse(proposal, net.endorsers.values(), net.policy, net.now_ms)
    assert caught.value.kind == "refused"


def test_wrong_argument_count_is_explained(net: Net) -> None:
    proposal = net.client().propose("kv", "put", ("only-key",), net.now_ms)
    response = net.endorsers[PEERS[0]].process(proposal.signed, net.now_ms)
    assert response.message == "kv.put expects 2 argument(s) (key, value), got 1"


def test_unknown_function_and_chaincode_and_crash_fail_cleanly(net: Net) -> None:
    client = net.client()
    endorser = net.endorsers[PEERS[0]]
    unknown = endorser.process(client.propose("kv", "nope", (), net.now_ms).signed, net.now_ms)
    assert "unknown function 'nope'" in unknown.message
    missing = endorser.process(client.propose("nocc", "x", (), net.now_ms).signed, net.now_ms)
    assert "not deployed" in missing.message
    crash = endorser.process(
        client.propose("registry-test", "explode", (), net.now_ms).signed, net.now_ms
    )
    assert "RuntimeError: boom" in crash.message


def test_tampered_proposal_is_refused(net: Net) -> None:
    client = net.client()
    proposal = client.propose("kv", "put", ("a", "1"), net.now_ms)
    forged = type(proposal.signed)(proposal.signed.proposal + b"", b"\x30\x00")
    assert net.endorsers[PEERS[0]].process(forged, net.now_ms).message == "bad proposal signature"


def test_endorsers_on_different_state_disagree_and_the_client_notices(net: Net) -> None:
    net.codes(net.tx("put", "k", "1").envelope)
    behind = Net(network())  # fresh peers that have not seen the block
    client = net.client()
    proposal = client.propose("kv", "add", ("k", "1"), net.now_ms)
    mixed = [net.endorsers[PEERS[0]], behind.endorsers[PEERS[1]]]
    with pytest.raises(EndorsementFailed) as caught:
        client.endorse(proposal, mixed, net.policy, net.now_ms)
    assert caught.value.kind == "disagree"
    assert caught.value.result is not None and len(caught.value.endorsements) == 1


def test_contract_error_is_a_contract_error() -> None:
    with pytest.raises(ContractError):
        from chaincode.keyspace import split_composite_key

        split_composite_key("plain")
