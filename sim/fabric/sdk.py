"""The client side of the Fabric flow: propose, collect endorsements, sign, read the outcome.

A Fabric client never trusts one peer's answer. It sends the signed proposal
to endorsers until their endorsements satisfy the chaincode's policy, and it
only accepts endorsements that agree byte for byte (same read-write set, same
response): disagreeing peers are grouped apart, and the first group that
satisfies the policy wins, so one faulty or lagging peer cannot stop a client
who can reach enough honest ones. The envelope it then signs is what PBFT
orders; the replicas' reply (f+1 matching, checked by the PBFT client) is the
:class:`~ledger.peer.TxStatus` every peer computed in validation.

In the simulator "sending to an endorser" is a direct call of a live peer's
:class:`~chaincode.endorser.Endorser`; the nonce comes from the caller's
seeded ``random.Random``, so a run replays exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaincode.endorser import Endorser
from ledger.block import ValidationCode, code_name
from ledger.codec import CodecError, decode, encode
from ledger.peer import TxStatus
from ledger.transaction import (
    NONCE_SIZE,
    STATUS_OK,
    Endorsement,
    Envelope,
    ProposalResult,
    SerializedIdentity,
    SignedProposal,
    TxHeader,
    TxPayload,
    compute_tx_id,
)
from ledger.validator import EndorsementPolicy
from msp.errors import MSPError
from msp.identity import Identity, SigningIdentity
from msp.msp import MSPManager

DEFAULT_CHANNEL = "mychannel"


class EndorsementFailed(Exception):
    """No agreeing set of endorsements satisfies the policy; the message says why.

    ``kind`` is ``refused`` (no peer endorsed), ``disagree`` (peers' results
    differ) or ``insufficient`` (they agree but are too few); ``result`` and
    ``endorsements`` are the largest agreeing group, if any, for a caller that
    wants to submit anyway and let validation reject it.
    """

    def __init__(
        self,
        message: str,
        kind: str,
        result: ProposalResult | None = None,
        endorsements: Sequence[Endorsement] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.result = result
        self.endorsements = tuple(endorsements)


@dataclass(frozen=True, slots=True)
class Proposal:
    header: TxHeader
    signed: SignedProposal

    @property
    def tx_id(self) -> str:
        return self.header.tx_id


@dataclass(frozen=True, slots=True)
class Transaction:
    """An endorsed, signed transaction ready for ordering."""

    tx_id: str
    envelope: bytes
    """``encode(Envelope)``: the PBFT operation."""
    result: ProposalResult
    endorsers: tuple[str, ...]
    """Names of the peers whose endorsements are included."""

    @property
    def payload(self) -> bytes:
        """The chaincode's response payload (what a query returns)."""
        return self.result.response.payload


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a submitted transaction ended, as the replicas agreed."""

    tx_id: str
    code: int

    @property
    def valid(self) -> bool:
        return self.code == ValidationCode.VALID

    @property
    def name(self) -> str:
        return code_name(self.code)


def outcome(result: bytes) -> Outcome | None:
    """The outcome a PBFT result carries, or None if it is not a ledger result."""
    try:
        status = decode(result, TxStatus)
    except CodecError:
        return None
    return Outcome(status.tx_id, status.code)


def endorsement_plan(endorsers: Iterable[Endorser], policy: EndorsementPolicy) -> list[Endorser]:
    """``endorsers`` reordered so that the first few alone can satisfy ``policy``.

    :meth:`FabricClient.endorse` stops as soon as the policy is met, so asking
    a minimal satisfying set first means no endorsement beyond what the
    policy needs (each is a simulation plus a signature). The others follow,
    in their given order, for when one of the first refuses or disagrees.
    Chosen greedily: one peer per new principal (MSP id, role) in order,
    then any peer, until the policy holds; then peers it does not need are
    dropped. If no subset satisfies it, the order is left as it was.
    """
    candidates = list(endorsers)
    chosen: list[Endorser] = []
    seen: set[tuple[str, str]] = set()
    satisfied = False
    for wanted_new in (True, False):
        for endorser in candidates:
            principal = (endorser.identity.mspid, endorser.identity.role)
            if endorser in chosen or (wanted_new and principal in seen):
                continue
            seen.add(principal)
            chosen.append(endorser)
            if policy.evaluate(e.identity for e in chosen):
                satisfied = True
                break
        if satisfied:
            break
    if not satisfied:
        return candidates
    for endorser in chosen[:-1]:
        rest = [e for e in chosen if e is not endorser]
        if policy.evaluate(e.identity for e in rest):
            chosen = rest
    return chosen + [e for e in candidates if e not in chosen]


PLANNER_MEMO_SIZE = 4096


class EndorsementPlanner:
    """A policy memoised for a client, and the endorsement plans it implies.

    A policy names principals (MSP id and role) only, so its verdict on
    distinct identities depends on nothing but their principals, and a plan
    on nothing but the candidates' principals in order (and which of them are
    the same identity). Both are memoised on that: a client evaluates the
    same few combinations for every transaction, and evaluating is a search.
    Usable wherever an :class:`EndorsementPolicy` is expected.
    """

    def __init__(self, policy: EndorsementPolicy) -> None:
        self.policy = policy
        self._verdicts: dict[tuple[tuple[str, str], ...], bool] = {}
        self._plans: dict[tuple[tuple[str, str, int], ...], tuple[int, ...]] = {}

    def evaluate(self, identities: Iterable[Identity]) -> bool:
        distinct = dict.fromkeys(identities)
        key = tuple(sorted((i.mspid, i.role) for i in distinct))
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self.policy.evaluate(distinct)
            if len(self._verdicts) >= PLANNER_MEMO_SIZE:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    def plan(self, endorsers: Iterable[Endorser]) -> list[Endorser]:
        """:func:`endorsement_plan` of ``endorsers``, memoised."""
        candidates = list(endorsers)
        identities = [e.identity for e in candidates]
        key = tuple((i.mspid, i.role, identities.index(i)) for i in identities)
        order = self._plans.get(key)
        if order is None:
            planned = endorsement_plan(candidates, self)
            order = tuple(next(j for j, c in enumerate(candidates) if c is e) for e in planned)
            if len(self._plans) >= PLANNER_MEMO_SIZE:
                self._plans.clear()
            self._plans[key] = order
        return [candidates[j] for j in order]


class FabricClient:
    """A client identity that builds, endorses and signs transactions on one channel."""

    def __init__(
        self,
        signer: SigningIdentity,
        msps: MSPManager,
        rng: random.Random,
        channel: str = DEFAULT_CHANNEL,
    ) -> None:
        self.signer = signer
        self.msps = msps
        self.rng = rng
        self.channel = channel
        self.creator = SerializedIdentity(signer.mspid, signer.cert_pem)

    def propose(self, chaincode: str, function: str, args: Sequence[str], now_ms: int) -> Proposal:
        nonce = self.rng.randbytes(NONCE_SIZE)
        header = proposal_header(
            self.creator, self.channel, chaincode, function, args, now_ms, nonce
        )
        raw = encode(header)
        return Proposal(header, SignedProposal(raw, self.signer.sign(raw)))

    def endorse(
        self,
        proposal: Proposal,
        endorsers: Iterable[Endorser],
        policy: EndorsementPolicy,
        now_ms: int,
    ) -> Transaction:
        """Ask ``endorsers`` in order until an agreeing group satisfies ``policy``."""
        result, endorsements, identities = collect_endorsements(
            proposal.signed, endorsers, policy, self.msps, now_ms
        )
        return self._assemble(proposal, result, endorsements, identities)

    def envelope(
        self, proposal: Proposal, result: ProposalResult, endorsements: Sequence[Endorsement]
    ) -> bytes:
        """Sign the transaction payload: the bytes to submit for ordering."""
        payload = transaction_payload(proposal.header, result, endorsements)
        return encode(Envelope(payload, self.signer.sign(payload)))

    def _assemble(
        self,
        proposal: Proposal,
        result: ProposalResult,
        endorsements: list[Endorsement],
        identities: list[Identity],
    ) -> Transaction:
        return Transaction(
            proposal.tx_id,
            self.envelope(proposal, result, endorsements),
            result,
            tuple(i.name for i in identities),
        )


# -------------------------------------------------------------- the split flow
# A client whose key lives elsewhere (an HTTP caller, a browser) cannot use
# FabricClient, which signs as it goes. These are its steps with the signing
# left out: the caller signs ``encode(header)`` and then the payload bytes.


def proposal_header(
    creator: SerializedIdentity,
    channel: str,
    chaincode: str,
    function: str,
    args: Sequence[str],
    now_ms: int,
    nonce: bytes,
) -> TxHeader:
    """The proposal ``creator`` is to sign (its tx id binds the nonce to the creator)."""
    return TxHeader(
        compute_tx_id(nonce, creator),
        channel,
        chaincode,
        function,
        tuple(args),
        now_ms,
        creator,
        nonce,
    )


def transaction_payload(
    header: TxHeader, result: ProposalResult, endorsements: Sequence[Endorsement]
) -> bytes:
    """The bytes the creator signs to turn an endorsed proposal into an envelope."""
    return encode(TxPayload(header, result, tuple(endorsements)))


def collect_endorsements(
    signed: SignedProposal,
    endorsers: Iterable[Endorser],
    policy: EndorsementPolicy,
    msps: MSPManager,
    now_ms: int,
) -> tuple[ProposalResult, list[Endorsement], list[Identity]]:
    """Ask ``endorsers`` in order until an agreeing group satisfies ``policy``.

    Raises :class:`EndorsementFailed` with the largest agreeing group otherwise.
    """
    groups: dict[bytes, tuple[ProposalResult, list[Endorsement], list[Identity]]] = {}
    problems: list[str] = []
    for endorser in endorsers:
        response = endorser.process(signed, now_ms)
        if response.status != STATUS_OK or response.result is None or response.endorsement is None:
            problems.append(f"{endorser.identity.name}: {response.message}")
            continue
        key = encode(response.result)
        result, endorsements, identities = groups.setdefault(key, (response.result, [], []))
        identity = _endorser_identity(msps, response.endorsement.endorser)
        if identity is None or identity in identities:
            continue
        endorsements.append(response.endorsement)
        identities.append(identity)
        if policy.evaluate(identities):
            return result, endorsements, identities
    if not groups:
        raise EndorsementFailed("; ".join(problems) or "no endorsers", "refused")
    best, endorsements, _ = max(groups.values(), key=lambda group: len(group[1]))
    if len(groups) > 1:
        kind = "disagree"
        problems.append(f"endorsers disagree ({len(groups)} different results)")
    else:
        kind = "insufficient"
        problems.append("not enough endorsements to satisfy the policy")
    raise EndorsementFailed("; ".join(problems), kind, best, endorsements)


def _endorser_identity(msps: MSPManager, who: SerializedIdentity) -> Identity | None:
    try:
        return msps.identity(who.mspid, who.cert_pem)
    except MSPError:
        return None
