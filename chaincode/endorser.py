"""The endorser: check a signed proposal, simulate the contract, sign what it did.

An endorsement is a peer's statement "running this proposal on my committed
state gives this read-write set and this response". The endorser never
changes state; the transaction changes state only after ordering and
validation, and only if the versions it read are still current.

Every way a proposal can fail comes back as a :class:`ProposalResponse` with
an error status and a message meant for the client, never as an exception:
a proposal is a peer's input. A contract's :class:`ContractError` message is
passed through as is; calling a function with the wrong number of arguments
says so plainly instead of surfacing Python's ``TypeError``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Protocol

from chaincode.shim import Contract, ContractError, Creator, contract_class
from chaincode.simulation import LedgerReader, SimulationStub
from ledger.codec import CodecError, decode, encode
from ledger.transaction import (
    STATUS_ERROR,
    STATUS_OK,
    Endorsement,
    ProposalResponse,
    ProposalResult,
    Response,
    SerializedIdentity,
    SignedProposal,
    TxHeader,
    Version,
    compute_tx_id,
    proposal_hash,
)
from msp.errors import MSPError
from msp.identity import Identity, SigningIdentity
from msp.msp import MSPManager, at_virtual_ms

BUILTIN_CONTRACTS = {"kv": "chaincode.kv", "patchset": "chaincode.patchset"}
"""Modules that register the contracts shipped with ledgersim, imported on first use."""

STATUS_BAD_REQUEST = 400
STATUS_FORBIDDEN = 403
STATUS_NOT_FOUND = 404
STATUS_CONFLICT = 409


class EndorsingLedger(LedgerReader, Protocol):
    """What the endorser needs of the peer's ledger (``ledger.peer.PeerLedger`` has it)."""

    def tx_location(self, tx_id: str) -> Version | None: ...


def _failure(status: int, message: str) -> ProposalResponse:
    return ProposalResponse(None, None, status, message)


_SIGNATURES: dict[type[Contract], dict[str, inspect.Signature]] = {}
"""Per contract class: each transaction function's client-visible parameters."""


def _parameters(contract: Contract, function: str) -> inspect.Signature | None:
    """The parameters a client passes to ``function`` (after the stub); None if no such function.

    Computed once per contract class, for all its functions at once (so a
    client naming garbage functions cannot grow the cache): ``dir`` and
    ``inspect.signature`` were a measurable share of every endorsement, and a
    class's methods do not change while it runs.
    """
    table = _SIGNATURES.get(type(contract))
    if table is None:
        table = {}
        for name in type(contract).functions():
            params = list(inspect.signature(getattr(contract, name)).parameters.values())
            table[name] = inspect.Signature(params[1:])
        _SIGNATURES[type(contract)] = table
    return table.get(function)


_ARITY_VERDICTS: dict[tuple[type[Contract], str, str, int], str | None] = {}
"""Memo of :func:`arity_problem` by (contract class and name, function, number of arguments)."""
ARITY_MEMO_SIZE = 1024


def arity_problem(contract: Contract, function: str, args: list[str]) -> str | None:
    """Why ``args`` cannot be passed to ``function`` (None if they can).

    Arguments are passed by position only, so the verdict depends on their number
    alone: memoised on it, since ``Signature.bind`` costs as much as a simple
    contract's whole simulation. Only known functions reach the memo, and it is
    emptied when full, so a client sending odd argument counts cannot grow it.
    """
    signature = _parameters(contract, function)
    if signature is None:
        return None  # Contract.invoke reports unknown functions itself
    key = (type(contract), contract.name, function, len(args))
    if key in _ARITY_VERDICTS:
        return _ARITY_VERDICTS[key]
    problem = None
    try:
        signature.bind(*args)
    except TypeError:
        names = list(signature.parameters)
        problem = (
            f"{contract.name}.{function} expects {len(names)} argument(s)"
            f" ({', '.join(names) or 'none'}), got {len(args)}"
        )
    if len(_ARITY_VERDICTS) >= ARITY_MEMO_SIZE:
        _ARITY_VERDICTS.clear()
    _ARITY_VERDICTS[key] = problem
    return problem


class Endorser:
    """One peer's endorsing role: its signing identity, its ledger, its contracts."""

    def __init__(
        self,
        signer: SigningIdentity,
        ledger: EndorsingLedger,
        msps: MSPManager,
        channel: str,
        contracts: Mapping[str, Contract] | None = None,
    ) -> None:
        self.signer = signer
        self.identity: Identity = signer.public()
        self.ledger = ledger
        self.msps = msps
        self.channel = channel
        self._contracts: dict[str, Contract] = dict(contracts or {})
        self._serialized = SerializedIdentity(signer.mspid, signer.cert_pem)

    def contract(self, name: str) -> Contract | None:
        """The deployed instance of ``name`` (registered contracts get default settings)."""
        found = self._contracts.get(name)
        if found is None:
            if name in BUILTIN_CONTRACTS:
                importlib.import_module(BUILTIN_CONTRACTS[name])
            try:
                found = contract_class(name)()
            except KeyError:
                return None
            self._contracts[name] = found
        return found

    def process(self, signed: SignedProposal, now_ms: int) -> ProposalResponse:
        """Endorse ``signed`` against the committed state as of now."""
        try:
            header = decode(signed.proposal, TxHeader)
        except CodecError as exc:
            return _failure(STATUS_BAD_REQUEST, f"malformed proposal ({exc.reason})")
        if header.channel != self.channel:
            return _failure(STATUS_NOT_FOUND, f"channel {header.channel!r} not found")
        try:
            creator = self.msps.identity(header.creator.mspid, header.creator.cert_pem)
        except MSPError as exc:
            return _failure(STATUS_FORBIDDEN, f"creator rejected: {exc}")
        verdict = self.msps.validate(creator, at_virtual_ms(now_ms))
        if not verdict.ok:
            return _failure(STATUS_FORBIDDEN, f"creator rejected: {verdict.reason}")
        if not creator.verify(signed.proposal, signed.signature):
            return _failure(STATUS_FORBIDDEN, "bad proposal signature")
        if compute_tx_id(header.nonce, header.creator) != header.tx_id:
            return _failure(STATUS_BAD_REQUEST, "transaction id does not match nonce and creator")
        if self.ledger.tx_location(header.tx_id) is not None:
            return _failure(STATUS_CONFLICT, f"duplicate transaction id {header.tx_id}")
        contract = self.contract(header.chaincode)
        if contract is None:
            return _failure(STATUS_NOT_FOUND, f"chaincode {header.chaincode!r} is not deployed")
        stub = SimulationStub(
            self.ledger,
            header,
            Creator(creator.mspid, creator.role, creator.name, creator.cert_pem),
        )
        response = self._run(contract, stub, header)
        if response.status != STATUS_OK:
            return _failure(response.status, response.message)
        result = ProposalResult(proposal_hash(header), stub.rwset(), response)
        signature = self.signer.sign(encode(result))
        return ProposalResponse(result, Endorsement(self._serialized, signature), STATUS_OK, "")

    @staticmethod
    def _run(contract: Contract, stub: SimulationStub, header: TxHeader) -> Response:
        problem = arity_problem(contract, header.function, list(header.args))
        if problem is not None:
            return Response(STATUS_ERROR, problem, b"", None)
        try:
            payload = contract.invoke(stub)
        except ContractError as exc:
            return Response(STATUS_ERROR, str(exc), b"", None)
        except Exception as exc:  # a buggy contract fails its endorsement, not the peer
            message = f"{contract.name}.{header.function} failed: {type(exc).__name__}: {exc}"
            return Response(STATUS_ERROR, message, b"", None)
        if not isinstance(payload, bytes):
            message = f"{contract.name}.{header.function} returned {type(payload).__name__}"
            return Response(STATUS_ERROR, message + ", not bytes", b"", None)
        return Response(STATUS_OK, "", payload, stub.event)
