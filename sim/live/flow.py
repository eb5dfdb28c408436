"""One transaction through a live network as a small state machine, not a coroutine.

A load generator keeps hundreds of transactions in flight. As coroutines each
would cost a task, several futures and timers and a dozen suspensions; here a
transaction is an object whose methods the client pool calls as answers
arrive (:class:`sim.live.client.ClientPool` handles a whole incoming broker
message synchronously), and whose deadlines sit on the pool's one coarse
timer. Each ends by calling its ``ended`` callback exactly once, with its
result or with the exception that ended it; :class:`sim.live.gateway.LiveGateway`
awaits the same machines for its coroutine methods.

:class:`EndorsementRound` collects agreeing endorsements that satisfy the
policy, asking a smallest satisfying set of peers first and the others only
if one of those refuses or disagrees, or has not answered within ``HEDGE_S``
(a crashed peer): asking every peer would double the endorsement work (a
simulation and a signature each) for nothing. :class:`TransactionFlow` is a
whole transaction: propose, endorse, sign the envelope, order through PBFT.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.codec import CodecError, decode, encode
from ledger.transaction import Endorsement, ProposalResponse, ProposalResult, SignedProposal
from ledger.validator import EndorsementPolicy
from msp.identity import Identity
from msp.msp import MSPManager
from sim.errors import InputError
from sim.fabric.sdk import (
    EndorsementFailed,
    FabricClient,
    Outcome,
    Proposal,
    Transaction,
    collect_endorsements,
    outcome,
)
from sim.live.client import Busy, ClientPool, Ended, endorsement_bytes
from sim.live.client import Outcome as Ordered
from sim.live.wire import EndorseResponse

ENDORSE_TIMEOUT_S = 10.0
"""How long a peer asked to endorse may take before it counts as not answering."""
HEDGE_S = 1.0
"""How long the first endorsers may take before the other peers are asked too."""

Collected = tuple[ProposalResult, list[Endorsement], list[Identity]]
"""An agreeing group of endorsements that satisfies the policy, and who signed them."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """A transaction that went through ordering, with its agreed validation outcome."""

    tx_id: str
    outcome: Outcome
    payload: bytes
    """The chaincode's response payload from endorsement."""
    latency_ms: float


@dataclass(frozen=True, slots=True)
class _Answered:
    """A peer's answer, shaped like the SDK's endorser (``identity``, ``process``)."""

    identity: Identity
    response: ProposalResponse

    def process(self, _signed: SignedProposal, _now_ms: int) -> ProposalResponse:
        return self.response


def outcome_of(tx_id: str, result: bytes) -> Outcome:
    """The ledger outcome f+1 replicas agreed on (an InputError if they sent none)."""
    found = outcome(result)
    if found is None:
        raise InputError(f"transaction {tx_id}: replicas returned no ledger outcome")
    return found


class RememberedPolicy:
    """An endorsement policy whose verdicts are remembered per set of endorsers.

    A load asks the same question about the same few peers for every
    transaction (twice: after each answer); the verdict of a set never changes.
    """

    LIMIT = 4096

    def __init__(self, policy: EndorsementPolicy) -> None:
        self.policy = policy
        self._verdicts: dict[frozenset[Identity], bool] = {}

    def evaluate(self, identities: Iterable[Identity]) -> bool:
        key = frozenset(identities)
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) >= self.LIMIT:
                self._verdicts.clear()
            verdict = self._verdicts[key] = self.policy.evaluate(key)
        return verdict


def endorser_identity(msps: MSPManager, response: ProposalResponse) -> Identity | None:
    """Who signed a peer's endorsement, if it is a member the network knows."""
    if response.endorsement is None:
        return None
    who = response.endorsement.endorser
    try:
        return msps.identity(who.mspid, who.cert_pem)
    except Exception:
        return None


class EndorsementRound:
    """One proposal's endorsements, collected as the peers answer (see the module)."""

    def __init__(
        self,
        pool: ClientPool,
        policy: EndorsementPolicy,
        plan: tuple[tuple[int, ...], tuple[int, ...]],
        signed: SignedProposal,
        wire: bytes,
        now_ms: int,
        ended: Ended,
    ) -> None:
        """``wire`` is ``encode(signed)``; ``ended`` gets a :data:`Collected` or the failure."""
        self.pool = pool
        self.policy = policy
        self.signed = signed
        self.wire = wire
        self.now_ms = now_ms
        self.ended: Ended | None = ended
        self.rest = plan[1]
        self.asked = 0
        self.waiting: dict[int, int] = {}
        """Request id -> peer, for the asks not answered yet."""
        self.answered: list[_Answered] = []
        self.problems: list[str] = []
        self.busy = 0
        self.last = "no peer answered"
        self._ask(plan[0])
        if self.rest:
            pool.wheel.after(HEDGE_S, self._hedge)

    def _ask(self, peers: Sequence[int]) -> None:
        self.asked += len(peers)
        batch = []
        for replica in peers:
            ended = _AnswerOf(self, replica)
            ended.request_id = self.pool.ask_endorsement(replica, self.wire, ended)
            self.waiting[ended.request_id] = replica
            batch.append(ended.request_id)
        self.pool.wheel.after(ENDORSE_TIMEOUT_S, lambda: self._expire(batch))

    def _hedge(self) -> None:
        if self.ended is not None and self.rest:
            self._ask_the_rest()

    def _ask_the_rest(self) -> None:
        rest, self.rest = self.rest, ()
        self._ask(rest)

    def _expire(self, batch: Sequence[int]) -> None:
        late = [r for r in batch if r in self.waiting]
        for request_id in late:
            replica = self.waiting.pop(request_id)
            self.pool.forget(request_id)
            self.problems.append(f"peer {replica} did not answer within {ENDORSE_TIMEOUT_S:.0f} s")
        if late:
            self._next(failed=True)

    def answer(self, request_id: int, replica: int, answer: Any) -> None:
        if self.waiting.pop(request_id, None) is None or self.ended is None:
            return
        try:
            if isinstance(answer, BaseException):
                raise answer
            assert isinstance(answer, EndorseResponse)
            response = decode(endorsement_bytes(replica, answer), ProposalResponse)
        except Busy:
            self.busy += 1
        except (InputError, CodecError) as exc:
            self.problems.append(str(exc))
        else:
            msps = self.pool.directory_ids.msps
            peer = endorser_identity(msps, response)
            if peer is None:
                self.problems.append(response.message or "endorsement from an unknown peer")
            else:
                self.answered.append(_Answered(peer, response))
                if not self.policy.evaluate(a.identity for a in self.answered):
                    # Policies only ever ask for more principals, so no group of these
                    # answers can do: the first answer of every round lands here.
                    self.last = "not enough endorsements to satisfy the policy"
                    self._next(failed=False)
                    return
                try:
                    found = collect_endorsements(
                        self.signed,
                        self.answered,  # type: ignore[arg-type]
                        self.policy,
                        msps,
                        self.now_ms,
                    )
                except EndorsementFailed as exc:
                    self.last = str(exc)  # not enough yet, or the answers disagree
                    self._next(failed=False)
                else:
                    self._end(found)
                return
        self._next(failed=True)

    def _next(self, *, failed: bool) -> None:
        """After an answer that did not finish the round: ask the other peers if one
        of the first failed or all of them answered; give up when nobody is left."""
        if self.ended is None:
            return
        if self.rest and (failed or not self.waiting):
            self._ask_the_rest()
        elif not self.waiting:
            if self.busy:
                self._end(Busy(f"{self.busy} of {self.asked} peers are busy: retry later"))
            else:
                problems = "; ".join(self.problems) or self.last
                self._end(EndorsementFailed(problems, "refused"))

    def abandon(self) -> None:
        """Nobody wants the result any more: stop listening for answers."""
        self.ended = None
        for request_id in self.waiting:
            self.pool.forget(request_id)
        self.waiting.clear()
        self.answered.clear()  # the hedge and expiry timers hold the round a while yet

    def _end(self, result: Collected | BaseException) -> None:
        ended = self.ended
        self.abandon()
        if ended is not None:
            ended(result)


class _AnswerOf:
    """The pool's callback for one peer's answer to a round."""

    __slots__ = ("replica", "request_id", "round")

    def __init__(self, owner: EndorsementRound, replica: int) -> None:
        self.round = owner
        self.replica = replica
        self.request_id = -1

    def __call__(self, answer: Any) -> None:
        self.round.answer(self.request_id, self.replica, answer)


def transaction_of(sdk: FabricClient, proposal: Proposal, collected: Collected) -> Transaction:
    """Sign the envelope of an endorsed proposal."""
    result, endorsements, identities = collected
    envelope = sdk.envelope(proposal, result, endorsements)
    return Transaction(proposal.tx_id, envelope, result, tuple(i.name for i in identities))


class TransactionFlow:
    """Propose, endorse, sign the envelope, order: one transaction, ending once.

    It starts ordering only if a client id of the pool is idle (else
    :class:`Busy`, as an open-loop load's admission control wants); the caller
    decides when to give up (:meth:`abandon`).
    """

    def __init__(
        self,
        pool: ClientPool,
        sdk: FabricClient,
        policy: EndorsementPolicy,
        plan: tuple[tuple[int, ...], tuple[int, ...]],
        ended: Ended,
    ) -> None:
        self.pool = pool
        self.sdk = sdk
        self.policy = policy
        self.plan = plan
        self.ended: Ended | None = ended
        self.round: EndorsementRound | None = None
        self.tx: Transaction | None = None
        self.cid: int | None = None
        self._on_ordered: Ended = self._ordered
        """One bound method, so the pool can tell it is ours (:meth:`ClientPool.abandon`)."""

    def begin(self, chaincode: str, function: str, args: Sequence[str]) -> None:
        now = self.pool.clock.now_ms()
        self.proposal = self.sdk.propose(chaincode, function, args, now)
        wire = encode(self.proposal.signed)
        self.round = EndorsementRound(
            self.pool, self.policy, self.plan, self.proposal.signed, wire, now, self._endorsed
        )

    def _endorsed(self, collected: Collected | BaseException) -> None:
        self.round = None
        if isinstance(collected, BaseException):
            self._end(collected)
            return
        self.tx = tx = transaction_of(self.sdk, self.proposal, collected)
        try:
            self.cid = self.pool.start(tx.envelope, self._on_ordered)
        except Busy as exc:
            self._end(exc)

    def _ordered(self, done: Ordered | BaseException) -> None:
        self.cid = None
        tx = self.tx
        if isinstance(done, BaseException) or tx is None:
            self._end(done)
            return
        try:
            found = outcome_of(tx.tx_id, done.result)
        except InputError as exc:
            self._end(exc)
            return
        self._end(Submitted(tx.tx_id, found, tx.payload, done.latency_ms))

    def abandon(self) -> None:
        """Stop waiting for endorsements or replies; ``ended`` is not called."""
        self.ended = None
        if self.round is not None:
            self.round.abandon()
            self.round = None
        if self.cid is not None:
            self.pool.abandon(self.cid, self._on_ordered)
            self.cid = None

    def _end(self, result: Any) -> None:
        ended, self.ended = self.ended, None
        self._on_ordered = _ignore  # no cycle left for the garbage collector
        if ended is not None:
            ended(result)


def _ignore(_result: Any) -> None:
    pass
