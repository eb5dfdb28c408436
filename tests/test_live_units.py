"""The live runtime's pieces that need no broker: log framing, topics, config, errors."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from pathlib import Path

import pytest

from ledger.codec import encode
from pbft.api import BROADCAST
from sim.cli.main import main
from sim.errors import InputError
from sim.live import broker, cluster, topics
from sim.live.netconfig import load_config, node_dir
from sim.live.node import open_node
from sim.live.transport import MAX_PAYLOAD, BrokerURL, Transport, no_delay
from sim.live.wal import RecordLog
from sim.live.wire import Envelope
from sim.world.disk import read_records


def test_record_log_drops_a_torn_tail_and_keeps_appending_after_it(tmp_path: Path) -> None:
    log = RecordLog(tmp_path)
    log.append([b"one", b"two"])
    log.close()
    with open(log.path, "ab") as f:
        f.write(b"\x00\x00\x00\x09par")  # a record cut short by kill -9
    again = RecordLog(tmp_path)
    assert again.recovered == [b"one", b"two"]
    assert again.torn_bytes == 7
    again.append([b"three"])
    again.close()
    assert list(read_records(log.path)) == [b"one", b"two", b"three"]


def test_record_log_compaction_replaces_everything_before(tmp_path: Path) -> None:
    log = RecordLog(tmp_path)
    log.append([b"a", b"b"])
    log.append([b"snapshot"], compact=True)
    log.append([b"c"])
    log.close()
    assert RecordLog(tmp_path).recovered == [b"snapshot", b"c"]


def test_topics_name_sender_and_addressee() -> None:
    reply = topics.unicast("n1", 2, True, 1003)
    assert reply == "ledgersim/n1/r/2/u/client-0/1003"
    assert topics.route_of("n1", reply) == topics.Route(2, True, 1003)
    vote = topics.unicast("n1", 2, True, 1)
    assert topics.route_of("n1", vote) == topics.Route(2, True, 1)
    everyone = topics.broadcast("n1", 2005, False)
    assert everyone == "ledgersim/n1/c/client-1/2005/all"
    assert topics.route_of("n1", everyone) == topics.Route(2005, False, BROADCAST)
    assert topics.route_of("other", reply) is None
    assert topics.route_of("n1", "ledgersim/n1/r/x/all") is None


@pytest.mark.parametrize(
    "topic",
    [
        "ledgersim/n1/c/client-0/3/all",  # a replica id on a client topic
        "ledgersim/n1/c/client-0/2005/all",  # user 1's client under user 0's account
        "ledgersim/n1/r/1003/all",  # a client id on a replica topic
        "ledgersim/n1/r/1/u/client-1/1003",  # a reply filed under the wrong account
        "ledgersim/n1/r/1/to/1003",  # a reply on a replica-to-replica topic
        "ledgersim/n1/c/client-0/1003/to/1004",  # client to client
    ],
)
def test_topics_of_the_wrong_shape_have_no_route(topic: str) -> None:
    assert topics.route_of("n1", topic) is None


def sections(text: str) -> dict[str, list[str]]:
    blocks = [b for b in text.split("\n\n") if b.startswith("user ")]
    return {b.split("\n")[0]: b.splitlines()[1:] for b in blocks}


def test_acl_lets_each_account_write_only_under_its_own_prefix() -> None:
    found = sections(broker.acl_text("n1", 4, users=3))
    for i in range(4):
        writes = [ln for ln in found[f"user replica-{i}"] if " write " in ln]
        assert writes == [f"topic write ledgersim/n1/r/{i}/#"]
    for k in range(3):
        assert found[f"user client-{k}"] == [
            f"topic write ledgersim/n1/c/client-{k}/#",
            f"topic read ledgersim/n1/r/+/u/client-{k}/+",
        ]
    assert all("write" not in ln for ln in found["user monitor"])
    assert "user client" not in found  # no account shared by every user any more


def test_password_hash_is_mosquitto_pbkdf2_format() -> None:
    line = broker.hash_password("secret", salt=b"0123456789ab")
    kind, iterations, salt, _digest = line.split("$")[1:]
    assert (kind, iterations) == ("7", "101")
    assert salt == "MDEyMzQ1Njc4OWFi"
    assert broker.hash_password("secret", salt=b"0123456789ab") == line
    assert broker.hash_password("other", salt=b"0123456789ab") != line


@pytest.mark.parametrize("url", ["http://h:1", "mqtt://", "mqtt://h:notaport", "h:1883"])
def test_bad_broker_urls_are_input_errors(url: str) -> None:
    with pytest.raises(InputError):
        BrokerURL.parse(url)


def test_transport_drops_garbage_and_mismatched_senders() -> None:
    transport = Transport(BrokerURL("127.0.0.1", 1), "n1", 0)
    topic = topics.broadcast("n1", 1, True)
    assert transport.accept(topic, b"\x93garbage") is None
    assert transport.accept(topic, encode(Envelope(2, b"x"))) is None  # claims 2 on 1's topic
    got = transport.accept(topic, encode(Envelope(1, b"payload")))
    assert got is not None and (got.sender, got.payload, got.to) == (1, b"payload", BROADCAST)
    assert transport.accept(topics.unicast("n1", 1, True, 3), encode(Envelope(1, b"x"))) is None
    # A client account posing as replica 3 on its own topic (issue 13): refused.
    as_replica = "ledgersim/n1/c/client-0/3/all"
    assert transport.accept(as_replica, encode(Envelope(3, b"x"))) is None
    drops = {k: v for k, v in transport.stats.items() if k.startswith("drop")}
    assert drops == {
        "drop.transport.undecodable.trailing-bytes": 1,
        "drop.transport.sender-mismatch": 2,
        "drop.transport.not-for-us": 1,
    }


def test_broker_config_limits_message_size_and_queue(tmp_path: Path) -> None:
    files = broker.write_broker_files(tmp_path, "n1", 4, users=2)
    text = files.config.read_text()
    assert f"message_size_limit {MAX_PAYLOAD}\n" in text
    assert f"max_queued_messages {broker.MAX_QUEUED_MESSAGES}\n" in text
    assert "set_tcp_nodelay true\n" in text  # no Nagle wait on the broker's side of a hop
    assert set(files.passwords) == {
        *(f"replica-{i}" for i in range(4)),
        "client-0",
        "client-1",
        "monitor",
    }


def test_no_delay_turns_nagle_off_on_tcp_sockets_only() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        no_delay(tcp)
        assert tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    left, right = socket.socketpair()  # a Unix socket has no Nagle to turn off
    with left, right:
        no_delay(left)
    no_delay(None)  # paho's socket before it connects


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network directory with an external broker (nothing started)."""
    directory = tmp_path_factory.mktemp("net")
    options = cluster.UpOptions(broker="mqtt://127.0.0.1:1", chaincode="none")
    cluster.init(directory, options)
    return directory


def test_init_writes_a_loadable_config(network: Path) -> None:
    config = load_config(network)
    assert config.n == 4 and config.pbft.f == 1
    assert [m.name for m in config.replicas][:2] == [
        "peer0.org1.example.com",
        "peer0.org2.example.com",
    ]
    assert (
        config.user_of_client(config.client_id("User1@org2.example.com", 7))
        == config.users[config.user_index("User1@org2.example.com")]
    )
    with pytest.raises(InputError, match="already holds a network"):
        cluster.init(network, cluster.UpOptions())


def test_node_refuses_an_id_outside_the_network(network: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--id 9 is not a replica"):
        open_node(network, 9, tmp_path / "n9")


def test_node_refuses_a_data_dir_of_another_replica(network: Path) -> None:
    open_node(network, 1, node_dir(network, 1))
    with pytest.raises(InputError, match=r"belongs to network .* replica 1"):
        open_node(network, 2, node_dir(network, 1))


def test_node_config_not_matching_the_network_is_one_line(
    network: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = json.loads((network / "network.json").read_text())
    raw["replicas"] = raw["replicas"][:3]
    bad = tmp_path / "network.json"
    bad.write_text(json.dumps(raw))
    args = ["node", "--id", "0", "--config", str(bad), "--broker", "mqtt://127.0.0.1:1"]
    assert main([*args, "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "replicas: expected 4 entries, got 3" in err


def test_missing_identity_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "net"
    cluster.init(directory, cluster.UpOptions(broker="mqtt://127.0.0.1:1", chaincode="none"))
    peer = directory / "crypto/peerOrganizations/org2.example.com/peers/peer0.org2.example.com"
    for path in sorted(peer.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    args = ["node", "--id", "1", "--config", str(directory / "network.json")]
    code = main([*args, "--broker", "mqtt://127.0.0.1:1", "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "no identity for peer0.org2.example.com" in err


def test_unreachable_broker_is_one_line(network: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = broker.free_port()
    args = ["node", "--id", "3", "--config", str(network / "network.json")]
    code = main(
        [*args, "--broker", f"mqtt://127.0.0.1:{port}", "--data-dir", str(node_dir(network, 3))]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert f"cannot reach broker at mqtt://127.0.0.1:{port}" in err


def test_status_of_a_directory_without_a_network_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["net", "status", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no live network here" in err and err.count("\n") == 0


def test_a_replica_serves_replica_traffic_first_and_refuses_client_work_beyond_its_queue() -> None:
    from sim.live.transport import CLIENT_QUEUE_LIMIT, Incoming

    transport = Transport(BrokerURL("127.0.0.1", 1), "n1", 0)
    for k in range(CLIENT_QUEUE_LIMIT + 3):
        transport.admit(Incoming(1000 + k, b"client work", 0))
    transport.admit(Incoming(2, b"a vote", BROADCAST))
    assert transport.stats["drop.busy"] == 3
    assert [i.sender for i in transport.refused] == [
        1000 + CLIENT_QUEUE_LIMIT + k for k in range(3)
    ]
    first = transport.take()
    assert first is not None and first.payload == b"a vote"  # though it arrived last
    taken = 0
    while transport.take() is not None:
        taken += 1
    assert taken == CLIENT_QUEUE_LIMIT and not transport.arrived.is_set()


def test_a_client_connection_queues_everything_in_order() -> None:
    from sim.live.transport import Incoming

    transport = Transport(BrokerURL("127.0.0.1", 1), "n1", 1003)
    for k in range(300):
        transport.admit(Incoming(k % 4, b"reply", 1003))
    assert transport.inbox.qsize() == 300 and not transport.refused


def test_f_plus_one_busy_answers_give_a_request_up(network: Path) -> None:
    import asyncio

    from sim.live.client import Busy, ClientPool, settle
    from sim.live.wire import Busy as WireBusy

    async def scenario() -> None:
        user = load_config(network).users[1].name
        pool = ClientPool(network, user, 1, broker=BrokerURL("127.0.0.1", 1))
        cid = pool.ids[0]
        pool.clients[cid].submit(b"op", pool.clock.now_ms())
        request = pool.clients[cid].outstanding
        assert request is not None
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        pool._ended[cid] = settle(future)  # what start() does, without a broker
        pool._refused(WireBusy(cid, request.timestamp - 1, 0), 0)  # an older request: ignored
        pool._refused(WireBusy(cid, request.timestamp, 0), 0)
        pool._refused(WireBusy(cid, request.timestamp, 0), 0)  # the same replica again
        assert not future.done()  # f = 1: one busy replica is not enough
        pool._refused(WireBusy(cid, request.timestamp, 2), 2)
        assert isinstance(future.exception(), Busy)
        fresh = pool.clients[cid]
        assert not fresh.busy  # the id is free for the next request, at a later timestamp
        fresh.submit(b"next", pool.clock.now_ms())
        assert fresh.outstanding is not None and fresh.outstanding.timestamp > request.timestamp

    asyncio.run(scenario())


def test_net_up_takes_the_directory_once_either_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sim.cli.net import _up_directory

    parser_args = {"directory": None, "data_dir": tmp_path}
    assert _up_directory(argparse.Namespace(**parser_args)) == tmp_path  # the older spelling
    assert _up_directory(argparse.Namespace(directory=tmp_path, data_dir=None)) == tmp_path
    assert _up_directory(argparse.Namespace(directory=tmp_path, data_dir=tmp_path)) == tmp_path
    assert main(["net", "up", str(tmp_path / "a"), "--data-dir", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give the network directory once" in err


def test_a_socket_error_in_a_loop_callback_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """What a broker restart leaves behind in the MQTT client's callbacks: no traceback."""
    from sim.live.host import socket_errors_in_one_line

    loop = asyncio.new_event_loop()
    try:
        socket_errors_in_one_line(
            loop, {"message": "Exception in callback", "exception": OSError(9, "Bad file")}
        )
    finally:
        loop.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "Bad file" in err
