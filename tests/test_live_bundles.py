"""Bundled broker messages: what a receiver accepts from one, and how senders group them."""

from __future__ import annotations

import asyncio
from typing import Any

from ledger.codec import encode
from pbft.api import BROADCAST, CLIENT_ID_BASE
from sim.live import topics
from sim.live.netconfig import CLIENT_SLOTS
from sim.live.transport import BUNDLE_BYTES, BrokerURL, Incoming, Transport
from sim.live.wire import Bundle, Envelope, Routed, unwrap, wrap

NET = "n1"
ALICE = CLIENT_ID_BASE  # account client-0
ALICE2 = CLIENT_ID_BASE + 7
BOB = CLIENT_ID_BASE + CLIENT_SLOTS  # account client-1


def _drops(transport: Transport) -> dict[str, int]:
    return {k: v for k, v in transport.stats.items() if k.startswith("drop")}


def test_a_replica_accepts_bundled_client_messages_of_the_topics_account_only() -> None:
    replica = Transport(BrokerURL("127.0.0.1", 1), NET, 2)
    topic = topics.unicast(NET, ALICE, False, 2)
    bundle = Bundle(
        (
            Routed(ALICE, 2, b"a"),
            Routed(ALICE2, 2, b"b"),  # another client of the same account: fine
            Routed(BOB, 2, b"c"),  # another user's client: refused
            Routed(1, 2, b"d"),  # a client account posing as replica 1: refused
            Routed(ALICE, 3, b"e"),  # addressed to another replica: not for us
        )
    )
    got = replica.accept_all(topic, encode(bundle))
    assert [(i.sender, i.payload, i.to) for i in got] == [(ALICE, b"a", 2), (ALICE2, b"b", 2)]
    assert _drops(replica) == {
        "drop.transport.sender-mismatch": 2,
        "drop.transport.not-for-us": 1,
    }


def test_a_client_accepts_bundled_replies_from_the_topics_replica_only() -> None:
    client = Transport(BrokerURL("127.0.0.1", 1), NET, ALICE, ALICE2)
    topic = topics.unicast(NET, 1, True, ALICE)
    bundle = Bundle(
        (
            Routed(1, ALICE, b"r1"),
            Routed(1, ALICE2, b"r2"),
            Routed(2, ALICE, b"forged"),  # replica 2's message on replica 1's topic
            Routed(1, BOB, b"other"),  # for another account's client
            Routed(1, BROADCAST, b"vote"),  # replica traffic is not on a client topic
        )
    )
    got = client.accept_all(topic, encode(bundle))
    assert [(i.sender, i.payload, i.to) for i in got] == [(1, b"r1", ALICE), (1, b"r2", ALICE2)]
    assert _drops(client) == {
        "drop.transport.sender-mismatch": 1,
        "drop.transport.not-for-us": 2,
    }
    # A lone envelope still reads as before; garbage is counted, not raised.
    alone = client.accept_all(topic, encode(Envelope(1, b"solo")))
    assert [(i.sender, i.payload) for i in alone] == [(1, b"solo")]
    assert client.accept_all(topic, b"\x93garbage") == []


def test_a_broker_message_of_the_wrong_shape_is_dropped_whole() -> None:
    """The container is opened without the codec's record checks: every shape that is
    not an envelope or a bundle of routed messages is still refused, and counted."""
    replica = Transport(BrokerURL("127.0.0.1", 1), NET, 2)
    topic = topics.unicast(NET, ALICE, False, 2)
    good = encode(Routed(ALICE, 2, b"a"))
    bad_items = [
        encode(Envelope(ALICE, b"x")),  # an envelope where a routed message belongs
        b"\x94\xcc\x9d\xc3\x02\xc4\x01a",  # sender True, not an integer
        b"\x94\xcc\x9d\xcd\x03\xe8\x02\xa1a",  # payload a string, not bytes
        b"\x93\xcc\x9d\x01\x02",  # three fields, not four
    ]
    for bad in bad_items:
        # [BUNDLE_TAG, [good, bad]]: one bad item spoils the whole broker message
        data = b"\x92\xcc\x9c\x92" + good + bad
        assert replica.accept_all(topic, data) == []
    assert replica.accept_all(topic, b"\x92\xcc\x9c\x91" + good) != []
    assert replica.accept_all(topic, b"\x92\xcc\x9c\xc0") == []  # items not an array
    assert replica.accept_all(topic, b"\x93\xcc\x96\x01") == []  # envelope cut short
    assert replica.accept_all(topic, encode(Envelope(ALICE, b"x")) + b"\x00") == []
    assert replica.accept_all(topic, "text") == []
    assert _drops(replica) == {
        "drop.transport.undecodable.malformed": 6,
        "drop.transport.undecodable.trailing-bytes": 1,
        "drop.transport.not-bytes": 1,
    }


def test_a_broker_message_is_packed_as_the_codec_would_encode_it() -> None:
    """``wrap`` skips the codec for speed, never for a different wire form."""
    lone = [Routed(ALICE, 2, b"x" * 300)]
    assert wrap(lone) == encode(Envelope(ALICE, b"x" * 300))
    items = [Routed(0, BROADCAST, b""), Routed(0, 3, b"y" * 70_000), Routed(0, BOB, b"z")]
    assert wrap(items) == encode(Bundle(tuple(items)))
    assert [(s, t, p) for s, t, p in unwrap(wrap(items))] == [
        (i.sender, i.to, i.payload) for i in items
    ]


class _Queued:
    """What paho's ``publish`` returns: ``rc`` 0 is success."""

    rc = 0
    mid = 1

    def is_published(self) -> bool:
        return True  # written at once: nothing to wait for


class _PahoRecorder:
    """Stands in for the paho client inside aiomqtt's, on which the transport queues
    all but the last message of a flush: records what would be published, in order."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, topic: str, data: bytes, qos: int = 0) -> _Queued:
        self.published.append((topic, data))
        return _Queued()


class _Recorder:
    """Stands in for aiomqtt's client (the last message of a flush is awaited on it)."""

    def __init__(self) -> None:
        self._client = _PahoRecorder()
        self.published = self._client.published

    async def publish(self, topic: str, data: bytes, qos: int = 0) -> None:
        self._client.publish(topic, data, qos)


def _published(transport: Transport, sends: list[tuple[int, bytes, int | None]]) -> list[Any]:
    recorder = _Recorder()
    transport._client = recorder  # type: ignore[assignment]

    async def go() -> None:
        for to, payload, sender in sends:
            await transport.send(to, payload, sender)
        await transport.flush()

    asyncio.run(go())
    return recorder.published


def test_a_node_sends_one_broker_message_per_group() -> None:
    node = Transport(BrokerURL("127.0.0.1", 1), NET, 0)
    published = _published(
        node,
        [
            (ALICE, b"reply-a", None),
            (BROADCAST, b"prepare", None),
            (ALICE2, b"reply-a2", None),
            (BOB, b"reply-b", None),
            (BROADCAST, b"commit", None),
        ],
    )
    assert len(published) == 3  # Alice's account, the broadcast, Bob's account
    # Each receiver is handed what its subscriptions would bring it.
    receiver = Transport(BrokerURL("127.0.0.1", 1), NET, ALICE, ALICE2)
    mine = [(t, d) for t, d in published if "/u/client-0/" in t]
    got = [i for topic, data in mine for i in receiver.accept_all(topic, data)]
    assert [(i.payload, i.to) for i in got] == [(b"reply-a", ALICE), (b"reply-a2", ALICE2)]
    replica = Transport(BrokerURL("127.0.0.1", 1), NET, 3)
    broadcasts = [(t, d) for t, d in published if t.endswith("/all")]
    votes = [i for topic, data in broadcasts for i in replica.accept_all(topic, data)]
    assert [i.payload for i in votes] == [b"prepare", b"commit"]


def test_bundles_are_cut_at_the_size_limit() -> None:
    client = Transport(BrokerURL("127.0.0.1", 1), NET, ALICE, ALICE2)
    big = b"x" * (BUNDLE_BYTES // 2 + 1)
    published = _published(client, [(1, big, ALICE), (1, big, ALICE2), (1, b"small", ALICE)])
    assert len(published) == 2
    replica = Transport(BrokerURL("127.0.0.1", 1), NET, 1)
    got = [i for topic, data in published for i in replica.accept_all(topic, data)]
    assert [(i.sender, len(i.payload)) for i in got] == [
        (ALICE, len(big)),
        (ALICE2, len(big)),
        (ALICE, 5),
    ]


class _PahoMessage:
    def __init__(self, topic: bytes, payload: bytes) -> None:
        self._topic = topic
        self.payload = payload

    @property
    def topic(self) -> str:
        return self._topic.decode("utf-8")


def test_a_message_is_taken_inside_pahos_read_and_nothing_escapes_it() -> None:
    """Messages are handled in paho's own read (no aiomqtt queue): a failure there is
    reported and counted, never raised into paho, whose packet state it would break."""

    class Failing(Transport):
        def admit(self, incoming: Incoming) -> None:
            if incoming.payload == b"boom":
                raise RuntimeError("a bug in the owner")
            super().admit(incoming)

    replica = Failing(BrokerURL("127.0.0.1", 1), NET, 2)
    topic = topics.unicast(NET, ALICE, False, 2).encode()
    reported: list[BaseException] = []

    async def go() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context["exception"]))
        for payload in (b"ok", b"boom"):
            message = _PahoMessage(topic, encode(Envelope(ALICE, payload)))
            replica._on_paho_message(None, None, message)
        replica._on_paho_message(None, None, _PahoMessage(b"\xff/bad", b""))

    asyncio.run(go())
    first = replica.take()
    assert first is not None and first.payload == b"ok"
    assert replica.take() is None
    assert [type(exc) for exc in reported] == [RuntimeError]
    assert _drops(replica) == {
        "drop.transport.error": 1,
        "drop.transport.sender-mismatch": 1,
    }
