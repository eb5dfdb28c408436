"""The history index: every change a valid transaction made to a key, oldest first.

It backs ``Stub.get_history_for_key`` (the patch-management audit trail) and
is kept apart from the world state, with its own savepoint, as Fabric keeps
its history database: whichever of the two lags after a crash is caught up
by replaying blocks from the block store. Only valid transactions are indexed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.state import transaction


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One modification: which transaction, when (its proposal timestamp), and what."""

    tx_id: str
    timestamp_ms: int
    value: bytes
    is_delete: bool
    block: int
    tx: int


@dataclass(frozen=True, slots=True)
class KeyChange:
    namespace: str
    key: str
    entry: HistoryEntry


class HistoryDB(Protocol):
    @property
    def savepoint(self) -> int:
        """Number of the last block indexed; -1 before the genesis block."""
        ...

    def add(self, block_number: int, changes: Sequence[KeyChange]) -> None:
        """Index one block's changes (in transaction order) and move the savepoint."""
        ...

    def history(self, namespace: str, key: str) -> list[HistoryEntry]: ...

    def close(self) -> None: ...


def _check_next(savepoint: int, block_number: int) -> None:
    if block_number != savepoint + 1:
        raise ValueError(f"history is at block {savepoint}, cannot index block {block_number}")


class MemoryHistory:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], list[HistoryEntry]] = {}
        self._savepoint = -1

    @property
    def savepoint(self) -> int:
        return self._savepoint

    def add(self, block_number: int, changes: Sequence[KeyChange]) -> None:
        _check_next(self._savepoint, block_number)
        for change in changes:
            self._entries.setdefault((change.namespace, change.key), []).append(change.entry)
        self._savepoint = block_number

    def history(self, namespace: str, key: str) -> list[HistoryEntry]:
        return list(self._entries.get((namespace, key), ()))

    def close(self) -> None:
        pass


class SqliteHistory:
    """History in SQLite; may share the connection (and file) with :class:`SqliteState`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        with self._db:
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS history (
                    ns BLOB NOT NULL, key BLOB NOT NULL,
                    block INTEGER NOT NULL, tx INTEGER NOT NULL,
                    tx_id TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
                    value BLOB NOT NULL, is_delete INTEGER NOT NULL,
                    PRIMARY KEY (ns, key, block, tx)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS savepoints (
                    name TEXT PRIMARY KEY, block INTEGER NOT NULL) WITHOUT ROWID;
                """
            )

    @property
    def savepoint(self) -> int:
        row = self._db.execute("SELECT block FROM savepoints WHERE name = 'history'").fetchone()
        return -1 if row is None else int(row[0])

    def add(self, block_number: int, changes: Sequence[KeyChange]) -> None:
        _check_next(self.savepoint, block_number)
        # Inside the state's block transaction when the two share a database: one commit.
        with transaction(self._db):
            self._db.executemany(
                "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.namespace.encode(),
                        c.key.encode(),
                        c.entry.block,
                        c.entry.tx,
                        c.entry.tx_id,
                        c.entry.timestamp_ms,
                        c.entry.value,
                        int(c.entry.is_delete),
                    )
                    for c in changes
                ],
            )
            self._db.execute(
                "INSERT OR REPLACE INTO savepoints VALUES ('history', ?)", (block_number,)
            )

    def history(self, namespace: str, key: str) -> list[HistoryEntry]:
        rows = self._db.execute(
            "SELECT tx_id, timestamp_ms, value, is_delete, block, tx FROM history"
            " WHERE ns = ? AND key = ? ORDER BY block, tx",
            (namespace.encode(), key.encode()),
        ).fetchall()
        return [HistoryEntry(t, ts, bytes(v), bool(d), b, x) for t, ts, v, d, b, x in rows]

    def close(self) -> None:
        pass
