"""PBFT client (OSDI'99 4.1): f+1 matching replies, retransmission with back-off, view learning."""

from __future__ import annotations

import pytest
from test_pbft_replica import signed

from ledger.codec import encode
from pbft.api import BROADCAST, CLIENT_ID_BASE, Deliver, PBFTConfig, Tick
from pbft.auth import Keyring
from pbft.client import Client
from pbft.messages import Reply, Request

C = CLIENT_ID_BASE


def make(n: int = 4) -> tuple[Client, Keyring]:
    kr = Keyring(9)
    return Client(C, PBFTConfig(n=n, client_retry_ms=100), kr.authenticator(C)), kr


def reply(kr: Keyring, replica: int, ts: int, result: bytes, view: int = 0) -> bytes:
    return encode(signed(kr, replica, Reply(view, ts, C, replica, result, b"")))


def test_submit_sends_signed_request_to_believed_primary() -> None:
    client, kr = make()
    out = client.submit(b"op", 5)
    (send,) = out.send
    assert send.to == 0 and isinstance(send.message, Request)
    req = send.message
    assert kr.authenticator(0).verify(
        C, encode(Request(C, req.timestamp, b"op", b"")), req.signature
    )
    assert out.wake_at_ms == 105
    assert client.busy
    with pytest.raises(RuntimeError):
        client.submit(b"again", 6)


def test_result_needs_f_plus_1_matching_replies_from_distinct_replicas() -> None:
    client, kr = make()
    ts = client.submit(b"op", 0).send[0].message.timestamp  # type: ignore[union-attr]
    assert not client.step(Deliver(1, 3, reply(kr, 3, ts, b"forged"))).completed
    assert not client.step(Deliver(2, 1, reply(kr, 1, ts, b"good"))).completed
    assert not client.step(Deliver(3, 1, reply(kr, 1, ts, b"good"))).completed  # same replica
    assert client.stats["drop.duplicate"] == 1
    out = client.step(Deliver(4, 2, reply(kr, 2, ts, b"good")))
    (done,) = out.completed
    assert done.result == b"good" and done.latency_ms == 4 and done.operation == b"op"
    assert not client.busy and out.wake_at_ms is None


def test_reply_with_forged_signature_or_wrong_timestamp_ignored() -> None:
    client, kr = make()
    ts = client.submit(b"op", 0).send[0].message.timestamp  # type: ignore[union-attr]
    forged = encode(Reply(0, ts, C, 2, b"good", b"\x00" * 16))
    client.step(Deliver(1, 2, forged))
    client.step(Deliver(1, 1, reply(kr, 1, ts + 1, b"good")))
    client.step(Deliver(1, 1, b"\x93garbage"))
    assert client.stats["drop.bad-signature"] == 1
    assert client.stats["drop.stale-reply"] == 1
    assert client.busy


def test_retransmission_broadcasts_with_back_off() -> None:
    client, _ = make()
    client.submit(b"op", 0)
    wakes = []
    now = 0
    for _ in range(3):
        out = client.step(Tick(now))
        assert out.wake_at_ms is not None
        if out.send:
            assert out.send[0].to == BROADCAST
        wakes.append(out.wake_at_ms)
        now = out.wake_at_ms
    assert wakes == [100, 300, 700]


def test_client_learns_view_from_f_plus_1_replies() -> None:
    client, kr = make()
    ts = client.submit(b"op", 0).send[0].message.timestamp  # type: ignore[union-attr]
    client.step(Deliver(1, 3, reply(kr, 3, ts, b"r", view=9)))  # a Byzantine claim alone
    client.step(Deliver(1, 1, reply(kr, 1, ts, b"r", view=2)))
    assert client.view == 2
    out = client.submit(b"next", 10)
    assert out.send[0].to == 2


def test_first_timestamp_lets_a_restarted_client_continue_above_executed_ones() -> None:
    from pbft_harness import Cluster

    c = Cluster(n=4, settings={"batch_size": 1})
    c.run_requests(3)
    last = c.apps[0].batches[-1].requests[0].timestamp
    resumed = Client(C, c.config, c.keyring.authenticator(C), first_timestamp=last + 1000)
    first = resumed.submit(b"probe", 0).send[0].message
    assert isinstance(first, Request) and first.timestamp == last + 1000
    resumed = Client(C, c.config, c.keyring.authenticator(C), first_timestamp=last + 1000)
    c.client_objs[C] = resumed
    c.submit(C, b"after restart")
    c.run(c.all_done, max_ms=10_000)
    assert c.completed[C][-1].timestamp == last + 1000
    assert [app.last_executed for app in c.apps] == [4] * 4


def test_first_timestamp_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Client(C, PBFTConfig(n=4), Keyring(9).authenticator(C), first_timestamp=0)


def test_replies_changing_nothing_share_an_output_that_stays_as_returned() -> None:
    """``Client.receive`` hands out its previous idle output again, never a changed one."""
    client, kr = make()
    ts = client.submit(b"op", 0).send[0].message.timestamp  # type: ignore[union-attr]
    first = client.receive(1, 1, reply(kr, 1, ts, b"good"))
    second = client.receive(2, 3, reply(kr, 3, ts, b"other"))
    assert second is first and not first.send and not first.completed
    assert first.wake_at_ms == 100
    first.completed.append(first.completed.copy())  # type: ignore[arg-type]  # a caller's write
    again = client.receive(3, 1, reply(kr, 1, ts, b"good"))  # a duplicate: changes nothing
    assert again is not first and not again.completed and again.wake_at_ms == 100
    done = client.receive(4, 2, reply(kr, 2, ts, b"good"))
    assert [c.result for c in done.completed] == [b"good"] and done.wake_at_ms is None
    assert len(first.completed) == 1 and first.wake_at_ms == 100  # as the caller left it
    assert not again.completed and again.wake_at_ms == 100
