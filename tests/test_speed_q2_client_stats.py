"""The client's stale-reply count, kept in an int between reads of ``stats`` (pbft.client)."""

from __future__ import annotations

from test_pbft_client import make, reply

from pbft.api import Deliver


def test_stale_replies_are_in_stats_whenever_read_and_counted_once() -> None:
    client, kr = make()
    ts = client.submit(b"op", 0).send[0].message.timestamp  # type: ignore[union-attr]
    client.receive(1, 1, reply(kr, 1, ts + 1, b"x"))  # not the outstanding request
    assert client.stats["drop.stale-reply"] == 1
    assert client.stats["drop.stale-reply"] == 1  # a second read adds nothing
    client.receive(2, 1, reply(kr, 1, ts, b"good"))
    done = client.step(Deliver(3, 2, reply(kr, 2, ts, b"good")))
    assert done.completed
    for replica in (0, 3):  # after completion, every late reply is stale
        client.receive(4, replica, reply(kr, replica, ts, b"good"))
    client.receive(5, 0, b"\x93garbage")
    stats = client.stats
    assert stats["drop.stale-reply"] == 3
    assert sum(v for k, v in stats.items() if k.startswith("drop.undecodable")) == 1
