"""Which node's block store the live gateway reads: running nodes first, the longest first.

A node restarted after a kill runs again long before it has caught up; read
first, it hid every block the others committed since (block pages 404, a
transaction just committed "not found", its release proof refused).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ledger.block import GENESIS, Block, BlockMetadata, make_block
from ledger.blockstore import DATA_FILE, BlockStore
from sim.fabric.app import LEDGER_DIR
from sim.live import cluster
from sim.live.chain import first_chain
from sim.live.netconfig import load_config, node_dir


def write_chain(path: Path, height: int) -> None:
    store = BlockStore.open(path, sync=False)
    previous: Block = GENESIS
    store.append(GENESIS)
    for number in range(1, height):
        previous = make_block(
            number, previous.hash, (b"tx",), BlockMetadata((), (0,), number, 0, number)
        )
        store.append(previous)
    store.close()


def test_the_longest_store_is_read_first(tmp_path: Path) -> None:
    cluster.init(tmp_path, cluster.UpOptions(broker="mqtt://127.0.0.1:1", chaincode="none"))
    config = load_config(tmp_path)
    for replica, height in enumerate((1, 5, 3)):  # node 0 lags far behind; node 3 has none
        write_chain(node_dir(tmp_path, replica) / LEDGER_DIR, height)
    with first_chain(tmp_path, config) as chain:
        assert (chain.replica, chain.height) == (1, 5)


def test_a_pipe_in_place_of_a_block_store_is_skipped_not_waited_on(tmp_path: Path) -> None:
    cluster.init(tmp_path, cluster.UpOptions(broker="mqtt://127.0.0.1:1", chaincode="none"))
    config = load_config(tmp_path)
    write_chain(node_dir(tmp_path, 1) / LEDGER_DIR, 2)
    ledger = node_dir(tmp_path, 0) / LEDGER_DIR
    ledger.mkdir(parents=True, exist_ok=True)
    fifo = ledger / DATA_FILE
    os.mkfifo(fifo)
    found: list[int] = []

    def read() -> None:
        with first_chain(tmp_path, config) as chain:
            found.append(chain.replica)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    blocked = reader.is_alive()
    if blocked:  # unblock the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
    assert not blocked and found == [1]
