"""How the endorser runs a contract, and the shim's registry, found untested by mutmut.

Every way a contract can fail its endorsement comes back as status 500 with a
message meant for the client (never an exception); a proposal that decodes as
some other record is malformed; deployed contract instances keep their settings;
the registry says which contracts exist. The probe contract is built afresh by
each test (class and all), so nothing cached from an earlier test answers for it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaincode import shim
from chaincode.endorser import STATUS_BAD_REQUEST, Endorser
from chaincode.patchset import PatchSetContract
from chaincode.shim import Contract, ContractError, Stub, contract_class, register, transaction
from ledger.codec import encode
from ledger.peer import PeerLedger
from ledger.transaction import (
    STATUS_ERROR,
    STATUS_OK,
    ChaincodeEvent,
    ProposalResponse,
    Response,
    SignedProposal,
)
from sim.explore.hostile import CHANNEL, HostileChannel, serialized
from sim.explore.hostile_identities import NOW_MS, identity_pool


def probe_class() -> type[Contract]:
    """A contract with one function per way of failing (a new class on every call)."""

    class Probe(Contract):
        name = "hostile-probe"

        @transaction
        def ok(self, stub: Stub) -> bytes:
            return b"ok"

        @transaction
        def refuse(self, stub: Stub) -> bytes:
            raise ContractError("refused: not today")

        @transaction
        def boom(self, stub: Stub) -> bytes:
            raise ValueError("bad input")

        @transaction
        def text(self, stub: Stub) -> bytes:
            return "not bytes"  # type: ignore[return-value]

        @transaction
        def one(self, stub: Stub, a: str) -> bytes:
            stub.set_event("probed", a.encode())
            return a.encode()

        @transaction
        def nothing(self, stub: Stub) -> bytes:
            return b""

        def helper(self, stub: Stub) -> bytes:  # not marked: not callable by clients
            return b"secret"

    return Probe


def endorse(contract: Contract, function: str, *args: str) -> ProposalResponse:
    pool = identity_pool()
    channel = HostileChannel(pool)
    ledger = PeerLedger(channel.config(), lambda item: item)
    endorser = Endorser(
        pool.peer("Org1"), ledger, pool.manager(), CHANNEL, {contract.name: contract}
    )
    user = pool.user("Org1")
    header = channel.header(serialized(user), function, chaincode=contract.name)
    raw = encode(replace(header, function=function, args=args))
    return endorser.process(SignedProposal(raw, user.sign(raw)), NOW_MS)


@pytest.mark.parametrize(
    ("function", "args", "message"),
    [
        ("refuse", (), "refused: not today"),
        ("boom", (), "hostile-probe.boom failed: ValueError: bad input"),
        ("text", (), "hostile-probe.text returned str, not bytes"),
        ("one", (), "hostile-probe.one expects 1 argument(s) (a), got 0"),
        ("nothing", ("x",), "hostile-probe.nothing expects 0 argument(s) (none), got 1"),
        ("helper", (), "hostile-probe: unknown function 'helper'"),
        ("nope", (), "hostile-probe: unknown function 'nope'"),
    ],
)
def test_contract_failures_are_status_500_with_a_message(
    function: str, args: tuple[str, ...], message: str
) -> None:
    response = endorse(probe_class()(), function, *args)
    assert (response.status, response.message) == (STATUS_ERROR, message)
    assert response.result is None and response.endorsement is None


def test_contract_success_is_endorsed() -> None:
    response = endorse(probe_class()(), "one", "hello")
    assert response.status == STATUS_OK and response.result is not None
    assert response.result.response == Response(
        STATUS_OK, "", b"hello", ChaincodeEvent("probed", b"hello")
    )


def test_functions_are_the_marked_methods() -> None:
    assert probe_class().functions() == ["boom", "nothing", "ok", "one", "refuse", "text"]


def test_proposal_of_another_record_type_is_malformed() -> None:
    pool = identity_pool()
    ledger = PeerLedger(HostileChannel(pool).config(), lambda item: item)
    endorser = Endorser(pool.peer("Org1"), ledger, pool.manager(), CHANNEL)
    raw = encode(serialized(pool.user("Org1")))
    response = endorser.process(SignedProposal(raw, b""), NOW_MS)
    assert response.status == STATUS_BAD_REQUEST
    assert response.message.startswith("malformed proposal (")


def test_deployed_instances_keep_their_settings() -> None:
    pool = identity_pool()
    ledger = PeerLedger(HostileChannel(pool).config(), lambda item: item)
    strict = PatchSetContract(approvals_required=3)
    endorser = Endorser(pool.peer("Org1"), ledger, pool.manager(), CHANNEL, {"patchset": strict})
    assert endorser.contract("patchset") is strict
    kv = endorser.contract("kv")
    assert kv is not None and endorser.contract("kv") is kv
    assert endorser.contract("nope") is None


def test_registry_names_what_it_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = register(probe_class())
    assert contract_class("hostile-probe") is probe
    with pytest.raises(KeyError) as missing:
        contract_class("nope")
    listed = str(missing.value.args[0]).removeprefix("no contract named 'nope' (registered: ")
    names = listed.removesuffix(")").split(", ")
    assert names == sorted(names) and "hostile-probe" in names
    assert all(contract_class(n) is not None for n in names)
    monkeypatch.setattr(shim, "_registry", {})
    with pytest.raises(KeyError) as empty:
        contract_class("nope")
    assert empty.value.args[0] == "no contract named 'nope' (registered: none)"


def test_a_contract_needs_a_name() -> None:
    class Nameless(Contract):
        pass

    with pytest.raises(TypeError) as bad:
        register(Nameless)
    assert str(bad.value) == "Nameless needs a non-empty class attribute 'name'"


def test_underscore_functions_are_never_callable_even_if_marked() -> None:
    class Sneaky(Contract):
        name = "hostile-sneaky"

        @transaction
        def _hidden(self, stub: Stub) -> bytes:
            return b"leaked"

    response = endorse(Sneaky(), "_hidden")
    assert (response.status, response.message) == (
        STATUS_ERROR,
        "hostile-sneaky: unknown function '_hidden'",
    )


def test_contract_keeps_its_settings() -> None:
    assert probe_class()(level="high").settings == {"level": "high"}
