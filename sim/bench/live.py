"""The "live" section: n=4 nodes as OS processes over a private mosquitto broker on loopback.

The network is the one ``ledgersim net up`` starts (``sim.live.cluster``)
with the ``kv`` chaincode, ECDSA P-256 identities and the live defaults for
batching. Load comes from ``ledgersim load`` (open loop, latency measured
from each request's scheduled time) run as a child process with a time
limit, so a stuck client can cost a step but never hang the suite.

The full run ramps the offered rate up, doubling it until the network falls
behind; the highest committed rate is the throughput, and the latencies are
those of the fastest step the network kept up with (beyond saturation an
open-loop latency only measures the queue). CPU time is read from
``/proc/<pid>/stat`` for every node and the broker, plus the load
generator's own (it is the client: it signs proposals, envelopes and
requests), and divided by the transactions committed.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sim.bench.simruns import BenchError, Unavailable, have_module
from sim.errors import InputError

LIVE_MODULES = ("sim.live.cluster", "sim.live.load", "sim.cli.load")
QUICK_LOAD = (50.0, 2.0)
"""(offered tx/s, seconds) of the quick run."""
FULL_START_RATE, FULL_MAX_RATE, FULL_SECONDS = 25.0, 3200.0, 5.0
"""The full run doubles the offered rate from the start until the network falls behind."""
KEPT_UP = 0.8
"""A step committing less than this share of its offered rate is saturated; the ramp stops."""


def _mosquitto() -> str | None:
    for candidate in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("mosquitto")


def live_unavailable_reason() -> str | None:
    """Why the live section can't run here, or ``None`` when it can."""
    missing = [m for m in LIVE_MODULES if not have_module(m)]
    if missing:
        return f"needs {', '.join(missing)} (not built yet)"
    if _mosquitto() is None:
        return "no mosquitto binary (apt-get install mosquitto)"
    return None


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pids(cluster: Any, directory: Path, n: int) -> list[int]:
    pids = [cluster.node_pid(directory, i) for i in range(n)]
    broker = cluster._read_pid(directory / cluster.BROKER_DIR / cluster.PID_FILE)
    return [p for p in [*pids, broker] if p is not None]


def _one_load(pids: list[int], directory: Path, rate: float, seconds: float) -> dict[str, Any]:
    """One ``ledgersim load`` step; a step that times out or breaks is a BenchError."""
    command = [sys.executable, "-m", "sim", "load", "--network", str(directory)]
    command += ["--rate", f"{rate:g}", "--duration", f"{seconds:g}", "--json"]
    servers0, client0 = sum(_cpu_s(p) for p in pids), _children_cpu_s()
    limit = seconds + 90
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"ledgersim load at {rate:g}/s did not finish in {limit:g} s") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no output)"]
        raise BenchError(f"ledgersim load at {rate:g}/s exited {proc.returncode}: {lines[-1]}")
    servers = sum(_cpu_s(p) for p in pids) - servers0
    client = _children_cpu_s() - client0
    report = json.loads(proc.stdout)
    committed = int(report["committed"])
    lat = report["latency_ms"]
    return {
        "offered_per_s": rate,
        "seconds": seconds,
        "submitted": int(report["submitted"]),
        "committed": committed,
        "invalid": int(report["invalid"]),
        "failed": int(report["failed"]),
        "tx_per_s": float(report["committed_tps"]),
        "p50_ms": float(lat["p50"]),
        "p99_ms": float(lat["p99"]),
        "server_cpu_s": servers,
        "client_cpu_s": client,
        "cpu_s_per_tx": (servers + client) / committed if committed else None,
    }


def _kept_up(run: dict[str, Any]) -> bool:
    return not run["failed"] and run["tx_per_s"] >= KEPT_UP * run["offered_per_s"]


def live_section(quick: bool) -> dict[str, Any]:
    reason = live_unavailable_reason()
    if reason is not None:
        raise Unavailable(reason)
    cluster = importlib.import_module("sim.live.cluster")
    options = cluster.UpOptions(replicas=4, orgs=2, chaincode="kv", crypto="ecdsa-p256")
    with tempfile.TemporaryDirectory(prefix="ledgersim-bench-live-") as tmp:
        directory = Path(tmp) / "net"
        started = time.perf_counter()
        try:
            config = cluster.up(directory, options)
        except InputError as exc:  # the network would not start: a failed section
            raise BenchError(f"net up failed: {exc}") from None
        startup_s = time.perf_counter() - started
        try:
            pids = _pids(cluster, directory, config.n)
            if quick:
                runs = [_one_load(pids, directory, *QUICK_LOAD)]
            else:
                runs = []
                rate = FULL_START_RATE
                while rate <= FULL_MAX_RATE:
                    runs.append(_one_load(pids, directory, rate, FULL_SECONDS))
                    if not _kept_up(runs[-1]):
                        break
                    rate *= 2
        finally:
            cluster.down(directory)
    best = max(runs, key=lambda run: run["tx_per_s"])
    if not best["committed"]:
        failed = sum(run["failed"] for run in runs)
        raise BenchError(f"the live network committed nothing ({failed} requests failed)")
    sustained = [run for run in runs if _kept_up(run)]
    steady = max(sustained, key=lambda run: run["offered_per_s"]) if sustained else runs[0]
    return {
        "n": config.n,
        "chaincode": options.chaincode,
        "batch_size": config.pbft.batch_size,
        "startup_s": startup_s,
        "runs": runs,
        "tx_per_s": best["tx_per_s"],
        "cpu_s_per_tx": best["cpu_s_per_tx"],
        "latency_at_per_s": steady["offered_per_s"],
        "p50_ms": steady["p50_ms"],
        "p99_ms": steady["p99_ms"],
    }
