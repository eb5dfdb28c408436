"""The world state: the latest value and version of every key, per chaincode namespace.

A version is the height of the transaction that last wrote the key
(:class:`~ledger.transaction.Version`: block number, index in the block); MVCC
validation compares the versions a transaction read against these.

Two stores with one interface: :class:`MemoryState` for simulations (rebuilt
from the block store after a simulated crash) and :class:`SqliteState` for
node directories. Both apply a block's updates atomically together with the
*savepoint*, the number of the last block applied, so after a crash the peer
knows exactly which blocks to replay from the block store (as Fabric's
state database does).

The transaction-id index lives here too, updated in the same atomic step, so
duplicate detection and state can never disagree about which blocks were
committed.

Keys are ordered by code point, which is also the byte order of their UTF-8
form; SQLite stores them as UTF-8 BLOBs so composite keys (which contain NUL)
survive and sort the same way in both stores.
"""

from __future__ import annotations

import bisect
import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from ledger.transaction import Version


@dataclass(frozen=True, slots=True)
class VersionedValue:
    value: bytes
    version: Version


@dataclass(slots=True)
class UpdateBatch:
    """The effect of one block's valid transactions, applied atomically."""

    writes: dict[tuple[str, str], VersionedValue | None] = field(default_factory=dict)
    """(namespace, key) -> new value, or None for a delete; later writes replace earlier ones."""
    tx_ids: dict[str, Version] = field(default_factory=dict)
    """Transaction ids to remember (for DUPLICATE_TXID) and where they are."""


class StateReader(Protocol):
    """Read access to committed state (what simulation and validation use)."""

    def get(self, namespace: str, key: str) -> VersionedValue | None: ...

    def range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, VersionedValue]]:
        """Keys in ``[start, end)`` in order; ``end == ""`` means no upper bound."""
        ...

    def tx_location(self, tx_id: str) -> Version | None:
        """Where a transaction id was committed (valid or not), if it was."""
        ...

    def committed_tx_ids(self, tx_ids: Iterable[str]) -> set[str]:
        """Those of ``tx_ids`` committed already: one lookup for a whole block's ids."""
        ...


class StateDB(StateReader, Protocol):
    @property
    def savepoint(self) -> int:
        """Number of the last block applied; -1 before the genesis block."""
        ...

    def apply(self, block_number: int, batch: UpdateBatch) -> None:
        """Apply ``batch`` and move the savepoint to ``block_number``, all or nothing."""
        ...

    def block_transaction(self) -> AbstractContextManager[None]:
        """One all-or-nothing unit for everything a block writes to this store's database.

        History and state that share an SQLite database then commit a block in one
        transaction (one WAL write) instead of one each.
        """
        ...

    def close(self) -> None: ...


LOOKUP_CHUNK = 500
"""Ids asked at most per query (SQLite allows 999 parameters in its oldest builds)."""


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Commit at the end, unless an enclosing unit (one block's) is open and commits it."""
    if db.in_transaction:
        yield
        return
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()


def _check_next(savepoint: int, block_number: int) -> None:
    if block_number != savepoint + 1:
        raise ValueError(f"state is at block {savepoint}, cannot apply block {block_number}")


class MemoryState:
    """World state in dictionaries, with a sorted key list per namespace for ranges."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, VersionedValue]] = {}
        self._sorted: dict[str, list[str]] = {}
        self._tx_ids: dict[str, Version] = {}
        self._savepoint = -1

    @property
    def savepoint(self) -> int:
        return self._savepoint

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        return self._values.get(namespace, {}).get(key)

    def range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, VersionedValue]]:
        keys = self._sorted.get(namespace, [])
        values = self._values.get(namespace, {})
        lo = bisect.bisect_left(keys, start)
        hi = len(keys) if end == "" else bisect.bisect_left(keys, end)
        # Iterate over a copy: a caller may apply a block while still iterating.
        for key in keys[lo:hi]:
            value = values.get(key)
            if value is not None:
                yield key, value

    def tx_location(self, tx_id: str) -> Version | None:
        return self._tx_ids.get(tx_id)

    def committed_tx_ids(self, tx_ids: Iterable[str]) -> set[str]:
        return {tx_id for tx_id in tx_ids if tx_id in self._tx_ids}

    def apply(self, block_number: int, batch: UpdateBatch) -> None:
        _check_next(self._savepoint, block_number)
        for (namespace, key), new in batch.writes.items():
            values = self._values.setdefault(namespace, {})
            keys = self._sorted.setdefault(namespace, [])
            if new is None:
                if values.pop(key, None) is not None:
                    del keys[bisect.bisect_left(keys, key)]
            else:
                if key not in values:
                    bisect.insort(keys, key)
                values[key] = new
        self._tx_ids.update(batch.tx_ids)
        self._savepoint = block_number

    def block_transaction(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def close(self) -> None:
        pass


class SqliteState:
    """World state in an SQLite database the host opened (one file in the node directory)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        with self._db:
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS state (
                    ns BLOB NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
                    block INTEGER NOT NULL, tx INTEGER NOT NULL,
                    PRIMARY KEY (ns, key)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS tx_ids (
                    tx_id TEXT PRIMARY KEY, block INTEGER NOT NULL, tx INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS savepoints (
                    name TEXT PRIMARY KEY, block INTEGER NOT NULL) WITHOUT ROWID;
                """
            )
        # Only this object writes the row, so it is read once, not once per block.
        self._savepoint = self._stored_savepoint()

    def _stored_savepoint(self) -> int:
        row = self._db.execute("SELECT block FROM savepoints WHERE name = 'state'").fetchone()
        return -1 if row is None else int(row[0])

    @property
    def savepoint(self) -> int:
        return self._savepoint

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        row = self._db.execute(
            "SELECT value, block, tx FROM state WHERE ns = ? AND key = ?",
            (namespace.encode(), key.encode()),
        ).fetchone()
        return None if row is None else VersionedValue(bytes(row[0]), Version(row[1], row[2]))

    def range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, VersionedValue]]:
        if end == "":
            rows = self._db.execute(
                "SELECT key, value, block, tx FROM state WHERE ns = ? AND key >= ? ORDER BY key",
                (namespace.encode(), start.encode()),
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT key, value, block, tx FROM state"
                " WHERE ns = ? AND key >= ? AND key < ? ORDER BY key",
                (namespace.encode(), start.encode(), end.encode()),
            ).fetchall()
        for key, value, block, tx in rows:
            yield bytes(key).decode(), VersionedValue(bytes(value), Version(block, tx))

    def tx_location(self, tx_id: str) -> Version | None:
        row = self._db.execute("SELECT block, tx FROM tx_ids WHERE tx_id = ?", (tx_id,)).fetchone()
        return None if row is None else Version(row[0], row[1])

    def committed_tx_ids(self, tx_ids: Iterable[str]) -> set[str]:
        """One query per :data:`LOOKUP_CHUNK` ids: a query per id was, with its Python
        round trip, a larger share of validating a block than the lookups themselves."""
        wanted = list(set(tx_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT tx_id FROM tx_ids WHERE tx_id IN ({marks})", chunk)
            found.update(row[0] for row in rows)
        return found

    def apply(self, block_number: int, batch: UpdateBatch) -> None:
        _check_next(self._savepoint, block_number)
        deleted = [
            (ns.encode(), key.encode()) for (ns, key), new in batch.writes.items() if new is None
        ]
        written = [
            (ns.encode(), key.encode(), new.value, new.version.block, new.version.tx)
            for (ns, key), new in batch.writes.items()
            if new is not None
        ]
        with transaction(self._db):
            if deleted:
                self._db.executemany("DELETE FROM state WHERE ns = ? AND key = ?", deleted)
            self._db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)", written)
            self._db.executemany(
                "INSERT OR REPLACE INTO tx_ids VALUES (?, ?, ?)",
                [(tx_id, v.block, v.tx) for tx_id, v in batch.tx_ids.items()],
            )
            self._db.execute(
                "INSERT OR REPLACE INTO savepoints VALUES ('state', ?)", (block_number,)
            )
        self._savepoint = block_number

    @contextlib.contextmanager
    def block_transaction(self) -> Iterator[None]:
        try:
            with transaction(self._db):
                yield
        except BaseException:
            self._savepoint = self._stored_savepoint()  # what the rollback left
            raise

    def close(self) -> None:
        self._db.close()
