"""World state and history: the memory and SQLite stores agree, and a reopened ledger catches up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from test_ledger_fixtures import PEERS, Net, network

from ledger.history import HistoryEntry, KeyChange, MemoryHistory, SqliteHistory
from ledger.peer import PeerLedger
from ledger.state import LOOKUP_CHUNK, MemoryState, SqliteState, UpdateBatch, VersionedValue
from ledger.transaction import Version
from sim.fabric.app import open_ledger_dir

KEYS = st.sampled_from(["a", "b", "ab", "\x00k\x00x\x00", "\x00k\x00y\x00", "é", "z\U0001f600"])
NAMESPACES = st.sampled_from(["kv", "patchset"])
WRITE = st.tuples(NAMESPACES, KEYS, st.one_of(st.none(), st.binary(max_size=4)))
BLOCKS = st.lists(st.lists(WRITE, max_size=6), max_size=6)
BOUNDS = st.sampled_from(["", "a", "ab", "b", "\x00", "\x00k\x00y", "\U0010ffff"])


def batch_of(number: int, writes: list[tuple[str, str, bytes | None]]) -> UpdateBatch:
    batch = UpdateBatch()
    for index, (namespace, key, value) in enumerate(writes):
        version = Version(number, index)
        batch.writes[(namespace, key)] = None if value is None else VersionedValue(value, version)
        batch.tx_ids[f"tx-{number}-{index}"] = version
    return batch


@settings(max_examples=60, deadline=None)
@given(blocks=BLOCKS, start=BOUNDS, end=BOUNDS)
def test_memory_and_sqlite_state_agree(
    blocks: list[list[tuple[str, str, bytes | None]]], start: str, end: str
) -> None:
    memory = MemoryState()
    sql = SqliteState(sqlite3.connect(":memory:"))
    model: dict[tuple[str, str], VersionedValue] = {}
    for number, writes in enumerate(blocks):
        batch = batch_of(number, writes)
        memory.apply(number, batch)
        sql.apply(number, batch)
        for key, value in batch.writes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
    assert memory.savepoint == sql.savepoint == len(blocks) - 1
    for namespace in ("kv", "patchset"):
        expected = sorted(
            (k, v)
            for (ns, k), v in model.items()
            if ns == namespace and k >= start and (end == "" or k < end)
        )
        assert list(memory.range(namespace, start, end)) == expected
        assert list(sql.range(namespace, start, end)) == expected
        for key in ("a", "\x00k\x00x\x00"):
            assert (
                memory.get(namespace, key) == sql.get(namespace, key) == model.get((namespace, key))
            )
    for number, writes in enumerate(blocks):
        for index in range(len(writes)):
            assert memory.tx_location(f"tx-{number}-{index}") == Version(number, index)
            assert sql.tx_location(f"tx-{number}-{index}") == Version(number, index)


def test_committed_tx_ids_finds_exactly_the_committed_ones_in_any_number() -> None:
    """The whole-block lookup the validator makes (queried in chunks by SQLite)."""
    memory = MemoryState()
    sql = SqliteState(sqlite3.connect(":memory:"))
    batch = UpdateBatch()
    committed = {f"tx-{i}" for i in range(0, 2 * LOOKUP_CHUNK + 7, 3)}
    for index, tx_id in enumerate(sorted(committed)):
        batch.tx_ids[tx_id] = Version(0, index)
    memory.apply(0, batch)
    sql.apply(0, batch)
    asked = [f"tx-{i}" for i in range(2 * LOOKUP_CHUNK + 20)] + ["tx-0", "", "'); --", "\x00"]
    assert memory.committed_tx_ids(asked) == sql.committed_tx_ids(iter(asked)) == committed
    assert sql.committed_tx_ids([]) == set()


def test_memory_and_sqlite_history_agree() -> None:
    stores = [MemoryHistory(), SqliteHistory(sqlite3.connect(":memory:"))]
    for number in range(3):
        changes = [
            KeyChange("kv", "k", HistoryEntry(f"t{number}{i}", number, b"v", i == 1, number, i))
            for i in range(2)
        ]
        for store in stores:
            store.add(number, changes)
    memory, sql = (s.history("kv", "k") for s in stores)
    assert memory == sql
    assert [e.tx_id for e in memory] == ["t00", "t01", "t10", "t11", "t20", "t21"]
    assert all(s.history("kv", "other") == [] for s in stores)


def test_reopened_ledger_replays_what_state_missed(tmp_path: Path) -> None:
    net = Net(network())
    disk_ledger = open_ledger_dir(tmp_path, net.config, sync=False, unwrap=net.unwrap)
    net.add_peer("peer1.org1.example.com", disk_ledger)
    for value in ("1", "2"):
        net.codes(net.tx("put", "k", value, endorsers=PEERS).envelope)
    head = disk_ledger.head_hash
    # Simulate a crash after the block was stored but before state and history moved on.
    pending = net.tx("put", "k", "3", endorsers=PEERS)
    result = net.peers[PEERS[0]].commit(3, (pending.envelope,), timestamp_ms=net.now_ms)
    disk_ledger.blocks.append(result.block)
    disk_ledger.close()
    again = open_ledger_dir(tmp_path, net.config, sync=False, unwrap=net.unwrap)
    assert again.height == 4 and again.block(2).hash == head
    value = again.get_state("kv", "k")
    assert value is not None and value.value == b"3" and value.version == Version(3, 0)
    assert [e.value for e in again.key_history("kv", "k")] == [b"1", b"2", b"3"]
    assert again.tx_status(pending.tx_id) is not None


def test_memory_ledger_rebuilds_from_its_block_store() -> None:
    net = Net(network())
    net.codes(net.tx("put", "a", "1").envelope, net.tx("put", "b", "2").envelope)
    original = net.peers[PEERS[0]]
    rebuilt = PeerLedger(net.config, net.unwrap, original.blocks)
    assert list(rebuilt.get_range("kv", "", "")) == [("a", b"1"), ("b", b"2")]
    assert rebuilt.head_hash == original.head_hash
