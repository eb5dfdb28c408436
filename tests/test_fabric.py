"""The ledger as PBFT's application in the simulator, and the ledger dump/verify commands."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.blockstore import BlockStore
from ledger.codec import decode, encode
from ledger.peer import PeerLedger, TxStatus
from pbft.messages import CommittedBatch, Request
from sim.cli.main import main
from sim.fabric.app import LEDGER_DIR, LedgerApplication, open_ledger_dir, unwrap_request
from sim.fabric.workload import FabricWorkload
from sim.scenario.model import Scenario
from sim.scenario.reader import parse_scenario
from sim.world.auth import network_crypto
from sim.world.disk import NodeDisk
from sim.world.simulation import run_scenario

ROOT = Path(__file__).resolve().parent.parent
RECOMPUTE = ROOT / "tests" / "tools" / "recompute_hashes.py"

SCENARIO = """
name = "fabric-kv"
seed = {seed}
duration_ms = 3000
[network]
replicas = 4
orgs = 2
batch_size = 3
batch_timeout_ms = 20
checkpoint_interval = 4
watermark_window = 16
crypto = "{crypto}"
[workload]
clients = 3
requests = 18
rate_per_s = 40
chaincode = "kv"
keys = 4
[expect]
safety = true
all_committed = true
"""


def scenario(seed: int = 5, crypto: str = "ecdsa-p256") -> Scenario:
    return parse_scenario(SCENARIO.format(seed=seed, crypto=crypto), "<fabric-test>")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real-crypto kv run with a data directory and its MSP tree (shared: it is read only)."""
    out = tmp_path_factory.mktemp("fabric-run")
    spec = scenario()
    result = run_scenario(spec, data_dir=out / "data")
    assert result.safe and result.committed == result.submitted == 18
    network_crypto(spec).write(out / "crypto")
    return out


def copy_node(run_dir: Path, tmp_path: Path, replica: int = 0) -> Path:
    node = tmp_path / "data" / f"replica-{replica}"
    (node / LEDGER_DIR).mkdir(parents=True)
    for item in (run_dir / "data" / f"replica-{replica}" / LEDGER_DIR).iterdir():
        (node / LEDGER_DIR / item.name).write_bytes(item.read_bytes())
    return node


def test_every_transaction_gets_a_code_and_replicas_agree() -> None:
    result = run_scenario(scenario(seed=11, crypto="modelled"))
    summary = result.workload
    assert summary["results"] == summary["submitted"] == 18
    assert sum(summary["validation_codes"].values()) == 18
    assert summary["valid"] >= 1
    live = [r for r in result.replicas if not r.crashed]
    top = max(r.height for r in live)
    assert len({r.head_hash for r in live if r.height == top}) == 1


def test_same_seed_same_ledger() -> None:
    first = run_scenario(scenario(seed=3, crypto="modelled"))
    second = run_scenario(scenario(seed=3, crypto="modelled"))
    assert [r.head_hash for r in first.replicas] == [r.head_hash for r in second.replicas]
    assert first.workload == second.workload
    assert first.commits == second.commits


def test_batch_at_rebuilds_batches_that_replay_to_the_same_head(run_dir: Path) -> None:
    """State transfer: batches served from one node's blocks rebuild another node exactly."""
    spec = scenario()
    workload = FabricWorkload(spec, network_crypto(spec), random.Random(1))
    fresh = workload.make_application(0, NodeDisk(0, None))
    store = BlockStore.open(run_dir / "data" / "replica-1" / LEDGER_DIR, readonly=True)
    served = LedgerApplication(PeerLedger(workload.config, unwrap_request, store))
    assert served.batch_at(0) is None and served.batch_at(served.ledger.height) is None
    results = []
    for seq in range(1, served.ledger.height):
        batch = served.batch_at(seq)
        assert batch is not None and batch.seq == seq and len(batch.certificate) >= 3
        results.extend(fresh.execute(batch))
    assert fresh.head_digest == served.head_digest
    assert fresh.last_executed == served.last_executed
    statuses = [decode(r, TxStatus) for r in results]
    assert len(statuses) == 18 and all(len(s.tx_id) == 64 for s in statuses)


def test_garbage_request_operation_is_recorded_not_raised() -> None:
    spec = scenario(crypto="modelled")
    workload = FabricWorkload(spec, network_crypto(spec), random.Random(1))
    app = workload.make_application(0, NodeDisk(0, None))
    batch = CommittedBatch(1, 0, 5, (Request(1000, 1, b"not an envelope", b""),), ())
    (result,) = app.execute(batch)
    assert decode(result, TxStatus) == TxStatus("", 2)  # BAD_PAYLOAD
    assert app.last_executed == 1
    assert encode(batch.requests[0]) == app.ledger.block(1).data[0]


def test_dump_json_hashes_recompute_independently(run_dir: Path) -> None:
    node = run_dir / "data" / "replica-2"
    dump = subprocess.run(
        [sys.executable, "-m", "sim", "ledger", "dump", str(node), "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    checked = subprocess.run(
        [sys.executable, str(RECOMPUTE)], input=dump, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    head = BlockStore.open(node / LEDGER_DIR, readonly=True).last
    assert head is not None and checked.stdout.split() == [
        "ok",
        str(head.number + 1),
        head.hash.hex(),
    ]
    lines = dump.splitlines()
    broken = [lines[0], _flip_hex(lines[1], "envelope"), *lines[2:]]
    failed = subprocess.run(
        [sys.executable, str(RECOMPUTE)], input="\n".join(broken), capture_output=True, text=True
    )
    assert failed.returncode == 1 and "block 1" in failed.stderr


def _flip_hex(line: str, field: str) -> str:
    """Change the last hex digit of the first ``field`` value in a JSON line."""
    start = line.index(f'"{field}":"') + len(field) + 4
    end = line.index('"', start)
    digit = "0" if line[end - 1] != "0" else "1"
    return line[: end - 1] + digit + line[end:]


def test_verify_accepts_an_untouched_node(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = run_dir / "data" / "replica-1"
    assert main(["ledger", "verify", str(node), "--msp", str(run_dir / "crypto")]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_verify_names_the_block_with_a_flipped_byte(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = copy_node(run_dir, tmp_path)
    store = BlockStore.open(node / LEDGER_DIR, readonly=True)
    offset, length = store._frames[3]
    store.close()
    path = node / LEDGER_DIR / "blocks.dat"
    raw = bytearray(path.read_bytes())
    raw[offset + length // 2] ^= 0x40
    path.write_bytes(bytes(raw))
    assert main(["ledger", "verify", str(node), "--msp", str(run_dir / "crypto")]) == 1
    assert "block 3" in capsys.readouterr().err


def test_verify_names_a_consistently_reframed_tampered_block(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tamperer who rewrites checksums and index is still caught by the hashes."""
    node = copy_node(run_dir, tmp_path)
    original = list(BlockStore.open(node / LEDGER_DIR, readonly=True).blocks())
    victim = original[2]
    first = bytearray(victim.data[0])
    first[-1] ^= 0x01
    forged = type(victim)(victim.header, (bytes(first), *victim.data[1:]), victim.metadata)
    fresh = tmp_path / "forged"
    store = BlockStore.open(fresh, sync=False)
    for block in [*original[:2], forged, *original[3:]]:
        store.append(block)
    store.close()
    for name in ("blocks.dat", "blocks.idx"):
        (node / LEDGER_DIR / name).write_bytes((fresh / name).read_bytes())
    assert main(["ledger", "verify", str(node), "--msp", str(run_dir / "crypto")]) == 1
    assert "block 2: data_hash" in capsys.readouterr().err


def test_verify_rejects_missing_store_and_bad_msp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ledger", "dump", str(tmp_path)]) == 2
    assert "no block store" in capsys.readouterr().err
    assert main(["ledger", "verify", str(tmp_path), "--msp", str(tmp_path)]) == 2
    assert "peerOrganizations" in capsys.readouterr().err


def test_patchset_workload_runs_the_papers_experiments(tmp_path: Path) -> None:
    text = SCENARIO.format(seed=2, crypto="modelled").replace(
        'chaincode = "kv"', 'chaincode = "patchset"'
    )
    spec = parse_scenario(text.replace("requests = 18", "requests = 24"), "<patchset-test>")
    result = run_scenario(spec, data_dir=tmp_path)
    assert result.safe and result.workload["results"] == 24
    workload = FabricWorkload(spec, network_crypto(spec), random.Random(0))
    ledger = open_ledger_dir(tmp_path / "replica-0" / LEDGER_DIR, workload.config, sync=False)
    kinds = {key.split("\x00")[1] for key, _ in ledger.get_range("patchset", "\x00", "")}
    assert {"patch", "head", "device", "download", "report"} <= kinds
