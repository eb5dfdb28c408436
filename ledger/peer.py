"""A peer's ledger: block store, world state and history, kept consistent across crashes.

Committing a block is: validate it against the state, store it (with its
validation codes), then apply its valid writes to the state and index them in
the history. The block store is the source of truth; the state and history
each record the last block they applied (their savepoint), and on opening,
whichever lags is caught up from the stored blocks using the codes recorded
in them. So a crash between any two of those steps loses nothing and
validates nothing twice. Where state and history share one SQLite database
(a node directory), one block's writes to both, tx-id index included, are a
single transaction (``StateDB.block_transaction``): one commit per block.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from ledger.block import GENESIS, Block, BlockMetadata, Unwrap, ValidationCode, make_block
from ledger.blockstore import BlockStore
from ledger.codec import record
from ledger.history import HistoryDB, HistoryEntry, MemoryHistory
from ledger.state import MemoryState, StateDB, VersionedValue
from ledger.transaction import Version
from ledger.validator import ChannelConfig, replay_effects, validate_block


@record(73)
@dataclass(frozen=True, slots=True)
class TxStatus:
    """A transaction's fate as every peer agrees on it: the result PBFT returns to the client."""

    tx_id: str
    code: int


@dataclass(frozen=True, slots=True)
class CommitResult:
    block: Block
    codes: tuple[ValidationCode, ...]
    tx_ids: tuple[str, ...]

    def statuses(self) -> list[TxStatus]:
        return [TxStatus(t, int(c)) for t, c in zip(self.tx_ids, self.codes, strict=True)]


class PeerLedger:
    """One channel's ledger on one peer."""

    def __init__(
        self,
        config: ChannelConfig,
        unwrap: Unwrap,
        blocks: BlockStore | None = None,
        state: StateDB | None = None,
        history: HistoryDB | None = None,
    ) -> None:
        self.config = config
        self.unwrap = unwrap
        self.blocks = BlockStore.memory() if blocks is None else blocks
        self.state: StateDB = MemoryState() if state is None else state
        self.history: HistoryDB = MemoryHistory() if history is None else history
        if self.blocks.height == 0:
            self.blocks.append(GENESIS)
        self._catch_up()

    def _catch_up(self) -> None:
        """Replay stored blocks into a lagging state or history database."""
        height = self.blocks.height
        if self.state.savepoint >= height or self.history.savepoint >= height:
            raise ValueError(
                f"state/history (at {self.state.savepoint}/{self.history.savepoint}) are ahead"
                f" of the block store (height {height}): they belong to another ledger"
            )
        start = min(self.state.savepoint, self.history.savepoint) + 1
        for block in self.blocks.blocks(start):
            updates, changes = replay_effects(
                block.number, block.data, block.metadata.validation_codes, self.unwrap
            )
            with self.state.block_transaction():
                if self.state.savepoint < block.number:
                    self.state.apply(block.number, updates)
                if self.history.savepoint < block.number:
                    self.history.add(block.number, changes)

    # ------------------------------------------------------------------ queries

    @property
    def height(self) -> int:
        return self.blocks.height

    @property
    def head(self) -> Block:
        last = self.blocks.last
        assert last is not None  # the genesis block is always there
        return last

    @property
    def head_hash(self) -> bytes:
        return self.head.hash

    def block(self, number: int) -> Block:
        return self.blocks.get(number)

    def get_state(self, namespace: str, key: str) -> VersionedValue | None:
        return self.state.get(namespace, key)

    def get_range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        for key, value in self.state.range(namespace, start, end):
            yield key, value.value

    def get_versioned_range(
        self, namespace: str, start: str, end: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        return self.state.range(namespace, start, end)

    def key_history(self, namespace: str, key: str) -> list[HistoryEntry]:
        return self.history.history(namespace, key)

    def tx_location(self, tx_id: str) -> Version | None:
        return self.state.tx_location(tx_id)

    def tx_status(self, tx_id: str) -> TxStatus | None:
        """The committed fate of a transaction id, looked up through the tx-id index."""
        where = self.state.tx_location(tx_id)
        if where is None:
            return None
        code = self.blocks.get(where.block).metadata.validation_codes[where.tx]
        return TxStatus(tx_id, code)

    # ------------------------------------------------------------------- commit

    def commit(
        self,
        number: int,
        data: Sequence[bytes],
        *,
        certificate: Sequence[bytes] = (),
        timestamp_ms: int = 0,
        view: int = 0,
        stale: Collection[int] = (),
    ) -> CommitResult:
        """Validate and commit the next block (``number`` must be the height).

        ``stale``: positions the ordering service refused to execute (see
        :func:`ledger.validator.validate_block`).
        """
        if number != self.height:
            raise ValueError(f"next block is {self.height}, got {number}")
        verdict = validate_block(
            number, data, timestamp_ms, self.unwrap, self.config, self.state, stale
        )
        metadata = BlockMetadata(
            tuple(certificate), tuple(int(c) for c in verdict.codes), timestamp_ms, view, number
        )
        block = make_block(number, self.head_hash, tuple(data), metadata)
        self.blocks.append(block)
        with self.state.block_transaction():
            self.state.apply(number, verdict.updates)
            self.history.add(number, verdict.changes)
        return CommitResult(block, verdict.codes, verdict.tx_ids)

    def close(self) -> None:
        self.blocks.close()
        self.state.close()
        self.history.close()
