"""No commit a client saw is lost when every node is killed -9 under load.

The live nodes write a block during the replica's step and fsync it once per
group of steps, beside the PBFT record log, before any reply leaves
(``sim.live.host.NodeHost._carry_out``); world state, history and the tx-id
index are one SQLite transaction per block, replayed from the block store when
they lag. This test holds that to its promise from the client's side: every
transaction for which the load generator got f+1 agreeing "valid" replies is,
after all four nodes are killed at once mid-load and restarted, in every
node's block store, marked valid.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from live_helpers import wait_for, watched

from ledger.block import ValidationCode
from ledger.blockstore import BlockStore
from ledger.validator import parse
from sim.errors import InputError
from sim.fabric.app import LEDGER_DIR, unwrap_request
from sim.live import broker, cluster
from sim.live.host import read_status
from sim.live.load import run_load
from sim.live.netconfig import load_config, node_dir

pytestmark = pytest.mark.live

RATE, SECONDS = 150.0, 6.0
"""Well above what this shared machine commits, so requests queue at every node."""


@pytest.fixture()
def net(tmp_path: Path) -> Iterator[Path]:
    try:
        broker.find_mosquitto()
    except InputError as exc:
        pytest.fail(f"live tests need mosquitto: {exc}")
    directory = tmp_path / "net"
    with watched(directory):
        cluster.up(directory, cluster.UpOptions(chaincode="kv"))
        yield directory


def heights(directory: Path, n: int) -> list[int]:
    return [int((read_status(node_dir(directory, i)) or {}).get("height", 0)) for i in range(n)]


def valid_tx_ids(directory: Path, replica: int) -> set[str]:
    """The transactions a node's block store (read from disk) holds as valid."""
    store = BlockStore.open(node_dir(directory, replica) / LEDGER_DIR, readonly=True)
    found: set[str] = set()
    for block in store.blocks(1):
        for item, code in zip(block.data, block.metadata.validation_codes, strict=True):
            payload = parse(item, unwrap_request)[2]
            if payload is not None and code == ValidationCode.VALID:
                found.add(payload.header.tx_id)
    store.close()
    return found


def test_kill9_every_node_under_load_loses_no_commit_a_client_saw(net: Path) -> None:
    config = load_config(net)
    n = config.n
    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(
            asyncio.run,
            run_load(net, RATE, SECONDS, timeout_s=40, timeline=True),
        )
        start = min(heights(net, n))
        wait_for("commits under load", lambda: min(heights(net, n)) >= start + 3)
        pids = [cluster.node_pid(net, i) for i in range(n)]
        for pid in pids:
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            assert pid is not None
            wait_for("the nodes to die", lambda p=pid: not broker.pid_alive(p), 5)
        for i in range(n):
            cluster.start_node(net, config, i)
        cluster.wait_started(net, config, list(range(n)), 30)
        report: dict[str, Any] = load.result(timeout=120)
    seen = set(report["committed_tx_ids"])
    assert seen, report  # the kill came after commits the client saw
    top = max(heights(net, n))
    wait_for("every node to reach the others", lambda: min(heights(net, n)) >= top, 60)
    cluster.down(net)
    for i in range(n):
        missing = seen - valid_tx_ids(net, i)
        assert not missing, f"node {i} lost {len(missing)} committed transactions"
