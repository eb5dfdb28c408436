"""Reading a live network's committed blocks from its nodes' directories, read-only.

PBFT replies tell a client its transaction's validation code, not the block
that holds it; a release proof (``sim.fabric.proof``) needs that block with its
commit certificate, and the gateway's ledger pages need blocks by number. On
a network started by ``net up`` every node's block store is on this host, so
they are read here without the node's help: opened read-only (a half-written
last block is left out, never repaired), running nodes first, so a killed
node's stale store is the last resort. A deployment whose nodes live on other
hosts has no such directories, and these reads say so in one line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from ledger.block import Block
from ledger.blockstore import DATA_FILE, BlockStore, BlockStoreCorrupt
from ledger.validator import parse as parse_item
from sim.errors import InputError
from sim.fabric.app import LEDGER_DIR, unwrap_request
from sim.live import broker as brokers
from sim.live import cluster
from sim.live.netconfig import NetworkConfig, node_dir


@dataclass(slots=True)
class NodeChain:
    """One node's blocks as they were when opened."""

    replica: int
    peer: str
    running: bool
    store: BlockStore

    @property
    def height(self) -> int:
        return self.store.height

    def block(self, number: int) -> Block:
        return self.store.get(number)

    def locate(self, tx_id: str) -> tuple[Block, int] | None:
        """The block holding ``tx_id`` and its index there (newest blocks first)."""
        for number in range(self.height - 1, -1, -1):
            block = self.store.get(number)
            for index, item in enumerate(block.data):
                payload = parse_item(item, unwrap_request)[2]
                if payload is not None and payload.header.tx_id == tx_id:
                    return block, index
        return None


def running(directory: Path, replica: int) -> bool:
    pid = cluster.node_pid(directory, replica)
    return pid is not None and brokers.pid_alive(pid)


def _open(directory: Path, config: NetworkConfig, replica: int) -> NodeChain | None:
    path = node_dir(directory, replica) / LEDGER_DIR
    if not (path / DATA_FILE).is_file():  # none yet; a pipe or device would block the read
        return None
    try:
        store = BlockStore.open(path, sync=False, readonly=True)
    except (BlockStoreCorrupt, OSError):
        return None
    return NodeChain(replica, config.replicas[replica].name, running(directory, replica), store)


def _stored_bytes(directory: Path, replica: int) -> int:
    try:
        return (node_dir(directory, replica) / LEDGER_DIR / DATA_FILE).stat().st_size
    except OSError:
        return 0


def node_chains(directory: Path, config: NetworkConfig) -> Generator[NodeChain, None, None]:
    """Each readable node's chain, running nodes first, longest stores first among them
    (each closed when the caller moves on).

    A running node may be far behind (just restarted, still fetching state);
    read first, it would hide every block the others committed since. The
    block store only grows, so its size orders the nodes without opening them.
    """
    for replica in sorted(
        range(config.n),
        key=lambda i: (not running(directory, i), -_stored_bytes(directory, i), i),
    ):
        chain = _open(directory, config, replica)
        if chain is None:
            continue
        try:
            yield chain
        finally:
            chain.store.close()


@contextlib.contextmanager
def first_chain(directory: Path, config: NetworkConfig) -> Iterator[NodeChain]:
    """The chain of one node, a running one if any; an InputError when none is on this host."""
    chains = node_chains(directory, config)
    try:
        chain = next(chains, None)
        if chain is None:
            raise InputError(
                f"{directory}: no node's block store on this host (nodes run elsewhere?)"
            )
        yield chain
    finally:
        chains.close()


def find_committed(directory: Path, config: NetworkConfig, tx_id: str) -> tuple[Block, int, str]:
    """The block holding ``tx_id``, its index, and the peer read; searched on every node."""
    for chain in node_chains(directory, config):
        found = chain.locate(tx_id)
        if found is not None:
            return found[0], found[1], chain.peer
    raise InputError(f"transaction {tx_id[:12]} is in no node's block store on this host")
