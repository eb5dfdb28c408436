"""The Fabric gateway of a live network: endorse over MQTT, order through PBFT.

The same :class:`sim.sdk.FabricClient` the simulator uses builds and signs
proposals and envelopes; only "ask an endorser" differs. Here the signed
proposal goes to every peer at once over the broker, the answers are fed to
the SDK as they arrive (it groups agreeing answers and stops as soon as a
group satisfies the endorsement policy), and the envelope is then ordered by
PBFT through a :class:`sim.live.client.ClientPool`, which waits for f+1
matching replies carrying the validation code every peer computed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.codec import CodecError, decode, encode
from ledger.transaction import ProposalResponse, SignedProposal
from msp.identity import Identity
from msp.policy import parse
from sim.errors import InputError
from sim.live.client import ClientPool
from sim.sdk import EndorsementFailed, FabricClient, Outcome, Proposal, Transaction, outcome

ENDORSE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class _Answered:
    """A peer's answer, shaped like the SDK's endorser (``identity``, ``process``)."""

    identity: Identity
    response: ProposalResponse

    def process(self, _signed: SignedProposal, _now_ms: int) -> ProposalResponse:
        return self.response


@dataclass(frozen=True, slots=True)
class Submitted:
    """A transaction that went through ordering, with its agreed validation outcome."""

    tx_id: str
    outcome: Outcome
    payload: bytes
    """The chaincode's response payload from endorsement."""
    latency_ms: float


class LiveGateway:
    """One client identity's gateway to a live network."""

    def __init__(self, pool: ClientPool, rng: random.Random | None = None) -> None:
        self.pool = pool
        config = pool.config
        self.sdk = FabricClient(
            pool.signer,
            pool.directory_ids.msps,
            rng or random.Random(random.SystemRandom().random()),
        )
        self.policy = parse(config.endorsement_policy)
        self.chaincode = config.chaincode

    async def endorse(
        self, function: str, args: Sequence[str], chaincode: str | None = None
    ) -> tuple[Proposal, Transaction]:
        """Collect agreeing endorsements satisfying the policy (or EndorsementFailed)."""
        now = self.pool.clock.now_ms()
        proposal = self.sdk.propose(chaincode or self.chaincode, function, args, now)
        wire = encode(proposal.signed)
        asks = [
            asyncio.ensure_future(self.pool.endorse(i, wire, ENDORSE_TIMEOUT_S))
            for i in range(self.pool.config.n)
        ]
        answered: list[_Answered] = []
        problems: list[str] = []
        last = "no peer answered"
        try:
            for next_done in asyncio.as_completed(asks):
                try:
                    raw = await next_done
                    response = decode(raw, ProposalResponse)
                except (InputError, CodecError) as exc:
                    problems.append(str(exc))
                    continue
                peer = self._endorser_identity(response)
                if peer is None:
                    problems.append(response.message or "endorsement from an unknown peer")
                    continue
                answered.append(_Answered(peer, response))
                try:
                    tx = self.sdk.endorse(proposal, answered, self.policy, now)  # type: ignore[arg-type]
                except EndorsementFailed as exc:
                    last = str(exc)
                    continue
                return proposal, tx
        finally:
            for ask in asks:
                ask.cancel()
        raise EndorsementFailed("; ".join(problems) or last, "refused")

    def _endorser_identity(self, response: ProposalResponse) -> Identity | None:
        if response.endorsement is None:
            return None
        who = response.endorsement.endorser
        try:
            return self.pool.directory_ids.msps.identity(who.mspid, who.cert_pem)
        except Exception:
            return None

    async def submit(
        self, function: str, *args: str, chaincode: str | None = None, timeout_s: float = 30.0
    ) -> Submitted:
        """Endorse, order and wait for the agreed outcome of one transaction."""
        _proposal, tx = await self.endorse(function, args, chaincode)
        done = await self.pool.invoke(tx.envelope, timeout_s)
        result = outcome(done.result)
        if result is None:
            raise InputError(f"transaction {tx.tx_id}: replicas returned no ledger outcome")
        return Submitted(tx.tx_id, result, tx.payload, done.latency_ms)

    async def evaluate(self, function: str, *args: str) -> bytes:
        """A query: endorsed (simulated) by agreeing peers, never ordered."""
        _proposal, tx = await self.endorse(function, args)
        return tx.payload

    async def load_transaction(self, k: int, tag: str) -> bool:
        """One transaction of ``ledgersim load``: a ``kv`` put of a fresh key (no conflicts).

        The kv contract is deployed on every channel, so a patch-management
        network measures the same endorse-order-validate path.
        """
        submitted = await self.submit("put", f"load-{tag}-{k}", str(k), chaincode="kv")
        return submitted.outcome.valid
