"""Overload, disk faults and single-node operations on a live network (issue 13, items 2, 4, 5).

One kv network for the module. Each test leaves every node running and the
heads agreeing, so they can run in any order.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from live_helpers import watched
from test_live_network import heads_agree, mosquitto, statuses, wait_for

from ledger.blockstore import DATA_FILE, INDEX_FILE
from sim.cli.main import main
from sim.fabric.app import LEDGER_DIR
from sim.live import broker, cluster
from sim.live.load import measure_capacity, run_load
from sim.live.netconfig import load_config, node_dir
from sim.world.disk import RECORDS_FILE

pytestmark = pytest.mark.live
__all__ = ["mosquitto"]


@pytest.fixture(scope="module")
def net(mosquitto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("faults") / "net"
    pbft = replace(cluster.DEFAULT_PBFT, view_change_timeout_ms=1000, client_retry_ms=500)
    with watched(directory):
        cluster.up(directory, cluster.UpOptions(chaincode="kv", pbft=pbft))
        asyncio.run(run_load(directory, rate=20, duration_s=1, timeout_s=20))
        yield directory


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def verify(directory: Path, replica: int) -> tuple[int, str, str]:
    crypto = str(directory / load_config(directory).crypto_dir)
    return cli("ledger", "verify", str(node_dir(directory, replica)), "--msp", crypto)


def pids(directory: Path) -> dict[int, int | None]:
    return {i: cluster.node_pid(directory, i) for i in range(load_config(directory).n)}


def all_alive(directory: Path, ids: list[int]) -> bool:
    return all(broker.pid_alive(cluster.node_pid(directory, i) or 0) for i in ids)


def commit_more_and_agree(directory: Path) -> None:
    height = max(s.get("height") or 0 for s in statuses(directory))
    report = asyncio.run(run_load(directory, rate=10, duration_s=1, timeout_s=30))
    assert report["committed"] == report["submitted"] == 10
    wait_for("every head to agree", lambda: heads_agree(directory, at_least=height + 1), 40)


def test_torn_tail_is_cut_back_reported_and_refilled(net: Path) -> None:
    wait_for("agreeing heads", lambda: heads_agree(net, at_least=2))
    code, said, _ = cli("net", "node", "kill", str(net), "2")
    assert code == 0 and "killed node 2" in said
    store = node_dir(net, 2) / LEDGER_DIR
    os.truncate(store / DATA_FILE, (store / DATA_FILE).stat().st_size - 5)

    code, said, err = verify(net, 2)
    assert code == 0 and err == ""
    lines = said.strip().splitlines()
    assert lines[0].startswith("ok: ") and len(lines) == 2
    assert lines[1].startswith("torn tail at block ") and "not verified" in lines[1]

    code, said, err = cli("net", "node", "start", str(net), "2")
    assert (code, err) == (0, "") and "started node 2" in said
    log = (node_dir(net, 2) / cluster.NODE_LOG).read_text().splitlines()
    repair = [ln for ln in log if "torn tail" in ln]
    assert repair and "cut 5 bytes" not in repair[-1]  # a whole frame goes, not 5 bytes
    assert "state and history rebuilt" in repair[-1] and "Traceback" not in "\n".join(log)
    assert "torn tail" in (statuses(net)[2].get("disk_repair") or "")
    commit_more_and_agree(net)
    assert verify(net, 2)[0] == 0


def flip_a_byte_in_the_middle(store: Path) -> None:
    data = bytearray((store / DATA_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (store / DATA_FILE).write_bytes(bytes(data))


def test_corrupt_block_refuses_to_start_alone_and_the_named_repair_works(net: Path) -> None:
    wait_for("agreeing heads", lambda: heads_agree(net, at_least=2))
    assert cli("net", "node", "kill", str(net), "1")[0] == 0
    store = node_dir(net, 1) / LEDGER_DIR
    flip_a_byte_in_the_middle(store)
    others = {i: p for i, p in pids(net).items() if i != 1}

    code, _, err = cli("net", "node", "start", str(net), "1")
    assert code == 1 and err.count("\n") == 1
    assert "node 1 exited at start" in err and "block store corrupt at block " in err
    assert "move " in err and "Traceback" not in err
    code, said, err = cli("net", "up", str(net))  # the whole-network command: same story
    assert code == 1 and "node 1 exited at start" in said and "the others keep running" in said
    assert {i: p for i, p in pids(net).items() if i != 1} == others
    assert all_alive(net, list(others))
    bpid = int((net / cluster.BROKER_DIR / cluster.PID_FILE).read_text())
    assert broker.pid_alive(bpid)

    # The repair the message names: move the ledger and the record log aside.
    shutil.move(store, store.with_name("ledger.corrupt"))
    shutil.move(node_dir(net, 1) / RECORDS_FILE, node_dir(net, 1) / "pbft-records.corrupt")
    assert cli("net", "node", "start", str(net), "1")[0] == 0
    commit_more_and_agree(net)
    assert verify(net, 1)[0] == 0
    assert (store / INDEX_FILE).exists()


def test_stop_and_restart_one_node_leaves_the_rest(net: Path) -> None:
    before = pids(net)
    code, said, _ = cli("net", "node", "stop", str(net), "3")
    assert code == 0 and said.startswith("stopped node 3")
    assert not broker.pid_alive(before[3] or 0) and all_alive(net, [0, 1, 2])
    code, said, _ = cli("net", "node", "stop", str(net), "3")
    assert code == 0 and "was not running" in said
    code, said, _ = cli("net", "node", "restart", str(net), "3")
    assert code == 0 and "started node 3" in said
    code, said, _ = cli("net", "node", "start", str(net), "3")
    assert code == 0 and "already running" in said
    assert {i: p for i, p in pids(net).items() if i != 3} == {
        i: p for i, p in before.items() if i != 3
    }
    commit_more_and_agree(net)


def test_node_command_input_errors_are_one_line(net: Path) -> None:
    code, _, err = cli("net", "node", "start", str(net), "7")
    assert code == 2 and err.count("\n") == 1 and "expected 0..3, got 7" in err
    code, _, err = cli("net", "up")
    assert code == 2 and err.count("\n") == 1 and "give the network directory" in err


def view_changes(directory: Path) -> list[tuple[int, int]]:
    return [(s["view"], s["stats"].get("view-change", 0)) for s in statuses(directory)]


def test_overload_is_refused_not_collapsed_and_changes_no_view(
    net: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Offered five times the capacity measured around it, goodput stays near capacity."""
    wait_for("agreeing heads", lambda: heads_agree(net))
    first = asyncio.run(measure_capacity(net, 5, concurrency=48))
    before = view_changes(net)
    capfd.readouterr()
    rate = f"{5 * first:.1f}"
    code, said, err = cli("load", "--network", str(net), "--rate", rate, "--duration", "8",
                          "--json")  # fmt: skip
    assert (code, err) == (0, "")
    assert capfd.readouterr().err == ""  # nothing from the MQTT library either
    report = json.loads(said)
    # The machine is shared: capacity is taken as the mean of before and after.
    capacity = (first + asyncio.run(measure_capacity(net, 5, concurrency=48))) / 2
    assert report["refused"] > 0  # it really was overloaded, and said so
    assert report["timed_out"] == report["error"] == report["invalid"] == 0
    assert report["committed"] + report["refused"] == report["submitted"]
    assert report["committed_tps"] >= 0.7 * capacity, (report["committed_tps"], capacity)
    # What is admitted waits behind at most `clients` others: p99 within a few times that.
    queueing_ms = report["clients"] / capacity * 1000
    assert report["latency_ms"]["p99"] <= 3 * queueing_ms + 2000, (report, capacity)
    assert view_changes(net) == before
