"""The Fabric gateway of a live network: endorse over MQTT, order through PBFT.

The same :class:`sim.fabric.sdk.FabricClient` the simulator uses builds and signs
proposals and envelopes; only "ask an endorser" differs. Here the signed
proposal goes to every peer at once over the broker, the answers are fed to
the SDK as they arrive (it groups agreeing answers and stops as soon as a
group satisfies the endorsement policy), and the envelope is then ordered by
PBFT through a :class:`sim.live.client.ClientPool`, which waits for f+1
matching replies carrying the validation code every peer computed.

The same two halves serve the HTTP gateway (``sim.http.livebackend``), whose
callers sign their own proposals and envelopes: :meth:`LiveGateway.collect`
and :meth:`LiveGateway.order` take them as signed. A release proof is the
block that committed a ``metadata`` call, read from the nodes' stores
(:func:`proof_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from ledger.codec import CodecError, decode, encode
from ledger.transaction import Endorsement, ProposalResponse, ProposalResult, SignedProposal
from msp.identity import Identity, SigningIdentity
from msp.policy import parse
from pbft.messages import Commit
from sim.errors import InputError
from sim.fabric.blobs import sha256_hex
from sim.fabric.distribution import Attempt, DownloadFailed, FetchResult, FileRef, ReleaseRequest
from sim.fabric.gateway import Refused
from sim.fabric.proof import make_proof
from sim.fabric.sdk import (
    EndorsementFailed,
    FabricClient,
    Outcome,
    Proposal,
    Transaction,
    collect_endorsements,
    endorsement_plan,
    outcome,
)
from sim.live.chain import find_committed
from sim.live.client import ClientPool
from sim.live.identity import Directory, load_signer
from sim.live.netconfig import NetworkConfig, load_config
from sim.live.node import crypto_root
from sim.live.wire import FileResponse

ENDORSE_TIMEOUT_S = 10.0
HEDGE_S = 1.0
"""How long the first endorsers may take before the other peers are asked too."""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Answered:
    """A peer's answer, shaped like the SDK's endorser (``identity``, ``process``)."""

    identity: Identity
    response: ProposalResponse

    def process(self, _signed: SignedProposal, _now_ms: int) -> ProposalResponse:
        return self.response


@dataclass(frozen=True, slots=True)
class _Peer:
    """A peer as :func:`sim.fabric.sdk.endorsement_plan` sees it (an ``identity``)."""

    replica: int
    identity: Identity


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
        self.in_flight = 0
        self._endorsement_plan: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    async def endorse(
        self, function: str, args: Sequence[str], chaincode: str | None = None
    ) -> tuple[Proposal, Transaction]:
        """Collect agreeing endorsements satisfying the policy (or EndorsementFailed).

        A smallest set of peers that can satisfy the policy is asked first; the
        others only if one of those refuses or disagrees, or has not answered
        within HEDGE_S (a crashed peer). Asking every peer would double the
        endorsement work (a simulation and a signature each) for nothing.
        """
        now = self.pool.clock.now_ms()
        proposal = self.sdk.propose(chaincode or self.chaincode, function, args, now)
        result, endorsements, identities = await self.collect(proposal.signed, now)
        envelope = self.sdk.envelope(proposal, result, endorsements)
        return proposal, Transaction(
            proposal.tx_id, envelope, result, tuple(i.name for i in identities)
        )

    async def collect(
        self, signed: SignedProposal, now_ms: int
    ) -> tuple[ProposalResult, list[Endorsement], list[Identity]]:
        """The first agreeing group of endorsements that satisfies the policy.

        ``signed`` may be anyone's proposal (the HTTP gateway's callers sign their
        own): a peer judges it by its creator's signature, not by who relays it.
        A smallest set of peers that can satisfy the policy is asked first; the
        others only if one of those refuses or disagrees, or has not answered
        within HEDGE_S (a crashed peer). Asking every peer would double the
        endorsement work (a simulation and a signature each) for nothing.
        """
        wire = encode(signed)
        first, rest = self._plan()
        from sim.live.client import Busy  # (kept off the shared import block)

        def ask(peers: Sequence[int]) -> set[asyncio.Future[bytes]]:
            return {
                asyncio.ensure_future(self.pool.endorse(i, wire, ENDORSE_TIMEOUT_S)) for i in peers
            }

        asks = ask(first)
        pending = set(asks)
        hedge_at = asyncio.get_running_loop().time() + HEDGE_S
        answered: list[_Answered] = []
        problems: list[str] = []
        busy = 0
        last = "no peer answered"
        msps = self.pool.directory_ids.msps
        try:
            while pending:
                wait = max(0.0, hedge_at - asyncio.get_running_loop().time()) if rest else None
                done, pending = await asyncio.wait(
                    pending, timeout=wait, return_when="FIRST_COMPLETED"
                )
                for next_done in done:
                    try:
                        response = decode(next_done.result(), ProposalResponse)
                    except Busy:
                        busy += 1
                        continue
                    except (InputError, CodecError) as exc:
                        problems.append(str(exc))
                        continue
                    peer = self._endorser_identity(response)
                    if peer is None:
                        problems.append(response.message or "endorsement from an unknown peer")
                        continue
                    answered.append(_Answered(peer, response))
                    try:
                        return collect_endorsements(signed, answered, self.policy, msps, now_ms)  # type: ignore[arg-type]
                    except EndorsementFailed as exc:
                        last = str(exc)
                        continue
                if rest and (not done or not pending or problems or busy):
                    more = ask(rest)  # the first peers cannot do it (or are slow): ask the rest
                    asks |= more
                    pending |= more
                    rest = ()
        finally:
            for pending_ask in asks:
                pending_ask.cancel()
        if busy:
            raise Busy(f"{busy} of {len(asks)} peers are busy: retry later")
        raise EndorsementFailed("; ".join(problems) or last, "refused")

    def _plan(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Peers to ask first (a smallest set satisfying the policy), and the others."""
        if self._endorsement_plan is None:
            peers = [_Peer(i, self.pool.directory_ids[i]) for i in range(self.pool.config.n)]
            # The plan only reads ``identity``; it returns the same _Peer objects.
            ordered = cast(list[_Peer], endorsement_plan(peers, self.policy))  # type: ignore[arg-type]
            needed = next(
                (
                    k
                    for k in range(1, len(ordered) + 1)
                    if self.policy.evaluate(p.identity for p in ordered[:k])
                ),
                len(ordered),
            )
            ids = tuple(p.replica for p in ordered)
            self._endorsement_plan = (ids[:needed], ids[needed:])
        return self._endorsement_plan

    def _endorser_identity(self, response: ProposalResponse) -> Identity | None:
        if response.endorsement is None:
            return None
        who = response.endorsement.endorser
        try:
            return self.pool.directory_ids.msps.identity(who.mspid, who.cert_pem)
        except Exception:
            return None

    async def submit(
        self,
        function: str,
        *args: str,
        chaincode: str | None = None,
        timeout_s: float = 30.0,
        admit: bool = False,
    ) -> Submitted:
        """Endorse, order and wait for the agreed outcome of one transaction.

        ``admit``: admission control for open-loop load. At most one transaction
        per PBFT client of the pool is in flight; beyond that the call is refused
        at once (``sim.live.client.Busy``), before any signing work is spent on it.
        """
        if admit and self.in_flight >= len(self.pool.ids):
            from sim.live.client import Busy

            raise Busy(f"{self.in_flight} transactions in flight: retry later")
        self.in_flight += 1
        try:
            _proposal, tx = await self.endorse(function, args, chaincode)
            done = await self.pool.invoke(tx.envelope, timeout_s, wait_for_client=not admit)
        finally:
            self.in_flight -= 1
        return Submitted(tx.tx_id, _outcome_of(tx.tx_id, done.result), tx.payload, done.latency_ms)

    async def order(self, tx_id: str, envelope: bytes, timeout_s: float = 30.0) -> Outcome:
        """Order an envelope signed by its creator (not necessarily this pool's user)."""
        done = await self.pool.invoke(envelope, timeout_s)
        return _outcome_of(tx_id, done.result)

    async def evaluate(self, function: str, *args: str) -> bytes:
        """A query: endorsed (simulated) by agreeing peers, never ordered."""
        _proposal, tx = await self.endorse(function, args)
        return tx.payload

    async def load_transaction(self, key: str, value: str, timeout_s: float = 30.0) -> Submitted:
        """One transaction of ``ledgersim load``: a ``kv`` put of a fresh key (no conflicts).

        The kv contract is deployed on every channel, so a patch-management
        network measures the same endorse-order-validate path.
        """
        return await self.submit("put", key, value, chaincode="kv", timeout_s=timeout_s, admit=True)


def _outcome_of(tx_id: str, result: bytes) -> Outcome:
    found = outcome(result)
    if found is None:
        raise InputError(f"transaction {tx_id}: replicas returned no ledger outcome")
    return found


class PatchGateway:
    """``sim.cli.patch.Gateway`` on a live network: a blocking facade over the async gateway.

    Each command is one short-lived process, so the facade owns a private event
    loop and runs each call to completion on it; one client pool (one broker
    connection) per user identity, opened on first use.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.config = load_config(directory)
        self.loop = asyncio.new_event_loop()
        self._pools: dict[str, ClientPool] = {}
        self._gateways: dict[str, LiveGateway] = {}
        self._rng = random.SystemRandom()
        self._signing: str | None = None
        self._last_tx_id: str | None = None

    def _run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def _gateway(self, user: str) -> LiveGateway:
        found = self._gateways.get(user)
        if found is None:
            pool = ClientPool(self.directory, user, 1, config=self.config)
            self._run(pool.__aenter__())
            self._pools[user] = pool
            found = self._gateways[user] = LiveGateway(pool)
        return found

    def _any_pool(self) -> ClientPool:
        if not self._pools:
            self._gateway(self.config.users[0].name)
        return next(iter(self._pools.values()))

    def signer(self, name: str) -> SigningIdentity:
        member = self.config.users[self.config.user_index(name)]
        self._signing = name
        return load_signer(crypto_root(self.config, self.directory), member)

    def _uploader_pool(self) -> ClientPool:
        """The pool of the administrator who just signed the manifest (uploads are theirs)."""
        name = self._signing
        if name is None or not self.config.may_upload(self.config.client_id(name, 0)):
            admins = (m.name for m in self.config.users if m.name.startswith("Admin@"))
            name = next(admins, self.config.users[0].name)
        self._gateway(name)
        return self._pools[name]

    def submit(self, user: str, function: str, args: Sequence[str]) -> bytes:
        try:
            done = self._run(self._gateway(user).submit(function, *args))
        except EndorsementFailed as exc:
            raise Refused(str(exc)) from None
        self._last_tx_id = done.tx_id
        if not done.outcome.valid:
            raise Refused(f"transaction {done.tx_id} is {done.outcome.name}")
        return done.payload

    def evaluate(self, user: str, function: str, args: Sequence[str]) -> bytes:
        try:
            return self._run(self._gateway(user).evaluate(function, *args))
        except EndorsementFailed as exc:
            raise Refused(str(exc)) from None

    # ------------------------------------------------------------------ proofs

    def now_ms(self) -> int:
        """This host's clock: the one the live network's agreed block times follow."""
        return time.time_ns() // 1_000_000

    def prove(self, user: str, name: str, version: str = "") -> dict[str, Any]:
        """Order ``metadata`` as ``user``; the proof of the block that committed it."""
        args = (name, version) if version else (name,)
        self.submit(user, "metadata", args)
        tx_id = self._last_tx_id
        assert tx_id is not None
        return proof_of(
            self.directory, self.config, self._any_pool().directory_ids, tx_id, name, version
        )

    def publish_file(self, data: bytes) -> list[str]:
        return self._run(put_file(self._uploader_pool(), data))

    def fetch_file(self, ref: FileRef) -> FetchResult:
        return self._run(fetch_file(self._any_pool(), ref, self._rng))

    def close(self) -> None:
        for pool in self._pools.values():
            self._run(pool.__aexit__(None, None, None))
        self.loop.close()


async def put_file(pool: ClientPool, data: bytes, timeout_s: float = 5.0) -> list[str]:
    """Store a file on every peer at once; the names of those that stored it."""
    config = pool.config
    digest = sha256_hex(data)
    asks = [pool.file(i, "put", digest, data, timeout_s) for i in range(config.n)]
    answers = await asyncio.gather(*asks, return_exceptions=True)
    return [
        config.replicas[i].name
        for i, answer in enumerate(answers)
        if isinstance(answer, FileResponse) and not answer.error and answer.digest == digest
    ]


async def fetch_file(pool: ClientPool, ref: FileRef, rng: random.Random) -> FetchResult:
    """Try peers in random order until one serves bytes matching the ledger's hash."""
    config = pool.config
    order = list(range(config.n))
    rng.shuffle(order)
    attempts: list[Attempt] = []
    total = 0
    for i in order:
        name = config.replicas[i].name
        started = time.monotonic()
        problem = ""
        try:
            answer: FileResponse | None = await pool.file(i, "get", ref.sha256, timeout_s=5.0)
        except InputError as exc:
            answer, problem = None, str(exc)
        elapsed = int((time.monotonic() - started) * 1000)
        total += elapsed
        if answer is None or answer.error:
            reason = problem if answer is None else answer.error
            attempts.append(Attempt(name, "unavailable", reason, elapsed, 0))
            continue
        data = bytes(answer.data)
        if len(data) != ref.size or sha256_hex(data) != ref.sha256:
            reason = "content does not match the ledger's SHA-256 and size"
            attempts.append(Attempt(name, "rejected", reason, elapsed, len(data)))
            continue
        attempts.append(Attempt(name, "served", "", elapsed, len(data)))
        return FetchResult(data, name, tuple(attempts), total)
    raise DownloadFailed(ref, attempts)


def proof_of(
    directory: Path,
    config: NetworkConfig,
    ids: Directory,
    tx_id: str,
    name: str,
    version: str = "",
    wait_s: float = 5.0,
) -> dict[str, Any]:
    """The release proof of committed ``metadata`` transaction ``tx_id``, from the nodes' disks.

    The f+1 replies that reported the commit came from nodes that had written the
    block; a node read here may lag, so the search is repeated for ``wait_s``.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            block, index, _peer = find_committed(directory, config, tx_id)
            break
        except InputError as exc:
            if time.monotonic() > deadline:
                raise Refused(str(exc)) from None
            time.sleep(0.1)
    signers: dict[int, Identity] = {}
    for raw in block.metadata.certificate:
        replica = decode(raw, Commit).replica
        identity = ids.identity(replica) if 0 <= replica < config.n else None
        if identity is not None:
            signers[replica] = identity
    return make_proof(ReleaseRequest(name, version), block, index, signers)


@contextlib.contextmanager
def open_gateway(directory: Path) -> Iterator[PatchGateway]:
    """What ``sim.cli.patch.open_gateway`` calls for a live network directory."""
    gateway = PatchGateway(directory)
    try:
        yield gateway
    finally:
        gateway.close()
