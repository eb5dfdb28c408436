"""Correct nodes agree on everything they keep, not only on block hashes, under faults.

PBFT's safety property covers the order of batches; a Fabric peer then derives
validation codes, world state and history from that order on its own. These
runs put a Byzantine primary, a crash and recovery (restart from disk, catch
up), duplicated messages and a lossy link in the way, then read every correct
node's ledger back from its directory and compare all of it: block hashes,
the stored validation codes, every key and version in the world state, every
key's full history and the transaction-id index.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.blockstore import BlockStore
from ledger.history import SqliteHistory
from ledger.peer import PeerLedger
from ledger.state import SqliteState
from ledger.validator import parse
from sim.fabric.app import LEDGER_DIR, STATE_FILE, unwrap_request
from sim.fabric.channel import channel_config, parse_policy
from sim.scenario.model import Scenario
from sim.scenario.reader import parse_scenario
from sim.world.auth import network_crypto
from sim.world.simulation import run_scenario

SCENARIO = """
name = "agreement-{chaincode}-{behavior}"
seed = {seed}
duration_ms = 8000
[network]
replicas = 4
orgs = 2
batch_size = 4
batch_timeout_ms = 10
checkpoint_interval = 4
watermark_window = 16
view_change_timeout_ms = 400
crypto = "modelled"
[network.latency]
kind = "uniform"
min_ms = 1
max_ms = 8
duplicate_rate = 0.1
[workload]
clients = 4
requests = 40
rate_per_s = 20
chaincode = "{chaincode}"
keys = 3
[[fault]]
kind = "byzantine"
at_ms = 0
replica = 0
behavior = "{behavior}"
[[fault]]
kind = "crash"
at_ms = 300
replica = 2
[[fault]]
kind = "recover"
at_ms = 1200
replica = 2
[[fault]]
kind = "link"
at_ms = 100
until_ms = 1500
from = 1
to = 3
drop_rate = 0.5
[expect]
safety = true
all_committed = true
"""
BYZANTINE = 0


@dataclass(frozen=True)
class NodeContents:
    """Everything a node's ledger holds, in comparable form."""

    blocks: list[tuple[int, str, tuple[int, ...]]]
    state: dict[str, list[tuple[str, bytes, int, int]]]
    history: dict[tuple[str, str], list[Any]]
    tx_index: dict[str, Any]


def read_node(directory: Path, scenario: Scenario) -> NodeContents:
    """Open a node's ledger as the run left it and list its blocks, state and history."""
    ledger_dir = directory / LEDGER_DIR
    blocks = BlockStore.open(ledger_dir, readonly=True)
    connection = sqlite3.connect(ledger_dir / STATE_FILE)
    state, history = SqliteState(connection), SqliteHistory(connection)
    # The run must have left state and history at the block store's head: a
    # reopen would quietly catch them up and hide a node that fell behind.
    assert state.savepoint == history.savepoint == blocks.height - 1
    config = channel_config(network_crypto(scenario), parse_policy(scenario))
    ledger = PeerLedger(config, unwrap_request, blocks, state, history)
    try:
        stored = [ledger.block(i) for i in range(ledger.height)]
        namespaces: set[str] = set()
        keys: set[tuple[str, str]] = set()
        tx_ids: set[str] = set()
        for block in stored:
            for item in block.data:
                payload = parse(item, unwrap_request)[2]
                if payload is None:
                    continue
                rwset = payload.result.rwset
                namespaces.add(rwset.namespace)
                keys.update((rwset.namespace, w.key) for w in rwset.writes)
                tx_ids.add(payload.header.tx_id)
        return NodeContents(
            blocks=[(b.number, b.hash.hex(), b.metadata.validation_codes) for b in stored],
            state={
                ns: [
                    (key, v.value, v.version.block, v.version.tx)
                    for key, v in ledger.get_versioned_range(ns, "", "")
                ]
                for ns in sorted(namespaces)
            },
            history={key: ledger.key_history(*key) for key in sorted(keys)},
            tx_index={tx_id: ledger.tx_location(tx_id) for tx_id in sorted(tx_ids)},
        )
    finally:
        ledger.close()
        connection.close()


@pytest.mark.parametrize(
    ("chaincode", "behavior", "seed"),
    [("kv", "equivocate", 1), ("kv", "silent", 2), ("patchset", "equivocate", 2)],
)
def test_correct_nodes_hold_identical_ledgers_after_faults(
    chaincode: str, behavior: str, seed: int, tmp_path: Path
) -> None:
    text = SCENARIO.format(chaincode=chaincode, behavior=behavior, seed=seed)
    scenario = parse_scenario(text, f"<agreement-{chaincode}-{behavior}>")
    result = run_scenario(scenario, data_dir=tmp_path)
    assert result.safe and result.ok, result.expectations
    correct = [r.id for r in result.replicas if r.id != BYZANTINE]
    nodes = {i: read_node(tmp_path / f"replica-{i}", scenario) for i in correct}
    reference = nodes[correct[0]]
    # The run did real work: blocks past genesis, state, history, some invalid codes or not.
    assert len(reference.blocks) > 5
    assert any(reference.state.values()) and any(reference.history.values())
    assert sum(len(codes) for _, _, codes in reference.blocks) >= result.submitted
    for replica in correct[1:]:
        other = nodes[replica]
        assert other.blocks == reference.blocks, f"replica {replica}: blocks or codes differ"
        assert other.state == reference.state, f"replica {replica}: world state differs"
        assert other.history == reference.history, f"replica {replica}: history differs"
        assert other.tx_index == reference.tx_index, f"replica {replica}: tx index differs"


def test_comparison_sees_a_node_whose_state_alone_diverged(tmp_path: Path) -> None:
    """Same blocks but one changed value in one node's world state: the check must notice."""
    text = SCENARIO.format(chaincode="kv", behavior="silent", seed=3)
    scenario = parse_scenario(text, "<agreement-divergence>")
    run_scenario(scenario, data_dir=tmp_path)
    before = read_node(tmp_path / "replica-1", scenario)
    with sqlite3.connect(tmp_path / "replica-1" / LEDGER_DIR / STATE_FILE) as db:
        ns, key = db.execute("SELECT ns, key FROM state ORDER BY ns, key LIMIT 1").fetchone()
        db.execute("UPDATE state SET value = ? WHERE ns = ? AND key = ?", (b"x", ns, key))
    after = read_node(tmp_path / "replica-1", scenario)
    assert after.blocks == before.blocks and after.history == before.history
    assert after.state != before.state
    assert after.state != read_node(tmp_path / "replica-3", scenario).state
