"""Hostile input to the command line: one clear line and exit 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_trace_html import synthetic_trace, write_trace

from sim.cli.hunt import format_hunt
from sim.cli.main import main as cli_main
from sim.errors import InputError, RunFailed
from sim.explore.cluster import dask_map
from sim.explore.hunt import hunt
from sim.fabric.simnet import init_sim_network
from sim.http import service as service_module
from sim.http.errors import ApiError
from sim.http.service import NetworkService
from sim.scenario.reader import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def _edited_trace(tmp_path: Path, kind: str, key: str, value: Any) -> Path:
    """A valid trace with one field of the first ``kind`` event replaced."""
    events = synthetic_trace(rounds=2)
    first = next(e for e in events if e["ev"] == kind)
    first[key] = value
    return write_trace(tmp_path / "t.jsonl", events)


@pytest.mark.parametrize(
    ("kind", "key", "value", "said"),
    [
        # n drives one lane per replica id: 10**9 exhausted memory before the fix.
        ("meta", "n", 10**9, "n: expected an integer 1..10000, got 1000000000"),
        ("meta", "n", "four", "n: expected an integer 1..10000, got 'four'"),
        ("send", "bytes", "x", "bytes: expected an integer, got 'x'"),
    ],
)
def test_trace_with_a_corrupt_field_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    key: str,
    value: Any,
    said: str,
) -> None:
    trace = _edited_trace(tmp_path, kind, key, value)
    assert cli_main(["trace", str(trace), "--json"]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1


def test_trace_meta_clients_not_a_list_is_tolerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``clients`` only labels lanes, so a wrong type is ignored (was a TypeError traceback)."""
    trace = _edited_trace(tmp_path, "meta", "clients", 7)
    assert cli_main(["trace", str(trace), "--json"]) == 0
    assert '"messages"' in capsys.readouterr().out


def test_ctrl_c_during_a_hunt_keeps_what_was_tried() -> None:
    """Ctrl-C used to unwind through Hypothesis and lose the summary; now it ends the hunt."""
    readings = [0]

    def clock() -> float:  # the 30th reading is where the user presses Ctrl-C
        readings[0] += 1
        if readings[0] == 30:
            raise KeyboardInterrupt
        return float(readings[0])

    report = hunt(load_scenario(ROOT / "scenarios" / "normal-case.toml"), minutes=60, clock=clock)
    assert report.interrupted and report.violation is None
    assert 0 < report.tried < 30
    assert report.to_json()["interrupted"] is True
    assert "stopped         by Ctrl-C" in format_hunt(report, None)


def test_gateway_on_a_port_in_use_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn logged its own ERROR and exited 3; the port is now bound before serving."""
    network = tmp_path / "net"
    assert cli_main(["net", "init", "--sim", str(network)]) == 0
    capsys.readouterr()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert cli_main(["gateway", "--network", str(network), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1


def test_a_flood_of_prepares_is_refused_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prepared transactions were bounded only when someone endorsed: a prepare loop grew
    the table without end, then evicted other members' transactions. Now it is refused."""
    monkeypatch.setattr(service_module, "MAX_PENDING_PER_CALLER", 3)
    monkeypatch.setattr(service_module, "MAX_PENDING", 5)
    init_sim_network(tmp_path / "net", seed=7)
    service = NetworkService(tmp_path / "net")
    admin1 = service.member("Admin@org1.example.com")
    admin2 = service.member("Admin@org2.example.com")
    kept = [service.prepare(admin1, "approve", ["hotfix", "1.0"])["tx_id"] for _ in range(3)]
    with pytest.raises(ApiError) as refused:
        service.prepare(admin1, "approve", ["hotfix", "1.0"])
    assert refused.value.status == 503 and "3 of Admin@org1.example.com" in str(refused.value)
    kept += [service.prepare(admin2, "approve", ["hotfix", "1.0"])["tx_id"] for _ in range(2)]
    with pytest.raises(ApiError):
        service.prepare(admin2, "approve", ["hotfix", "1.0"])
    assert sorted(service.pending) == sorted(kept)  # nobody's transaction was evicted


DEEP = "[" * 100_000 + "]" * 100_000
"""Small enough for any size limit, deep enough to overflow the JSON parser's recursion."""


def test_deeply_nested_trace_line_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "deep.jsonl"
    trace.write_text(DEEP + "\n")
    assert cli_main(["trace", str(trace), "--json"]) == 2
    assert "deep.jsonl:1: expected a JSON object, nested too deeply" in capsys.readouterr().err


def test_deeply_nested_proof_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = tmp_path / "proof.json"
    proof.write_text(DEEP)
    assert cli_main(["patch", "verify-proof", str(proof), "--msp", str(tmp_path)]) == 2
    assert "proof.json: not JSON (nested too deeply)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("garbage", "missing port number"),
        ("http://127.0.0.1:8786", "unknown address scheme 'http'"),
        ("tcp://127.0.0.1:99999", "port 99999 is not 1..65535"),
    ],
)
def test_a_malformed_dask_address_is_refused_before_connecting(address: str, said: str) -> None:
    """A Client failing in its constructor was closed by the garbage collector: a 40 s wait,
    then 'Exception ignored in Client.__del__' and a traceback after the error line."""
    with pytest.raises(InputError, match=f"--dask: not a scheduler address .*{said}"):
        next(dask_map(address, str, [1]))


def test_a_scheduler_killed_mid_sweep_is_one_run_failed(tmp_path: Path) -> None:
    """Was a FutureCancelledError traceback after pages of distributed's reconnect logs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    log = (tmp_path / "dask.log").open("w")
    serve = ["--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", *serve],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-dashboard"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        results = dask_map(address, time.sleep, [0.2] * 200)  # importable on any worker
        assert next(results) is None
        scheduler.kill()
        with pytest.raises(RunFailed, match=r"lost the scheduler .* the sweep is incomplete"):
            for _ in results:
                pass
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait(timeout=30)
        log.close()


def test_a_deeply_nested_network_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "network.json").write_text(DEEP)
    assert cli_main(["net", "node", "stop", str(tmp_path), "0"]) == 2
    assert "not a readable JSON network file (nested too deeply)" in capsys.readouterr().err


def test_hunt_refuses_an_unwritable_out_before_hunting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said so only after finding a violation, and the repro was lost with it."""
    scenario = str(ROOT / "scenarios" / "normal-case.toml")
    out = str(tmp_path / "missing" / "repro.toml")
    assert cli_main(["hunt", scenario, "--minutes", "0.01", "--out", out]) == 2
    assert f"--out: no such directory {tmp_path / 'missing'}" in capsys.readouterr().err


def test_a_deeply_nested_scenario_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert cli_main(["run", str(deep)]) == 2
    err = capsys.readouterr().err
    assert err == "ledgersim: error: the input is nested too deeply to read\n"


def test_a_class_that_is_no_replica_is_refused_before_running(
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "normal-case.toml"
    assert cli_main(["run", str(scenario), "--replica", "json:JSONDecoder"]) == 2
    err = capsys.readouterr().err.strip()
    assert "json:JSONDecoder is not a replica class" in err and "\n" not in err
