"""``ledger verify`` replays validation, so edited validation codes cannot pass.

Codes live in block metadata, which no hash covers (as in Fabric). These tests
rewrite a node's block store consistently (frames, checksums and index all
recomputed, as a careful tamperer would) with one code changed, and expect
verify to name the block and the transaction.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ledger_fixtures import BOTH_ORGS, Net, network

from ledger.block import Block, ValidationCode
from ledger.blockstore import BlockStore
from ledger.codec import decode, encode
from ledger.peer import PeerLedger
from ledger.validator import parse
from msp.policy import parse as parse_policy_text
from pbft.messages import Commit, Request
from sim.cli.main import main
from sim.fabric.app import LEDGER_DIR, open_ledger_dir, unwrap_request
from sim.fabric.channel import CHANNEL_FILE, channel_config, load_channel, parse_policy
from sim.fabric.verify import Trust, verify_blocks
from sim.scenario.reader import parse_scenario
from sim.world.auth import network_crypto
from sim.world.simulation import run_scenario

SCENARIO = """
name = "verify-kv"
seed = 9
duration_ms = 3000
[network]
replicas = 4
orgs = 2
batch_size = 4
batch_timeout_ms = 20
checkpoint_interval = 4
watermark_window = 16
crypto = "modelled"
[workload]
clients = 4
requests = 24
rate_per_s = 80
chaincode = "kv"
keys = 2
[expect]
safety = true
all_committed = true
"""
V = ValidationCode


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kv run on a tiny key space (so MVCC conflicts happen), with its MSP tree."""
    out = tmp_path_factory.mktemp("verify-run")
    spec = parse_scenario(SCENARIO, "<verify-test>")
    result = run_scenario(spec, data_dir=out / "data")
    assert result.safe and result.ok
    network_crypto(spec).write(out / "crypto")
    return out


@pytest.fixture(scope="module")
def blocks(run_dir: Path) -> list[Block]:
    store = BlockStore.open(run_dir / "data" / "replica-1" / LEDGER_DIR, readonly=True)
    try:
        return list(store.blocks())
    finally:
        store.close()


def copy_node(run_dir: Path, tmp_path: Path, replica: int = 1) -> Path:
    node = tmp_path / "data" / f"replica-{replica}"
    shutil.copytree(run_dir / "data" / f"replica-{replica}" / LEDGER_DIR, node / LEDGER_DIR)
    return node


def rewrite_store(node: Path, blocks: list[Block]) -> None:
    """Replace the node's block store by ``blocks``, framed and indexed afresh."""
    ledger_dir = node / LEDGER_DIR
    for name in ("blocks.dat", "blocks.idx"):
        (ledger_dir / name).unlink()
    store = BlockStore.open(ledger_dir, sync=False)
    for block in blocks:
        store.append(block)
    store.close()


def with_code(block: Block, tx: int, code: int) -> Block:
    codes = list(block.metadata.validation_codes)
    codes[tx] = code
    return replace(block, metadata=replace(block.metadata, validation_codes=tuple(codes)))


def first_with(blocks: list[Block], code: ValidationCode) -> tuple[int, int]:
    for block in blocks:
        for tx, found in enumerate(block.metadata.validation_codes):
            if found == code:
                return block.number, tx
    raise AssertionError(f"the run produced no {code.name} transaction")


def tx_id(block: Block, tx: int) -> str:
    payload = parse(block.data[tx], unwrap_request)[2]
    assert payload is not None
    return payload.header.tx_id


def verify(node: Path, run_dir: Path, *extra: str, certificates: bool = False) -> int:
    """``ledger verify`` on ``node`` (the run's crypto is modelled: COMMITs carry HMACs)."""
    argv = ["ledger", "verify", str(node), "--msp", str(run_dir / "crypto"), *extra]
    return main(argv if certificates else [*argv, "--no-certificates"])


def test_untampered_store_verifies_with_codes_replayed(
    run_dir: Path, blocks: list[Block], capsys: pytest.CaptureFixture[str]
) -> None:
    assert first_with(blocks, V.VALID) and first_with(blocks, V.MVCC_READ_CONFLICT)
    assert verify(run_dir / "data" / "replica-1", run_dir, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["validation_replayed"] and report["blocks"] == len(blocks)


@pytest.mark.parametrize(
    ("old", "new"), [(V.VALID, V.MVCC_READ_CONFLICT), (V.MVCC_READ_CONFLICT, V.VALID)]
)
def test_flipped_code_names_block_and_transaction(
    old: ValidationCode,
    new: ValidationCode,
    run_dir: Path,
    blocks: list[Block],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    number, tx = first_with(blocks, old)
    node = copy_node(run_dir, tmp_path)
    tampered = list(blocks)
    tampered[number] = with_code(blocks[number], tx, new)
    rewrite_store(node, tampered)
    assert verify(node, run_dir) == 1
    err = capsys.readouterr().err
    expected = (
        f"block {number} tx {tx} (tx_id {tx_id(blocks[number], tx)}):"
        f" stored {new.name}, recomputed {old.name}"
    )
    assert expected in err and len(err.strip().splitlines()) == 1


def test_a_failing_verify_json_still_prints_its_verdict_on_stdout(
    run_dir: Path, blocks: list[Block], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    number, tx = first_with(blocks, V.VALID)
    node = copy_node(run_dir, tmp_path)
    tampered = list(blocks)
    tampered[number] = with_code(blocks[number], tx, V.MVCC_READ_CONFLICT)
    rewrite_store(node, tampered)
    assert verify(node, run_dir, "--json") == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["ok"] is False and f"block {number} tx {tx}" in report["problem"]
    assert len(err.strip().splitlines()) == 1 and f"block {number} tx {tx}" in err


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_single_changed_code_is_the_first_problem(
    run_dir: Path, blocks: list[Block], data: st.DataObject
) -> None:
    spots = [(b.number, t) for b in blocks for t in range(len(b.data))]
    number, tx = data.draw(st.sampled_from(spots))
    stored = blocks[number].metadata.validation_codes[tx]
    code = data.draw(st.integers(0, 255).filter(lambda c: c != stored))
    tampered = list(blocks)
    tampered[number] = with_code(blocks[number], tx, code)
    trust = Trust.load(run_dir / "crypto")
    config = load_channel(run_dir / "data" / "replica-1" / LEDGER_DIR, trust.msps)
    report = verify_blocks(tampered, trust, 4, unwrap_request, False, config=config)
    assert report.problem is not None
    assert (report.problem.block, report.blocks) == (number, number)
    assert report.problem.where.startswith(f" tx {tx} ")


def test_commit_certificate_mismatch_reads_plainly(
    run_dir: Path, blocks: list[Block], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = blocks[1]  # modelled COMMITs fail their signature check, but only after this one
    commit = decode(victim.metadata.certificate[0], Commit)
    forged = encode(replace(commit, seq=99))
    certificate = (forged, *victim.metadata.certificate[1:])
    tampered = list(blocks)
    tampered[1] = replace(victim, metadata=replace(victim.metadata, certificate=certificate))
    node = copy_node(run_dir, tmp_path)
    rewrite_store(node, tampered)
    assert verify(node, run_dir, "--replicas", "4", certificates=True) == 1
    err = capsys.readouterr().err
    assert (
        f"block 1: COMMIT of replica {commit.replica} is for another block:"
        " its seq is 99, the block's is 1\n"
    ) in err


def test_stale_requests_replay_as_duplicates_from_the_chain_alone() -> None:
    """PBFT's exactly-once verdict is recomputed: a stale request with a new envelope."""
    net = Net(network())
    config = net.config
    ledger = PeerLedger(config, unwrap_request)
    first, again, other = (net.tx("put", key, "1").envelope for key in ("a", "b", "c"))

    def item(client: int, timestamp: int, envelope: bytes) -> bytes:
        return encode(Request(client, timestamp, envelope, b""))

    ledger.commit(1, (item(1000, 5, first),), timestamp_ms=10)
    # Client 1000's timestamp 4 is older than the 5 executed: stale, though the tx is new.
    stale_block = (item(1000, 4, again), item(1001, 1, other), item(1001, 1, other))
    honest = ledger.commit(2, stale_block, timestamp_ms=20, stale=[0, 2])
    assert [c.name for c in honest.codes] == ["DUPLICATE_TXID", "VALID", "DUPLICATE_TXID"]
    trust = Trust(config.msps, {}, 2)
    chain = [ledger.block(i) for i in range(ledger.height)]
    report = verify_blocks(chain, trust, 4, unwrap_request, False, config=config)
    assert report.problem is None and report.blocks == 3
    # A peer that ignored exactly-once would have stored VALID: replay disagrees.
    careless = PeerLedger(config, unwrap_request)
    careless.commit(1, (item(1000, 5, first),), timestamp_ms=10)
    careless.commit(2, stale_block, timestamp_ms=20, stale=[2])
    chain = [careless.block(i) for i in range(careless.height)]
    report = verify_blocks(chain, trust, 4, unwrap_request, False, config=config)
    assert report.problem is not None
    assert str(report.problem) == (
        f"block 2 tx 0 (tx_id {tx_id(chain[2], 0)}): stored VALID, recomputed DUPLICATE_TXID"
    )


def test_channel_config_is_recorded_and_policy_can_be_overridden(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = json.loads((run_dir / "data" / "replica-1" / LEDGER_DIR / CHANNEL_FILE).read_text())
    assert recorded["channel"] == "mychannel" and recorded["msp_ids"] == ["Org1", "Org2"]
    assert parse_policy_text(recorded["policies"]["kv"]) == parse_policy_text(BOTH_ORGS)
    node = copy_node(run_dir, tmp_path)
    (node / LEDGER_DIR / CHANNEL_FILE).unlink()
    assert verify(node, run_dir) == 2
    assert "--policy" in capsys.readouterr().err
    assert verify(node, run_dir, "--policy", BOTH_ORGS) == 0
    capsys.readouterr()
    # A stricter policy than the run's: VALID transactions now fail it.
    assert verify(node, run_dir, "--policy", "AND('Org1.admin','Org2.admin')") == 1
    assert "recomputed ENDORSEMENT_POLICY_FAILURE" in capsys.readouterr().err
    assert verify(node, run_dir, "--policy", "AND(") == 2
    assert "--policy: expected a policy" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "unreadable channel configuration"),
        ('{"channel": 3, "policies": {}}', "expected an object"),
        (
            '{"channel": "c", "msp_ids": ["Org1", "Org9"], "policies": {}}',
            "msp_ids: the channel has Org9",
        ),
        ('{"channel": "c", "policies": {"kv": "OR("}}', "policies.kv: expected a policy"),
    ],
)
def test_bad_channel_file_is_bad_input(
    content: str,
    message: str,
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = copy_node(run_dir, tmp_path)
    (node / LEDGER_DIR / CHANNEL_FILE).write_text(content)
    assert verify(node, run_dir) == 2
    err = capsys.readouterr().err
    assert str(node / LEDGER_DIR / CHANNEL_FILE) in err and message in err


def test_open_ledger_dir_records_the_channel_once(tmp_path: Path) -> None:
    spec = parse_scenario(SCENARIO, "<verify-test>")
    crypto = network_crypto(spec)
    config = channel_config(crypto, parse_policy(spec))
    open_ledger_dir(tmp_path, config, sync=False).close()
    loaded = load_channel(tmp_path, crypto.msps())
    assert loaded.channel == config.channel
    assert {k: str(p) for k, p in loaded.policies.items()} == {
        k: str(p) for k, p in config.policies.items()
    }
    other = channel_config(crypto, parse_policy_text("OR('Org1.member')"))
    open_ledger_dir(tmp_path, other, sync=False).close()  # an existing ledger keeps its record
    assert str(load_channel(tmp_path, crypto.msps()).policies["kv"]) == str(config.policies["kv"])
