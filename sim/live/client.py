"""Clients of a live network: PBFT clients and endorsement requests over MQTT.

A :class:`ClientPool` is one user identity acting as several PBFT clients
(PBFT allows one outstanding request per client, so concurrency needs several
client ids) over one broker connection. It drives the same
:class:`pbft.client.Client` state machine the simulator uses, feeding it
replies and timer ticks, and waits for f+1 matching replies. It also asks peers
to endorse proposals (request/response over the nodes' inbox topics), which
is what the Fabric gateway needs before it submits.

A load generator keeps hundreds of requests in flight, so the pool's core is
callbacks, not coroutines: each message the broker delivers is handled at
once, in the connection's reader (no queue, no wake-up per message), and
finishes a request by calling the function its starter gave
(:meth:`ClientPool.start`, :meth:`ClientPool.ask_endorsement`). Timeouts and
retransmissions share one coarse timer (:class:`sim.live.wheel.Wheel`). The
coroutine methods (:meth:`ClientPool.invoke`, :meth:`ClientPool.endorse`,
:meth:`ClientPool.file`) are thin waits on that core.

Client ids: user ``k`` of ``network.json`` owns ids ``1000 + 1000 k + slot``;
each pool draws its slots at random so that independent command invocations
(each a new process) rarely share an id, and request timestamps come from the
wall-anchored clock so a reused id still moves forward in time.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import random
import time
from collections.abc import Callable
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
from sim.live.wheel import Wheel
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

Ended = Callable[[Any], None]
"""Called once with a request's result, or with the exception that ended it."""


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


def settle(future: asyncio.Future[Any]) -> Ended:
    """An :data:`Ended` callback that resolves ``future`` (once; later calls are moot)."""

    def ended(result: Any) -> None:
        if future.done():
            return
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)

    return ended


def endorsement_bytes(replica: int, response: EndorseResponse) -> bytes:
    """A peer's endorsement answer as proposal-response bytes, or why it has none."""
    if response.error == BUSY:
        raise Busy(f"peer {replica} is busy: retry later")
    if response.error:
        raise InputError(f"peer {replica} could not endorse: {response.error}")
    return bytes(response.response)


class _PoolTransport(Transport):
    """A client connection that hands each accepted message to its pool at once."""

    def __init__(
        self, broker: BrokerURL, net: str, deliver: Callable[[Incoming], None], *ids: int
    ) -> None:
        super().__init__(broker, net, *ids)
        self._deliver = deliver

    def admit(self, incoming: Incoming) -> None:
        self._deliver(incoming)


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
        self.wheel = Wheel()
        self.transport: Transport = self._new_transport()
        self._idle: list[int] = []
        self._idle_waiters: collections.deque[asyncio.Future[int]] = collections.deque()
        self._ended: dict[int, Ended] = {}
        """The callback of each client id's request in flight."""
        self._answers: dict[int, Ended] = {}
        """The callback of each endorsement or file request awaiting its answer."""
        self._request_ids = itertools.count(random.SystemRandom().randrange(1 << 40))
        self._wake: dict[int, int] = {}
        self._busy_from: dict[int, set[int]] = {}
        self._watch: asyncio.Task[None] | None = None

    def _new_transport(self) -> Transport:
        return _PoolTransport(self.broker, self.config.net, self._deliver, *self.ids)

    async def __aenter__(self) -> ClientPool:
        await self.transport.__aenter__()
        self._idle = list(self.ids)
        self._watch = asyncio.create_task(self._keep_connected())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await stop_task(self._watch)
        self.wheel.close()
        await self.transport.__aexit__(exc_type, exc, tb)

    @property
    def f(self) -> int:
        return self.config.pbft.f

    # ------------------------------------------------------------ PBFT requests

    def start(self, operation: bytes, ended: Ended) -> int:
        """Order ``operation`` with an idle client id; ``ended`` gets its :class:`Outcome`.

        :class:`Busy` at once when every client id has a request in flight
        (admission control for an open-loop load), or later, through ``ended``,
        when f+1 replicas refuse the request for load. The client id is returned
        for :meth:`abandon`.
        """
        if not self._idle:
            raise Busy(f"all {len(self.ids)} clients of this process have a request in flight")
        cid = self._idle.pop()
        self._begin(cid, operation, ended)
        return cid

    def abandon(self, cid: int, ended: Ended) -> None:
        """The starter of ``cid``'s request (``ended``) gave up on it: it is not called.

        A client id still retransmitting the request is retired until the
        request ends after all; PBFT allows it no other request meanwhile.
        """
        if self._ended.get(cid) is ended:
            del self._ended[cid]
            self._release(cid)

    async def invoke(
        self, operation: bytes, timeout_s: float = 30.0, *, wait_for_client: bool = True
    ) -> Outcome:
        """Order ``operation`` through PBFT; the result f+1 replicas agree on.

        With ``wait_for_client=False`` a pool whose clients are all busy refuses
        at once (:class:`Busy`) instead of queueing the operation. :class:`Busy`
        is raised too when f+1 replicas refuse the request for load.
        """
        if self._idle:
            cid = self._idle.pop()
        elif not wait_for_client:
            raise Busy(f"all {len(self.ids)} clients of this process have a request in flight")
        else:
            cid = await self._next_idle()
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        ended = settle(future)
        self._begin(cid, operation, ended)
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise NoReply(
                f"no f+1 replies within {timeout_s:.0f} s from network {self.config.net} "
                f"(are the nodes up? `ledgersim net status {self.directory}`)"
            ) from None
        finally:
            self.abandon(cid, ended)

    async def _next_idle(self) -> int:
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed over just as we were cancelled
            raise

    def _begin(self, cid: int, operation: bytes, ended: Ended) -> None:
        self._ended[cid] = ended
        self._busy_from.pop(cid, None)
        self._apply(cid, self.clients[cid].submit(operation, self.clock.now_ms()))

    def _release(self, cid: int) -> None:
        """``cid`` has no request of ours: hand it to a waiter, or keep it idle."""
        if self.clients[cid].busy:  # still retrying a request given up on: retire it
            self._wake.pop(cid, None)
            return
        while self._idle_waiters:
            waiter = self._idle_waiters.popleft()
            if not waiter.done():
                waiter.set_result(cid)
                return
        self._idle.append(cid)

    def _finish(self, cid: int, result: Outcome | BaseException) -> None:
        ended = self._ended.pop(cid, None)
        self._release(cid)
        if ended is not None:
            ended(result)

    def _refused(self, busy: WireBusy, replica: int) -> None:
        """Count a node's refusal; at f+1 the request is given up and the client id reused."""
        client = self.clients.get(busy.client)
        request = None if client is None else client.outstanding
        if client is None or request is None or request.timestamp != busy.timestamp:
            return
        refusing = self._busy_from.setdefault(busy.client, set())
        refusing.add(replica)
        if len(refusing) <= self.f or busy.client not in self._ended:
            return
        # A fresh state machine for this id, above every timestamp it used: if the
        # refused request is executed after all, it is simply one more commit.
        fresh = type(client)(
            busy.client, self.config.pbft, client.auth, first_timestamp=request.timestamp + 1
        )
        fresh.view = client.view
        self.clients[busy.client] = fresh
        self._wake.pop(busy.client, None)
        self._finish(busy.client, Busy(f"{len(refusing)} replicas are busy: retry later"))

    def _apply(self, cid: int, out: Any) -> None:
        for send in out.send:
            self.transport.queue(send.to, encode(send.message), cid)
        wake = out.wake_at_ms
        if wake is None:
            self._wake.pop(cid, None)
        elif self._wake.get(cid) != wake:
            self._wake[cid] = wake
            delay_s = max(0.0, (wake - self.clock.now_ms()) / 1000)
            self.wheel.after(delay_s, functools.partial(self._tick, cid, wake))
        for done in out.completed:
            self._finish(cid, Outcome(cid, done.timestamp, done.result, done.latency_ms))

    def _tick(self, cid: int, wake: int) -> None:
        if self._wake.get(cid) != wake:
            return  # answered, or rescheduled, since
        del self._wake[cid]
        self._apply(cid, self.clients[cid].step(Tick(self.clock.now_ms())))

    # ------------------------------------------------- requests outside PBFT

    def ask_endorsement(self, replica: int, proposal: bytes, ended: Ended) -> int:
        """Ask peer ``replica`` to endorse a signed proposal; ``ended`` gets its EndorseResponse.

        The request id is returned for :meth:`forget`. Nothing times out here:
        the caller decides how long an answer may take.
        """
        request_id = next(self._request_ids)
        self._answers[request_id] = ended
        request = EndorseRequest(request_id, self.ids[0], proposal)
        self.transport.queue(replica, encode(request), self.ids[0])
        return request_id

    def forget(self, request_id: int) -> None:
        """The answer to ``request_id`` is no longer wanted."""
        self._answers.pop(request_id, None)

    async def endorse(self, replica: int, proposal: bytes, timeout_s: float = 10.0) -> bytes:
        """Ask peer ``replica`` to endorse a signed proposal; its response bytes."""
        future: asyncio.Future[EndorseResponse] = asyncio.get_running_loop().create_future()
        request_id = self.ask_endorsement(replica, proposal, settle(future))
        response = await self._answer(replica, request_id, future, timeout_s)
        return endorsement_bytes(replica, response)

    async def file(
        self, replica: int, op: str, digest: str = "", data: bytes = b"", timeout_s: float = 10.0
    ) -> FileResponse:
        """Store (``put``) or fetch (``get``) a patch file on one peer."""
        future: asyncio.Future[FileResponse] = asyncio.get_running_loop().create_future()
        request_id = next(self._request_ids)
        self._answers[request_id] = settle(future)
        request = FileRequest(request_id, self.ids[0], op, digest, data)
        self.transport.queue(replica, encode(request), self.ids[0])
        return await self._answer(replica, request_id, future, timeout_s)

    async def _answer(
        self, replica: int, request_id: int, future: asyncio.Future[Any], timeout_s: float
    ) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise InputError(f"peer {replica} did not answer within {timeout_s:.0f} s") from None
        finally:
            self.forget(request_id)

    # ------------------------------------------------------------- the connection

    async def _keep_connected(self) -> None:
        while True:
            await self.transport.lost.wait()
            await self._reconnect()

    async def _reconnect(self) -> None:
        """A new broker connection after the old one dropped (a broker restart, say).

        Answers awaited outside PBFT are lost with the connection: their callers
        learn at once (:class:`NoReply`) rather than after their timeout. PBFT
        requests need nothing: the client state machines retransmit on their
        timers, and replies for them arrive on the new connection.
        """
        answers, self._answers = self._answers, {}
        for ended in answers.values():
            ended(NoReply("connection to the broker lost"))
        old = self.transport
        await old.__aexit__(None, None, None)
        while True:
            fresh = self._new_transport()
            try:
                await fresh.__aenter__()
            except InputError:
                await asyncio.sleep(RECONNECT_S)
                continue
            fresh.stats.update(old.stats)
            fresh.stats["reconnects"] += 1
            self.transport = fresh
            return

    def _deliver(self, incoming: Incoming) -> None:
        """Handle one message in the connection's reader; a bug here must not kill the reader."""
        try:
            self._route(incoming)
        except Exception as exc:
            self.transport.stats["drop.client.error"] += 1
            asyncio.get_running_loop().call_exception_handler(
                {"message": "client pool failed to handle a message", "exception": exc}
            )

    def _route(self, incoming: Incoming) -> None:
        tag = _tag_of(incoming.payload)
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
            ended = self._answers.get(answer.request_id)
            if ended is None or answer.replica != incoming.sender:
                self.transport.stats["drop.answer.unexpected"] += 1
                return
            del self._answers[answer.request_id]
            ended(answer)
            return
        client = self.clients.get(incoming.to)
        if client is None or not client.busy:
            # Mostly the replies after the first f+1: the client would decode each only
            # to drop it as stale. Half of every transaction's replies, not decoded.
            return
        event = Deliver(self.clock.now_ms(), incoming.sender, incoming.payload)
        self._apply(incoming.to, client.step(event))


def _tag_of(payload: bytes) -> int:
    """The codec tag of a record (0 if none), read off its first bytes when it is short.

    A record is a msgpack array whose first item is its tag: a small array and a
    tag below 256 (every record a client receives) need no msgpack unpacker.
    Only routing depends on it: the record is decoded, and checked, after.
    """
    if len(payload) > 2 and 0x91 <= payload[0] <= 0x9F:
        first = payload[1]
        if first < 0x80:
            return first
        if first == 0xCC:
            return payload[2]
    return record_tag(payload) or 0
