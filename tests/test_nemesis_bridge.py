"""The ``bridge-cut`` nemesis fault on a bridged network (two sites, two brokers).

Nodes 0-1 sit on the main broker, nodes 2-3 and the clients on the second one,
so neither site holds a quorum: while the bridge is cut nothing may commit,
and once it is back every check of the run must pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from live_helpers import watched
from test_live_network import mosquitto

from pbft.api import BROADCAST
from sim.cli.main import main
from sim.live import broker as brokers
from sim.live import cluster
from sim.live.tasks import stop_task
from sim.live.transport import BrokerURL, Transport

pytestmark = pytest.mark.live
__all__ = ["mosquitto"]


@pytest.fixture(scope="module")
def bridged(mosquitto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("nemesis-bridge") / "net"
    with watched(directory):
        pbft = replace(cluster.DEFAULT_PBFT, view_change_timeout_ms=5000)
        cluster.up(directory, cluster.UpOptions(chaincode="kv", pbft=pbft, bridged=True))
        yield directory


def test_nothing_commits_while_the_bridge_is_cut_and_all_recovers(bridged: Path) -> None:
    out = io.StringIO()
    args = ["nemesis", "--network", str(bridged), "--seed", "3", "--duration", "16",
            "--rate", "8", "--faults", "bridge-cut", "--json"]  # fmt: skip
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(args)
    report = json.loads(out.getvalue())
    failed = [c for c in report["checks"] if not c["ok"]]
    assert (code, failed) == (0, []), failed
    cuts = report["faults"]
    assert cuts and all(f["kind"] == "bridge-cut" and not f["problems"] for f in cuts)
    timeline = report["timeline"]
    inside = [
        row
        for f in cuts
        for row in timeline
        if row["t"] >= f["struck_s"] + 1 and row["t"] + 1 <= f["healed_s"]
    ]
    assert inside and all(row["committed"] == 0 for row in inside), inside
    first, last = cuts[0]["struck_s"], cuts[-1]["healed_s"]
    assert sum(r["committed"] for r in timeline if r["t"] + 1 <= first) > 0
    assert sum(r["committed"] for r in timeline if r["t"] >= last) > 0
    # The second broker runs from its own configuration, bridge included, again.
    pid = (bridged / cluster.BRIDGE_DIR / cluster.PID_FILE).read_text().strip()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert Path(argv[argv.index(b"-c") + 1].decode()).name == "mosquitto.conf"


def test_a_publish_pending_when_the_broker_dies_ends_with_the_connection(
    mosquitto: str, tmp_path: Path
) -> None:
    """The cause of this file's old flakiness: a node stuck in ``flush`` on a dead connection.

    The broker is stopped so the node's socket fills and its last publish stays
    queued inside paho, then killed. aiomqtt waits for a write confirmation that
    never comes (up to its 10 s timeout): meanwhile the node handled nothing,
    missed a bridge heal, and came back after the load had ended (lagging, or
    with a peer gone alone into a view change). ``flush`` must end when the
    connection does, with the message counted lost.
    """
    files = brokers.write_broker_files(tmp_path / "broker", "flushnet", 4, 1)
    pid = brokers.start_broker(files, tmp_path / "mosquitto.log")
    url = BrokerURL.parse(f"mqtt://127.0.0.1:{files.port}").with_credentials(
        brokers.replica_user(0), files.passwords[brokers.replica_user(0)]
    )

    async def flush_after_the_broker_dies() -> tuple[bool, Counter[str]]:
        async with Transport(url, "flushnet", 0) as transport:
            os.kill(pid, signal.SIGSTOP)
            for _ in range(64):  # far more than the socket buffers hold
                transport.queue(BROADCAST, os.urandom(256 * 1024))
            flushing = asyncio.ensure_future(transport.flush())
            await asyncio.sleep(0.5)
            assert not flushing.done()  # the broker reads nothing: the write is pending
            cluster.kill_process(pid)
            # Ended by the lost connection, long before aiomqtt's own timeout.
            await asyncio.wait_for(transport.lost.wait(), 5.0)
            done, _ = await asyncio.wait({flushing}, timeout=1.0)
            await stop_task(flushing)
            return bool(done), transport.stats

    try:
        ended, stats = asyncio.run(flush_after_the_broker_dies())
    finally:
        cluster.kill_process(pid)
    assert ended and stats["drop.transport.publish-failed"] == 1, stats
