"""Clients of a live network: PBFT clients and endorsement requests over MQTT.

A :class:`ClientPool` is one user identity acting as several PBFT clients
(PBFT allows one outstanding request per client, so concurrency needs several
client ids) over one broker connection. It drives the same
:class:`pbft.client.Client` state machine the simulator uses, feeding it
replies and timer ticks, and waits for f+1 matching replies. It also asks peers
to endorse proposals (request/response over the nodes' inbox topics), which
is what the Fabric gateway needs before it submits.

Client ids: user ``k`` of ``network.json`` owns ids ``1000 + 1000 k + slot``;
each pool draws its slots at random so that independent command invocations
(each a new process) rarely share an id, and request timestamps come from the
wall-anchored clock so a reused id still moves forward in time.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ledger.codec import CodecError, decode, encode
from pbft.api import Deliver, Tick
from sim.errors import InputError
from sim.live.cluster import client_broker
from sim.live.host import RECONNECT_S, Clock
from sim.live.identity import Directory, load_signer
from sim.live.netconfig import CLIENT_SLOTS, NetworkConfig, load_config
from sim.live.node import crypto_root
from sim.live.tasks import stop_task
from sim.live.transport import BrokerURL, Incoming, Transport, record_tag
from sim.live.wire import (
    BUSY,
    BUSY_TAG,
    ENDORSE_RESPONSE_TAG,
    FILE_RESPONSE_TAG,
    EndorseRequest,
    EndorseResponse,
    FileRequest,
    FileResponse,
)
from sim.live.wire import Busy as WireBusy

ANSWERS = {ENDORSE_RESPONSE_TAG: EndorseResponse, FILE_RESPONSE_TAG: FileResponse}
"""Request/response records a peer answers outside PBFT, by their codec tag."""


class Busy(Exception):
    """Refused for load, by this process's admission limit or by the nodes: retry later."""


class NoReply(InputError):
    """No f+1 matching replies in time: the network is down, partitioned or far behind."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A committed request as the client saw it."""

    client: int
    timestamp: int
    result: bytes
    latency_ms: float


class ClientPool:
    """``size`` PBFT clients of one user identity over one MQTT connection."""

    def __init__(
        self,
        directory: Path,
        user: str,
        size: int = 1,
        *,
        broker: BrokerURL | None = None,
        config: NetworkConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        from pbft.client import Client
        from sim.world.auth import MspAuthenticator

        self.directory = directory
        self.config = config or load_config(directory)
        self.member = self.config.users[self.config.user_index(user)]
        root = crypto_root(self.config, directory)
        self.signer = load_signer(root, self.member)
        self.directory_ids = Directory(self.config, root)
        auth = MspAuthenticator(self.signer, self.directory_ids)
        if not 1 <= size <= CLIENT_SLOTS:
            raise InputError(f"client pool size must be 1..{CLIENT_SLOTS}, got {size}")
        slots = (rng or random.SystemRandom()).sample(range(CLIENT_SLOTS), size)
        self.ids = [self.config.client_id(user, slot) for slot in slots]
        # PBFT executes a client's request only if its timestamp beats the last one
        # executed for that client id, and ids are reused by later processes: so
        # start from the wall clock in microseconds (as the paper lets clients use
        # their local clock); no client sends a million requests a second.
        first = time.time_ns() // 1000
        self.clients = {
            cid: Client(cid, self.config.pbft, auth, first_timestamp=first) for cid in self.ids
        }
        self.broker = broker or client_broker(directory, self.config, user)
        self.clock = Clock()
        self.transport = Transport(self.broker, self.config.net, *self.ids)
        self._idle: asyncio.Queue[int] = asyncio.Queue()
        self._waiting: dict[int, asyncio.Future[Outcome]] = {}
        self._answers: dict[int, asyncio.Future[Any]] = {}
        self._request_ids = itertools.count(random.SystemRandom().randrange(1 << 40))
        self._wake: dict[int, int] = {}
        self._busy_from: dict[int, set[int]] = {}
        self._kick = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ClientPool:
        await self.transport.__aenter__()
        for cid in self.ids:
            self._idle.put_nowait(cid)
        self._pump = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await stop_task(self._pump)
        await self.transport.__aexit__(exc_type, exc, tb)

    @property
    def f(self) -> int:
        return self.config.pbft.f

    async def invoke(
        self, operation: bytes, timeout_s: float = 30.0, *, wait_for_client: bool = True
    ) -> Outcome:
        """Order ``operation`` through PBFT; the result f+1 replicas agree on.

        With ``wait_for_client=False`` a pool whose clients are all busy refuses
        at once (:class:`Busy`) instead of queueing the operation: admission
        control for an open-loop load. :class:`Busy` is raised too when f+1
        replicas refuse the request for load.
        """
        if not wait_for_client and self._idle.empty():
            raise Busy(f"all {len(self.ids)} clients of this process have a request in flight")
        cid = await self._idle.get()
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[cid] = future
        self._busy_from.pop(cid, None)
        try:
            await self._apply(cid, self.clients[cid].submit(operation, self.clock.now_ms()))
            # asyncio.timeout, not wait_for: no extra future and task per request. The
            # future is ours alone; cancelling it on timeout only makes late replies moot.
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise NoReply(
                f"no f+1 replies within {timeout_s:.0f} s from network {self.config.net} "
                f"(are the nodes up? `ledgersim net status {self.directory}`)"
            ) from None
        finally:
            self._waiting.pop(cid, None)
            if not self.clients[cid].busy:
                self._idle.put_nowait(cid)
            else:  # still retrying a request we gave up on: retire this client id
                self._wake.pop(cid, None)

    def _refused(self, busy: WireBusy, replica: int) -> None:
        """Count a node's refusal; at f+1 the request is given up and the client id reused."""
        client = self.clients.get(busy.client)
        request = None if client is None else client.outstanding
        if client is None or request is None or request.timestamp != busy.timestamp:
            return
        refusing = self._busy_from.setdefault(busy.client, set())
        refusing.add(replica)
        if len(refusing) <= self.f:
            return
        future = self._waiting.get(busy.client)
        if future is None or future.done():
            return
        # A fresh state machine for this id, above every timestamp it used: if the
        # refused request is executed after all, it is simply one more commit.
        fresh = type(client)(
            busy.client, self.config.pbft, client.auth, first_timestamp=request.timestamp + 1
        )
        fresh.view = client.view
        self.clients[busy.client] = fresh
        self._wake.pop(busy.client, None)
        future.set_exception(Busy(f"{len(refusing)} replicas are busy: retry later"))

    async def endorse(self, replica: int, proposal: bytes, timeout_s: float = 10.0) -> bytes:
        """Ask peer ``replica`` to endorse a signed proposal; its response bytes."""
        request_id = next(self._request_ids)
        request = EndorseRequest(request_id, self.ids[0], proposal)
        response = await self._ask(replica, request_id, encode(request), timeout_s)
        if response.error == BUSY:
            raise Busy(f"peer {replica} is busy: retry later")
        if response.error:
            raise InputError(f"peer {replica} could not endorse: {response.error}")
        return bytes(response.response)

    async def file(
        self, replica: int, op: str, digest: str = "", data: bytes = b"", timeout_s: float = 10.0
    ) -> FileResponse:
        """Store (``put``) or fetch (``get``) a patch file on one peer."""
        request_id = next(self._request_ids)
        request = FileRequest(request_id, self.ids[0], op, digest, data)
        response: FileResponse = await self._ask(replica, request_id, encode(request), timeout_s)
        return response

    async def _ask(self, replica: int, request_id: int, payload: bytes, timeout_s: float) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._answers[request_id] = future
        try:
            await self.transport.send(replica, payload, self.ids[0])
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise InputError(f"peer {replica} did not answer within {timeout_s:.0f} s") from None
        finally:
            self._answers.pop(request_id, None)

    async def _apply(self, cid: int, out: Any) -> None:
        for send in out.send:
            await self.transport.send(send.to, encode(send.message), cid)
        for done in out.completed:
            future = self._waiting.get(cid)
            if future is not None and not future.done():
                future.set_result(Outcome(cid, done.timestamp, done.result, done.latency_ms))
        if out.wake_at_ms is not None:
            self._wake[cid] = out.wake_at_ms
        else:
            self._wake.pop(cid, None)
        self._kick.set()

    async def _run(self) -> None:
        # asyncio.wait, not wait_for: on 3.11 wait_for can swallow the cancellation
        # that closes the pool, leaving this loop running forever. For the same reason
        # nothing in here awaits a cancelled helper (``stop_task`` suppresses the
        # CancelledError, which would swallow ours if it arrived meanwhile): the two
        # waits live until they finish and are only cancelled on the way out.
        get: asyncio.Future[Incoming] | None = None
        lost: asyncio.Future[Any] | None = None
        try:
            while True:
                if self.transport.lost.is_set():
                    if get is not None:
                        get.cancel()
                        get = None
                    await self._reconnect()
                timeout = 1.0
                if self._wake:
                    timeout = max(0.0, (min(self._wake.values()) - self.clock.now_ms()) / 1000)
                if get is None:
                    get = asyncio.ensure_future(self.transport.inbox.get())
                if lost is None or lost.done():
                    lost = asyncio.ensure_future(self.transport.lost.wait())
                waits: set[asyncio.Future[Any]] = {get, lost}
                done, _ = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
                if get in done:
                    incoming, get = get.result(), None
                    await self._route(incoming)
                    # Drain what else arrived before waiting again: one wait per burst of
                    # replies, not per message.
                    while not self.transport.inbox.empty() and not self.transport.lost.is_set():
                        await self._route(self.transport.inbox.get_nowait())
                now = self.clock.now_ms()
                for cid, wake in list(self._wake.items()):
                    if wake <= now:
                        await self._apply(cid, self.clients[cid].step(Tick(now)))
        finally:
            for waiting in (get, lost):
                if waiting is not None:
                    waiting.cancel()

    async def _reconnect(self) -> None:
        """A new broker connection after the old one dropped (a broker restart, say).

        Answers awaited outside PBFT are lost with the connection: their callers
        learn at once (:class:`NoReply`) rather than after their timeout. PBFT
        requests need nothing: the client state machines retransmit on their
        timers, and replies for them arrive on the new connection.
        """
        for future in self._answers.values():
            if not future.done():
                future.set_exception(NoReply("connection to the broker lost"))
        old = self.transport
        await old.__aexit__(None, None, None)
        while True:
            fresh = Transport(self.broker, self.config.net, *self.ids)
            try:
                await fresh.__aenter__()
            except InputError:
                await asyncio.sleep(RECONNECT_S)
                continue
            fresh.stats.update(old.stats)
            fresh.stats["reconnects"] += 1
            self.transport = fresh
            return

    async def _route(self, incoming: Incoming) -> None:
        tag = record_tag(incoming.payload) or 0
        if tag == BUSY_TAG:
            try:
                busy = decode(incoming.payload, WireBusy)
            except CodecError:
                self.transport.stats["drop.answer.undecodable"] += 1
                return
            if busy.replica == incoming.sender and busy.client == incoming.to:
                self._refused(busy, incoming.sender)
            return
        kind = ANSWERS.get(tag)
        if kind is not None:
            try:
                answer: Any = decode(incoming.payload, kind)
            except CodecError:
                self.transport.stats["drop.answer.undecodable"] += 1
                return
            future = self._answers.get(answer.request_id)
            if future is None or future.done() or answer.replica != incoming.sender:
                self.transport.stats["drop.answer.unexpected"] += 1
                return
            future.set_result(answer)
            return
        client = self.clients.get(incoming.to)
        if client is None:
            return
        event = Deliver(self.clock.now_ms(), incoming.sender, incoming.payload)
        await self._apply(incoming.to, client.step(event))
