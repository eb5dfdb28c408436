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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from ledger.codec import decode, encode
from ledger.transaction import SignedProposal
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
    endorsement_plan,
)
from sim.live.chain import find_committed
from sim.live.client import Busy, ClientPool, Ended, settle
from sim.live.flow import (
    Collected,
    EndorsementRound,
    RememberedPolicy,
    Submitted,
    TransactionFlow,
    outcome_of,
    transaction_of,
)
from sim.live.identity import Directory, load_signer
from sim.live.netconfig import NetworkConfig, load_config
from sim.live.node import crypto_root
from sim.live.wire import FileResponse

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Peer:
    """A peer as :func:`sim.fabric.sdk.endorsement_plan` sees it (an ``identity``)."""

    replica: int
    identity: Identity


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
        self.policy = RememberedPolicy(parse(config.endorsement_policy))
        self.chaincode = config.chaincode
        self.in_flight = 0
        self._endorsement_plan: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    async def endorse(
        self, function: str, args: Sequence[str], chaincode: str | None = None
    ) -> tuple[Proposal, Transaction]:
        """Collect agreeing endorsements satisfying the policy (or EndorsementFailed)."""
        now = self.pool.clock.now_ms()
        proposal = self.sdk.propose(chaincode or self.chaincode, function, args, now)
        collected = await self.collect(proposal.signed, now)
        return proposal, transaction_of(self.sdk, proposal, collected)

    async def collect(self, signed: SignedProposal, now_ms: int) -> Collected:
        """The first agreeing group of endorsements that satisfies the policy.

        ``signed`` may be anyone's proposal (the HTTP gateway's callers sign their
        own): a peer judges it by its creator's signature, not by who relays it.
        Which peers are asked, and when, is :class:`sim.live.flow.EndorsementRound`'s.
        """
        future: asyncio.Future[Collected] = asyncio.get_running_loop().create_future()
        found = EndorsementRound(
            self.pool, self.policy, self._plan(), signed, encode(signed), now_ms, settle(future)
        )
        try:
            return await future
        finally:
            found.abandon()

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
        if admit:
            self._admit()
        self.in_flight += 1
        try:
            _proposal, tx = await self.endorse(function, args, chaincode)
            done = await self.pool.invoke(tx.envelope, timeout_s, wait_for_client=not admit)
        finally:
            self.in_flight -= 1
        return Submitted(tx.tx_id, outcome_of(tx.tx_id, done.result), tx.payload, done.latency_ms)

    async def order(self, tx_id: str, envelope: bytes, timeout_s: float = 30.0) -> Outcome:
        """Order an envelope signed by its creator (not necessarily this pool's user)."""
        done = await self.pool.invoke(envelope, timeout_s)
        return outcome_of(tx_id, done.result)

    async def evaluate(self, function: str, *args: str) -> bytes:
        """A query: endorsed (simulated) by agreeing peers, never ordered."""
        _proposal, tx = await self.endorse(function, args)
        return tx.payload

    def start(
        self, function: str, args: Sequence[str], ended: Ended, *, chaincode: str | None = None
    ) -> Callable[[], None]:
        """:meth:`submit` with ``admit`` for a caller that is not a coroutine (a load).

        ``ended`` gets the :class:`Submitted` or what went wrong, exactly once,
        unless the returned function is called first: then the transaction is
        abandoned (its timeout) and ``ended`` is never called.
        """
        self._admit()
        self.in_flight += 1
        open_flows: list[TransactionFlow] = []

        def close() -> None:
            if open_flows:
                self.in_flight -= 1
                open_flows.pop().abandon()

        def finished(result: Any) -> None:
            close()
            ended(result)

        flow = TransactionFlow(self.pool, self.sdk, self.policy, self._plan(), finished)
        open_flows.append(flow)
        flow.begin(chaincode or self.chaincode, function, args)
        return close

    def _admit(self) -> None:
        if self.in_flight >= len(self.pool.ids):
            raise Busy(f"{self.in_flight} transactions in flight: retry later")


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
