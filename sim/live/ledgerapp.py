"""The ledger-backed application of a live node, its endorser, and disk-fault recovery.

The node's ledger lives in ``<data dir>/ledger/`` exactly as a simulated
node's does with ``--data-dir`` (``sim.fabric.app``), with fsync on (``sync=True``):
a block is durable before the replies and checkpoints that depend on it leave
the node, because ``execute`` runs inside the replica's step and the host
publishes only after :meth:`LiveLedgerApplication.make_durable` (one fsync of
the block file for every block the group of steps committed, next to the one
of the PBFT record log; see ``BlockStore.defer_syncs``).

Before the ledger opens, :func:`check_ledger_dir` looks at the block store the
way an operator would want after a disk fault. A torn tail (a block cut short
by a crash or a truncated file) is cut back to the last whole block; world
state and history, which are derived from the blocks, are rebuilt from them if
they had already applied the lost block; one line says so. A block the index
vouches for that no longer reads back (a flipped byte, a tampered file) is not
something to repair silently: the node refuses to start, naming the block and
the repair: move the ledger and the PBFT record log aside, so the node rejoins
as a fresh replica and fetches the blocks from the others by state transfer.
(Moving only the ledger is not enough: the record log remembers which client
requests were executed, and re-executing them into an empty ledger would mark
them duplicates.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from chaincode.endorser import Endorser
from ledger.blockstore import BlockStore, BlockStoreCorrupt
from ledger.codec import decode, encode
from ledger.history import SqliteHistory
from ledger.state import SqliteState
from ledger.transaction import SignedProposal
from ledger.validator import ChannelConfig
from msp.identity import SigningIdentity
from msp.policy import PolicyError, parse
from sim.errors import InputError
from sim.fabric.app import LEDGER_DIR, STATE_FILE, LedgerApplication, open_ledger_dir
from sim.fabric.channel import CHAINCODES
from sim.fabric.sdk import DEFAULT_CHANNEL
from sim.live.identity import Directory
from sim.live.netconfig import NetworkConfig
from sim.world.disk import RECORDS_FILE

SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def channel(config: NetworkConfig, directory: Directory) -> ChannelConfig:
    try:
        policy = parse(config.endorsement_policy)
    except PolicyError as exc:
        raise InputError(f"network.json: endorsement_policy: {exc}") from None
    return ChannelConfig(DEFAULT_CHANNEL, directory.msps, {name: policy for name in CHAINCODES})


def _derived_savepoint(ledger_dir: Path) -> int:
    """The furthest block world state or history has applied (-1 when there is none)."""
    if not (ledger_dir / STATE_FILE).exists():
        return -1
    connection = sqlite3.connect(ledger_dir / STATE_FILE)
    try:
        return max(SqliteState(connection).savepoint, SqliteHistory(connection).savepoint)
    finally:
        connection.close()


def check_ledger_dir(ledger_dir: Path) -> str:
    """Repair a torn tail (one line saying what was done, else ``""``); refuse corruption."""
    if not ledger_dir.is_dir():
        return ""
    try:
        store = BlockStore.open(ledger_dir, sync=True)
    except BlockStoreCorrupt as exc:
        records = ledger_dir.parent / RECORDS_FILE
        raise InputError(
            f"{ledger_dir}: block store corrupt at block {exc.number} ({exc.reason}); "
            f"refusing to start. To repair, move {ledger_dir} and {records} aside and start "
            "the node again: it rejoins empty and fetches the blocks from the others"
        ) from None
    recovery, height = store.recovery, store.height
    store.close()
    notes = []
    if recovery.dropped_bytes:
        notes.append(
            f"block store: {recovery.reason}; cut {recovery.dropped_bytes} bytes "
            f"back to block {height - 1}"
        )
    if _derived_savepoint(ledger_dir) >= height:
        for suffix in SQLITE_SIDE_FILES:
            (ledger_dir / (STATE_FILE + suffix)).unlink(missing_ok=True)
        notes.append(f"state and history rebuilt from blocks 0..{height - 1}")
    return "; ".join(notes)


class LiveLedgerApplication(LedgerApplication):
    """The ledger application whose blocks the host makes durable once per group of steps."""

    def make_durable(self) -> None:
        self.ledger.blocks.sync_pending()


def open_ledger_application(
    config: NetworkConfig, signer: SigningIdentity, directory: Directory, data_dir: Path
) -> tuple[LedgerApplication, Callable[[bytes, int], bytes], str]:
    """The node's ledger application, a bytes-in, bytes-out endorser, and any disk repair."""
    channel_config = channel(config, directory)
    ledger_dir = data_dir / LEDGER_DIR
    repaired = check_ledger_dir(ledger_dir)
    ledger_dir.mkdir(parents=True, exist_ok=True)
    app = LiveLedgerApplication(open_ledger_dir(ledger_dir, channel_config, sync=True))
    app.ledger.blocks.defer_syncs()
    endorser = Endorser(signer, app.ledger, channel_config.msps, DEFAULT_CHANNEL)

    def endorse(proposal: bytes, now_ms: int) -> bytes:
        return encode(endorser.process(decode(proposal, SignedProposal), now_ms))

    return app, endorse, repaired
