"""A live network split over two mosquitto brokers joined by a bridge (two sites on one host).

Nodes 0-1 attach to the main broker, nodes 2-3 and the clients to the second
one, so no quorum of three exists on either side: every commit proves that
the bridge relays PBFT traffic both ways, and cutting the bridge must stall
the far side until it comes back.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiomqtt
import pytest
from live_helpers import watched
from test_live_network import (
    heads_agree,
    mosquitto,
    password,
    statuses,
    topics_carrying,
    wait_for,
)

from ledger.codec import encode
from sim.cli.main import main
from sim.live import broker, cluster, topics
from sim.live.load import run_load
from sim.live.netconfig import broker_url_for, load_config, node_dir
from sim.live.transport import BrokerURL
from sim.live.wire import Envelope

pytestmark = pytest.mark.live
__all__ = ["mosquitto"]  # the shared session fixture, re-exported for pytest


@pytest.fixture(scope="module")
def bridged(mosquitto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("bridge") / "net"
    pbft = replace(cluster.DEFAULT_PBFT, view_change_timeout_ms=1000, client_retry_ms=500)
    with watched(directory):
        cluster.up(directory, cluster.UpOptions(pbft=pbft, bridged=True))
        yield directory


def port_of(url: str) -> int:
    return BrokerURL.parse(url).port


def node_broker_port(directory: Path, replica: int) -> int:
    """The port a running node was told to use, read from its command line."""
    pid = cluster.node_pid(directory, replica)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return port_of(argv[argv.index(b"--broker") + 1].decode())


def login(directory: Path, port: int, user: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password(directory, user))


def verify_all(directory: Path) -> None:
    config = load_config(directory)
    crypto = str(directory / config.crypto_dir)
    for i in range(config.n):
        assert main(["ledger", "verify", str(node_dir(directory, i)), "--msp", crypto]) == 0


def test_split_network_commits_across_the_bridge(bridged: Path) -> None:
    config = load_config(bridged)
    main_port, far_port = port_of(config.broker_url), port_of(broker_url_for(config, None))
    assert main_port != far_port
    assert [node_broker_port(bridged, i) for i in range(config.n)] == [main_port] * 2 + [
        far_port
    ] * 2
    report = asyncio.run(run_load(bridged, rate=20, duration_s=1, timeout_s=20))
    assert report["committed"] == report["submitted"] == 20
    wait_for("heads to agree", lambda: heads_agree(bridged, at_least=1))
    verify_all(bridged)


def test_acl_holds_on_the_far_broker(bridged: Path) -> None:
    """Replica 2 on the far broker cannot pose as replica 0; its own topic crosses the bridge."""
    config = load_config(bridged)
    own = topics.broadcast(config.net, 2, True)
    forged = topics.broadcast(config.net, 0, True)
    payload = encode(Envelope(2, b"bridge-probe"))

    async def scenario() -> list[str]:
        async with login(bridged, port_of(config.broker_url), "monitor") as monitor:
            await monitor.subscribe(f"{topics.network_root(config.net)}/#")
            async with login(bridged, port_of(broker_url_for(config, 2)), "replica-2") as far:
                await far.publish(forged, payload)
                await far.publish(own, payload)
            seen = await topics_carrying(monitor, payload)
        return seen

    assert asyncio.run(scenario()) == [own]


def test_progress_stops_without_the_bridge_and_resumes(bridged: Path) -> None:
    config = load_config(bridged)
    wait_for("a quiet, agreeing network", lambda: heads_agree(bridged))
    height = statuses(bridged)[2]["height"]
    main_pid = int((bridged / cluster.BROKER_DIR / cluster.PID_FILE).read_text())
    os.kill(main_pid, signal.SIGKILL)  # nodes 0-1 and the bridge lose the main broker
    wait_for("the main broker to die", lambda: not broker.pid_alive(main_pid), 5)
    stalled = asyncio.run(run_load(bridged, rate=4, duration_s=0.5, timeout_s=3))
    assert stalled["committed"] == 0 and stalled["failed"] == stalled["submitted"]
    assert [s["height"] for s in statuses(bridged)[2:]] == [height, height]
    cluster.start_broker(bridged, config)
    wait_for(
        "nodes 0-1 to reconnect",
        lambda: all(s.get("connections", 0) >= 2 for s in statuses(bridged)[:2]),
    )
    report = asyncio.run(run_load(bridged, rate=10, duration_s=1, timeout_s=20))
    assert report["committed"] == report["submitted"] == 10
    wait_for("heads to agree", lambda: heads_agree(bridged, at_least=height + 1))
    verify_all(bridged)
