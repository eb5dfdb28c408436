"""MQTT transport shared by node hosts, gateways and load generators.

QoS 0 everywhere (docs/live.md explains why): PBFT already survives loss and
duplication, and at-least-once delivery would only add acknowledgements and
duplicates. Incoming payloads are unwrapped from their :class:`Envelope`;
anything undecodable or whose claimed sender disagrees with the topic (a
client id on a replica topic, a client under another user's account) is
dropped here and counted in ``stats`` with its reason.

Outgoing messages are queued and published together (:meth:`Transport.flush`,
which a node calls once per group of steps and which otherwise runs
``FLUSH_TICK_S`` after the first message queued, ``CLIENT_FLUSH_TICK_S`` on a client's
connection): messages that would travel on topics of one
*group* go as one :class:`~sim.live.wire.Bundle`. A group is what the broker's
ACL and the receiver can check as one: a replica's broadcasts; a replica's
messages to one replica; a replica's replies to the clients of one user
account; one account's clients' messages to one replica (or to all). Each
bundled message names its sender and addressee, and the receiver holds them
to the topic: the sender must be the topic's replica (or a client of the
topic's account), the addressee the topic's (or a client of its account).
A lone message still goes as a plain :class:`~sim.live.wire.Envelope`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import msgpack
import paho.mqtt.client as mqtt

from ledger.codec import CodecError
from pbft.api import BROADCAST, CLIENT_ID_BASE
from sim.errors import InputError
from sim.live import topics
from sim.live.netconfig import CLIENT_SLOTS
from sim.live.tasks import stop_task
from sim.live.wire import Routed, unwrap, wrap

QOS = 0
CLIENT_QUEUE_LIMIT = 1024
"""Client messages a node holds before it refuses more (``busy, retry later``).

Well above what one gateway keeps in flight (``sim.live.load.pool_size``, two
messages each): refusing a request that peers already endorsed wastes their work.

Replica-to-replica traffic has its own queue, served first and never refused:
it is bounded by PBFT itself (watermarks, one vote per replica per slot), and
delaying it behind a flood of client work is what turned overload into view
changes."""
DISCONNECT_S = 2.0
BUNDLE_BYTES = 256 * 1024
"""A bundle is closed at about this size and the next one started."""
FLUSH_TICK_S = 0.005
"""How long a queued message may wait for others to share its broker message, unless the
owner flushes first (a node does, once per group of steps)."""
CLIENT_FLUSH_TICK_S = 0.010
"""The same for a client connection, which never flushes by itself. A load generator's
proposals and requests to one node share a broker message if started within this much
of each other: against 5 ms, a third fewer broker messages from it and a fifth fewer
from the nodes (their answers come in fewer groups) at 400 tx/s, for up to 5 ms more
on each of a transaction's two hops (endorsement, ordering)."""
MAX_PAYLOAD = 9 * 1024 * 1024
"""The largest legal envelope: a state-transfer chunk or a patch file of
``sim.live.host.MAX_FILE_BYTES`` with room to spare. The broker refuses anything
larger (``message_size_limit``), so an oversized message never reaches a node."""


@dataclass(frozen=True, slots=True)
class BrokerURL:
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerURL:
        """``mqtt://[user:password@]host[:port]``; anything else is an InputError."""
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise InputError(f"--broker: expected mqtt://HOST:PORT, got {url!r}")
        try:
            port = parts.port or 1883
        except ValueError:
            raise InputError(f"--broker: bad port in {url!r}") from None
        return cls(parts.hostname, port, parts.username, parts.password)

    def with_credentials(self, username: str, password: str) -> BrokerURL:
        return BrokerURL(self.host, self.port, username, password)

    def __str__(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Incoming:
    sender: int
    payload: bytes
    to: int
    """The principal addressed (one of ours), or BROADCAST."""


class Transport:
    """A connection for one replica, or for several client principals of one process.

    A load generator runs many PBFT clients (one outstanding request each) over
    one connection: pass their ids as ``principals``; each message says which
    one sends it, and each incoming one which was addressed.
    """

    def __init__(self, broker: BrokerURL, net: str, principal: int, *more: int) -> None:
        self.broker = broker
        self.net = net
        self.principal = principal
        self.principals = frozenset((principal, *more))
        self.is_replica = principal < CLIENT_ID_BASE
        self.flush_tick_s = FLUSH_TICK_S if self.is_replica else CLIENT_FLUSH_TICK_S
        if self.is_replica and more:
            raise ValueError("a replica connection serves exactly one principal")
        self.stats: collections.Counter[str] = collections.Counter()
        self.inbox: asyncio.Queue[Incoming] = asyncio.Queue()
        """Everything for a client connection; replica traffic for a replica's."""
        self.client_inbox: asyncio.Queue[Incoming] = asyncio.Queue()
        """A replica's admission queue for client messages (at most CLIENT_QUEUE_LIMIT)."""
        self.refused: list[Incoming] = []
        """Client messages refused for load, to be answered ``busy`` (bounded as well)."""
        self.arrived = asyncio.Event()
        self._outbox: dict[tuple[int, int], list[Routed]] = {}
        """Queued messages by topic group (:meth:`_group`), in the order they were sent."""
        self._flush_timer: asyncio.TimerHandle | None = None
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self.lost = asyncio.Event()
        """Set when the broker connection drops; the owner reconnects (or gives up)."""
        self._written: asyncio.Event | None = None
        """What :meth:`_publish` waits on while a write is pending."""

    async def __aenter__(self) -> Transport:
        # aiomqtt binds to the running loop, so the client is made here, not in __init__.
        self._client = client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self.broker.password,
            identifier=f"{self.net}-{'r' if self.is_replica else 'c'}{self.principal}-{id(self):x}",
            clean_session=True,
            keepalive=30,
            timeout=10,
        )
        # Under load a node legitimately has hundreds of publishes in flight (one
        # per recipient per message, QoS 0); aiomqtt's default threshold of 10
        # would print a warning for nearly every busy millisecond.
        client.pending_calls_threshold = 10_000
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise InputError(f"cannot reach broker at {self.broker}: {exc}") from None
        # Each message is handled as the paho client inside aiomqtt reads it. aiomqtt's
        # own delivery wraps it in a message object, queues it and, to hand it to an
        # ``async for``, makes a task and an ``asyncio.wait`` per message: a third of
        # what a node spent per broker message received. Its iterator is still read
        # (``_read``), as the one place the end of the connection shows.
        client._client.on_message = self._on_paho_message
        no_delay(client._client.socket())
        if self.is_replica:
            subscriptions = topics.replica_subscriptions(self.net, self.principal)
        else:
            accounts = sorted({topics.client_account(p) for p in self.principals})
            subscriptions = [topics.inbox_of_account(self.net, a) for a in accounts]
        for topic in subscriptions:
            await client.subscribe(topic, qos=QOS)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None and self._outbox and not self.lost.is_set():
            await self.flush()  # what was sent last still leaves
        await stop_task(self._reader, aiomqtt.MqttError)
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        if self._client is not None:
            # A graceful DISCONNECT is polite, not needed: never let it hold a command up.
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(self._client.__aexit__(exc_type, exc, tb), DISCONNECT_S)

    async def send(self, to: int, payload: bytes, sender: int | None = None) -> None:
        """Queue ``payload`` (canonical record bytes) for principal ``to`` or BROADCAST.

        It is published by the next :meth:`flush`, at the latest ``flush_tick_s`` later.
        """
        self.queue(to, payload, sender)

    def queue(self, to: int, payload: bytes, sender: int | None = None) -> None:
        """:meth:`send` for a caller that is not a coroutine (a callback-driven client)."""
        sender = self.principal if sender is None else sender
        if sender not in self.principals:
            raise ValueError(f"this connection does not speak for principal {sender}")
        if self._client is None:
            raise RuntimeError("transport used outside its async with block")
        self._outbox.setdefault(self._group(sender, to), []).append(Routed(sender, to, payload))
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(self.flush_tick_s, self._tick)

    def _tick(self) -> None:
        self._flush_timer = None
        for topic, data in self._take_outbox():
            self._publish_nowait(topic, data)

    def _group(self, sender: int, to: int) -> tuple[int, int]:
        """Messages with one key may share a broker message (see the module)."""
        if self.is_replica:
            if to >= CLIENT_ID_BASE:  # replies to one user account's clients
                return (-2, (to - CLIENT_ID_BASE) // CLIENT_SLOTS)
            return (-1, to)
        return ((sender - CLIENT_ID_BASE) // CLIENT_SLOTS, to)

    async def flush(self) -> None:
        """Publish everything queued; return once all of it is written to the socket.

        Only the last broker message is awaited (the MQTT client writes in order),
        so a node that sends a burst is held up once, not once per message.
        """
        messages = self._take_outbox()
        if not messages:
            return
        for topic, data in messages[:-1]:
            self._publish_nowait(topic, data)
        await self._publish(*messages[-1])

    def _take_outbox(self) -> list[tuple[str, bytes]]:
        """Everything queued, as broker messages: one per topic group and size limit."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        outbox, self._outbox = self._outbox, {}
        messages = []
        for items in outbox.values():
            for chunk in _chunks(items):
                if len(chunk) > 1:
                    self.stats["bundled"] += len(chunk)
                messages.append((self._topic(chunk[0].sender, chunk[0].to), wrap(chunk)))
        return messages

    def _topic(self, sender: int, to: int) -> str:
        if to == BROADCAST:
            return topics.broadcast(self.net, sender, self.is_replica)
        return topics.unicast(self.net, sender, self.is_replica, to)

    def _publish_nowait(self, topic: str, data: bytes) -> None:
        """Hand a QoS 0 message to the MQTT client's send queue without waiting for it.

        aiomqtt's ``publish`` makes an event, a ``wait_for`` timer and a suspension
        per message only to learn when it was written; for QoS 0 nothing else comes
        back. Its underlying paho client queues the message and writes it the next
        time the loop finds the socket writable, in order with everything else.
        """
        if self._client is None:
            return  # closed meanwhile: lost, like any QoS 0 message
        info = self._client._client.publish(topic, data, QOS)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._publish_failed()
            return
        self.stats["sent"] += 1

    async def _publish(self, topic: str, data: bytes) -> None:
        """Publish and wait until the message is written, or the connection is lost.

        aiomqtt's ``publish`` waits for paho to confirm the write, and paho never
        confirms a message still queued when the socket breaks: a node whose
        broker was killed under it then sat here for aiomqtt's whole timeout
        (10 s), handling nothing, before it reconnected. So the wait is aiomqtt's
        (its ``on_publish`` sets the event), but ``_read`` ends it as soon as the
        connection is gone.
        """
        client = self._client
        if client is None:
            return  # closed meanwhile: lost, like any QoS 0 message
        info = client._client.publish(topic, data, QOS)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._publish_failed()
            return
        if not info.is_published() and not self.lost.is_set():
            written = self._written = asyncio.Event()
            client._pending_publishes[info.mid] = written
            try:
                await asyncio.wait_for(written.wait(), client.timeout)
            except TimeoutError:
                pass
            finally:
                client._pending_publishes.pop(info.mid, None)
                self._written = None
        if not info.is_published():
            self._publish_failed()
            return
        self.stats["sent"] += 1

    def _publish_failed(self) -> None:
        self.stats["drop.transport.publish-failed"] += 1  # lost, like any QoS 0 message
        self.lost.set()

    async def _read(self) -> None:
        """Wait for the connection to end (messages come to :meth:`_on_paho_message`)."""
        assert self._client is not None
        try:
            async for message in self._client.messages:
                self._received(message.topic.value, message.payload)
        except aiomqtt.MqttError:
            pass
        finally:
            self.lost.set()
            if self._written is not None:
                self._written.set()  # a write still pending never will be: stop waiting

    def _on_paho_message(self, _client: object, _userdata: object, message: Any) -> None:
        """Called inside paho's read: nothing may escape, or paho would lose its place
        in the byte stream (it resets its packet state only after this returns)."""
        try:
            topic = message.topic
        except UnicodeDecodeError:  # the broker should have refused it; not ours anyway
            self.stats["drop.transport.sender-mismatch"] += 1
            return
        try:
            self._received(topic, message.payload)
        except Exception as exc:
            self.stats["drop.transport.error"] += 1
            asyncio.get_running_loop().call_exception_handler(
                {"message": "transport failed to take a message", "exception": exc}
            )

    def _received(self, topic: str, payload: object) -> None:
        for incoming in self.accept_all(topic, payload):
            self.admit(incoming)

    def admit(self, incoming: Incoming) -> None:
        """Queue an accepted message; a replica refuses client work beyond its queue limit."""
        if not self.is_replica or incoming.sender < CLIENT_ID_BASE:
            self.inbox.put_nowait(incoming)
        elif self.client_inbox.qsize() < CLIENT_QUEUE_LIMIT:
            self.client_inbox.put_nowait(incoming)
        else:
            self.stats["drop.busy"] += 1
            if len(self.refused) < CLIENT_QUEUE_LIMIT:
                self.refused.append(incoming)
        self.arrived.set()

    def take(self) -> Incoming | None:
        """The next message to handle, replica traffic first; ``None`` when both are empty."""
        if not self.inbox.empty():
            return self.inbox.get_nowait()
        if not self.client_inbox.empty():
            return self.client_inbox.get_nowait()
        self.arrived.clear()
        return None

    def accept_all(self, topic: str, payload: object) -> list[Incoming]:
        """Unwrap one broker message, a bundle or a lone envelope; count what is dropped.

        Each message's sender must be the topic's (a bundled one: of the topic's
        group), and its addressee one of ours or everyone.
        """
        if not isinstance(payload, (bytes, bytearray)):
            self.stats["drop.transport.not-bytes"] += 1
            return []
        if len(payload) > MAX_PAYLOAD:
            self.stats["drop.transport.undecodable.too-large"] += 1
            return []
        try:
            messages = unwrap(payload)
        except CodecError as exc:
            self.stats[f"drop.transport.undecodable.{exc.reason}"] += 1
            return []
        route = topics.route_of(self.net, topic)
        if route is None:
            self.stats["drop.transport.sender-mismatch"] += len(messages)
            return []
        accepted = []
        for sender, to, data in messages:
            if to is None:  # a lone envelope: the topic says to whom
                exact = True
                to = route.to
            else:
                exact = route.from_replica
            if not _same_group(route.sender, sender, exact):
                self.stats["drop.transport.sender-mismatch"] += 1
            elif sender in self.principals:
                continue  # our own broadcast echoed back
            elif not _same_group(route.to, to, route.to < CLIENT_ID_BASE) or (
                to != BROADCAST and to not in self.principals
            ):
                self.stats["drop.transport.not-for-us"] += 1
            else:
                self.stats["received"] += 1
                accepted.append(Incoming(sender, data, to))
        return accepted

    def accept(self, topic: str, payload: object) -> Incoming | None:
        """The one message of a broker message holding a lone envelope (``None``: dropped)."""
        accepted = self.accept_all(topic, payload)
        return accepted[0] if len(accepted) == 1 else None


def no_delay(sock: object) -> None:
    """Send each write at once (TCP_NODELAY) instead of holding it back under Nagle's rule.

    Our own bundling already groups what a flush sends; Nagle only added a wait: a
    second write waited for the first one's ACK, which the receiving side delays up
    to 40 ms, on every hop of a transaction (client, broker, node, broker, ...). With
    the broker's ``set_tcp_nodelay`` as well, p99 at 80 % of the best rate fell from
    388-864 to 190-244 ms (docs/live.md, "Where a request's time goes").
    """
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _same_group(on_topic: int, claimed: int, exact: bool) -> bool:
    """Whether a bundled message's principal is the topic's (``exact``: a replica, or
    BROADCAST), or else a client of the same user account as the topic's client."""
    if exact or on_topic < CLIENT_ID_BASE or claimed < CLIENT_ID_BASE:
        return claimed == on_topic
    return (claimed - CLIENT_ID_BASE) // CLIENT_SLOTS == (on_topic - CLIENT_ID_BASE) // CLIENT_SLOTS


def _chunks(items: list[Routed]) -> list[list[Routed]]:
    """``items`` cut into runs of at most about BUNDLE_BYTES of payload."""
    chunks: list[list[Routed]] = [[]]
    size = 0
    for item in items:
        if chunks[-1] and size + len(item.payload) > BUNDLE_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item.payload)
    return chunks


def record_tag(payload: bytes | bytearray) -> int | None:
    """The codec tag of ``payload`` without decoding the whole record."""
    unpacker = msgpack.Unpacker()
    unpacker.feed(payload[:16])
    try:
        unpacker.read_array_header()
        tag = unpacker.unpack()
    except Exception:  # garbage: the decoder names the reason
        return None
    return tag if type(tag) is int else None
