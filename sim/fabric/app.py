"""The ledger as PBFT's application, and where a node keeps it.

:class:`LedgerApplication` turns each committed PBFT batch into one block
(``seq`` becomes the block number, each request's encoding a data item, the
commit certificate and agreed timestamp the metadata), validates and commits
it, and answers every request with the :class:`~ledger.peer.TxStatus` all
correct peers computed, so the PBFT client's f+1 matching replies *are* the
transaction's final validation code. Its ``head_digest`` is the block's header
hash, which is also PBFT's chained checkpoint digest (docs/contracts.md).

Where a node keeps its ledger: ``<node dir>/ledger/`` (block store files,
``state.sqlite`` and ``channel.json``, see :mod:`sim.fabric.channel`) when the
run has a data directory; otherwise the block store lives in memory in
``NodeDisk.state`` (so it survives simulated crashes) and the world state is
rebuilt from it on recovery.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from ledger.block import Unwrap
from ledger.blockstore import BlockStore, MemoryFile
from ledger.codec import CodecError, decode, encode
from ledger.history import SqliteHistory
from ledger.peer import PeerLedger, TxStatus
from ledger.state import SqliteState
from ledger.validator import ChannelConfig
from ledger.validator import parse as parse_item
from pbft.messages import Commit, CommittedBatch, Request
from sim.fabric.channel import CHANNEL_FILE, save_channel
from sim.world.disk import NodeDisk

LEDGER_DIR = "ledger"
"""Subdirectory of a node directory holding its ledger."""
STATE_FILE = "state.sqlite"


def unwrap_request(item: bytes) -> bytes | None:
    """A block data item is an encoded PBFT request; its operation is the envelope."""
    try:
        return decode(item, Request).operation
    except CodecError:
        return None


class LedgerApplication:
    """``pbft.api.Application`` backed by a :class:`PeerLedger`."""

    def __init__(self, ledger: PeerLedger) -> None:
        self.ledger = ledger

    @property
    def last_executed(self) -> int:
        return self.ledger.height - 1

    @property
    def head_digest(self) -> bytes:
        return self.ledger.head_hash

    def execute(
        self, batch: CommittedBatch, fresh: Sequence[bool] | None = None
    ) -> Sequence[bytes]:
        data = tuple(encode(r) for r in batch.requests)
        if fresh is not None and len(fresh) != len(data):
            raise ValueError(f"fresh has {len(fresh)} entries for {len(data)} requests")
        stale = () if fresh is None else [i for i, new in enumerate(fresh) if not new]
        result = self.ledger.commit(
            batch.seq,
            data,
            certificate=tuple(encode(c) for c in batch.certificate),
            timestamp_ms=batch.timestamp_ms,
            view=batch.view,
            stale=stale,
        )
        return [encode(status) for status in result.statuses()]

    def results_at(self, seq: int) -> Sequence[bytes] | None:
        """What ``execute`` returned for block ``seq``: each transaction's id and stored code."""
        if not 1 <= seq < self.ledger.height:
            return None
        block = self.ledger.block(seq)
        results = []
        for item, code in zip(block.data, block.metadata.validation_codes, strict=True):
            payload = parse_item(item, self.ledger.unwrap)[2]
            tx_id = "" if payload is None else payload.header.tx_id
            results.append(encode(TxStatus(tx_id, int(code))))
        return results

    def batch_at(self, seq: int) -> CommittedBatch | None:
        if not 1 <= seq < self.ledger.height:
            return None
        block = self.ledger.block(seq)
        meta = block.metadata
        return CommittedBatch(
            seq,
            meta.view,
            meta.timestamp_ms,
            tuple(decode(item, Request) for item in block.data),
            tuple(decode(c, Commit) for c in meta.certificate),
        )

    def close(self) -> None:
        self.ledger.close()


def open_ledger(disk: NodeDisk, config: ChannelConfig, *, sync: bool = False) -> PeerLedger:
    """The ledger of the node whose disk is ``disk``, as its durable state left it."""
    if disk.path is None:
        files = disk.state.setdefault("ledger.blockstore", (MemoryFile(), MemoryFile()))
        return PeerLedger(config, unwrap_request, BlockStore(files[0], files[1], sync=False))
    return open_ledger_dir(disk.path / LEDGER_DIR, config, sync=sync)


def open_ledger_dir(
    directory: Path, config: ChannelConfig, *, sync: bool = True, unwrap: Unwrap = unwrap_request
) -> PeerLedger:
    """A ledger kept in ``directory`` (block store files and an SQLite state database).

    A new ledger also records its channel configuration (:data:`CHANNEL_FILE`),
    so ``ledger verify`` can replay validation later with the same policies.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / CHANNEL_FILE).exists():
        save_channel(directory, config, sync=sync)
    blocks = BlockStore.open(directory, sync=sync)
    connection = sqlite3.connect(directory / STATE_FILE)
    # The block store is the durable record; world state and history are derived
    # from it, and PeerLedger replays whatever blocks they lag behind on reopen.
    # So SQLite need not fsync every commit: write-ahead logging with
    # synchronous=NORMAL stays consistent after a crash or power loss (it may
    # only lose the newest commits, which the replay restores), and saves two
    # fsyncs per block on live nodes.
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = " + ("NORMAL" if sync else "OFF"))
    return PeerLedger(config, unwrap, blocks, SqliteState(connection), SqliteHistory(connection))
