"""One SQLite transaction per block for world state, history and the tx-id index."""

from __future__ import annotations

import sqlite3

import pytest

from ledger.history import HistoryEntry, KeyChange, SqliteHistory
from ledger.state import SqliteState, UpdateBatch, VersionedValue
from ledger.transaction import Version


def _block(number: int) -> tuple[UpdateBatch, list[KeyChange]]:
    version = Version(number, 0)
    batch = UpdateBatch(
        {("kv", f"k{number}"): VersionedValue(b"v", version)}, {f"t{number}": version}
    )
    entry = HistoryEntry(f"t{number}", 0, b"v", False, number, 0)
    return batch, [KeyChange("kv", f"k{number}", entry)]


def _stores() -> tuple[sqlite3.Connection, SqliteState, SqliteHistory, list[str]]:
    db = sqlite3.connect(":memory:")
    state, history = SqliteState(db), SqliteHistory(db)
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    return db, state, history, statements


def test_a_block_is_one_commit_for_state_history_and_tx_ids() -> None:
    _db, state, history, statements = _stores()
    for number in range(3):
        batch, changes = _block(number)
        with state.block_transaction():
            state.apply(number, batch)
            history.add(number, changes)
    assert sum(s.strip().upper() == "COMMIT" for s in statements) == 3
    assert state.savepoint == history.savepoint == 2
    assert state.tx_location("t2") == Version(2, 0) and len(history.history("kv", "k1")) == 1


def test_a_failure_inside_the_block_undoes_all_of_it() -> None:
    _db, state, history, _ = _stores()
    batch, changes = _block(0)
    with state.block_transaction():
        state.apply(0, batch)
        history.add(0, changes)
    batch, changes = _block(1)
    with pytest.raises(ValueError, match="history is at block 0"), state.block_transaction():
        state.apply(1, batch)
        history.add(5, changes)  # the wrong block: refused after the state was written
    assert state.savepoint == 0  # what the rollback left, not what apply had reached
    assert state.get("kv", "k1") is None and state.tx_location("t1") is None
    assert history.savepoint == 0
    # Alone (no enclosing block transaction) each store still commits by itself.
    state.apply(1, batch)
    assert SqliteState(_db).savepoint == 1
