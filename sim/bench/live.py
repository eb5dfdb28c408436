"""The "live" section: n=4 nodes as OS processes over a private mosquitto broker on loopback.

The network is the one ``ledgersim net up`` starts (``sim.live.cluster``)
with the ``kv`` chaincode, ECDSA P-256 identities and the live defaults for
batching (bounded pipelining on). Load comes from ``ledgersim load`` (open
loop, latency measured from each request's scheduled time) run as a child
process with a time limit, so a stuck client can cost a step but never hang
the suite.

The full run offers fixed rates (:data:`FULL_RATES`); the best committed rate
is the saturation point, and one more step at :data:`STEADY_SHARE` of it
gives the latency the target is about (beyond saturation an open-loop latency
only measures the queue). Per step, all from the same processes and the same
seconds:

* CPU time: every node and the broker from ``/proc/<pid>/stat``, plus the
  load generator's own CPU while it offered load (it is the client: it signs
  proposals, envelopes and requests; its start-up is left out), also shown
  apart (``client_cpu_s_per_tx``, ``client_cpu_share``);
* MQTT messages published, by the nodes (their transport counters in
  ``status.json``) and the load generator;
* signatures made and checked, counted in every process
  (``sim.live.cryptocount``), which with the ECDSA rates measured at the start
  of the section give the *signature bound*: what the machine's cores could
  commit doing nothing but that signature work. Efficiency = committed tx/s
  over that bound.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sim.bench.limits import preferred_rates, signature_rows
from sim.bench.simruns import BenchError, Unavailable, have_module
from sim.bench.timing import FULL, QUICK
from sim.errors import InputError
from sim.live.cryptocount import ENV

LIVE_MODULES = ("sim.live.cluster", "sim.live.load", "sim.cli.load")
QUICK_LOAD = (50.0, 2.0)
"""(offered tx/s, seconds) of the quick run."""
FULL_RATES, FULL_SECONDS = (200.0, 500.0, 1000.0, 1500.0), 6.0
"""The full run's offered rates and seconds per step."""
STEADY_SHARE = 0.8
"""The last step offers this share of the best committed rate: where p99 is judged."""
KEPT_UP = 0.8
"""A step committing less than this share of its offered rate is saturated."""
STATUS_SETTLE_S = 2.0
"""Nodes rewrite ``status.json`` every half second: wait this long for the final counts
(and, before a step, for the previous step's leftovers to drain)."""


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


def _pids(cluster: Any, directory: Path, n: int) -> list[int]:
    pids = [cluster.node_pid(directory, i) for i in range(n)]
    broker = cluster._read_pid(directory / cluster.BROKER_DIR / cluster.PID_FILE)
    return [p for p in [*pids, broker] if p is not None]


def _node_counters(directory: Path, n: int) -> Counter[str]:
    """MQTT messages published and signature operations, summed over the nodes."""
    status_mod = importlib.import_module("sim.live.host")
    total: Counter[str] = Counter()
    for i in range(n):
        status = status_mod.read_status(directory / f"replica-{i}") or {}
        total["mqtt_published"] += int(status.get("stats", {}).get("sent", 0))
        for key, value in status.get("crypto", {}).items():
            total[key] += int(value)
    return total


def _one_load(
    pids: list[int], directory: Path, n: int, rate: float, seconds: float
) -> dict[str, Any]:
    """One ``ledgersim load`` step; a step that times out or breaks is a BenchError."""
    command = [sys.executable, "-m", "sim", "load", "--network", str(directory)]
    command += ["--rate", f"{rate:g}", "--duration", f"{seconds:g}", "--json"]
    time.sleep(STATUS_SETTLE_S)
    servers0, nodes0 = sum(_cpu_s(p) for p in pids), _node_counters(directory, n)
    limit = seconds + 90
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"ledgersim load at {rate:g}/s did not finish in {limit:g} s") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no output)"]
        raise BenchError(f"ledgersim load at {rate:g}/s exited {proc.returncode}: {lines[-1]}")
    servers = sum(_cpu_s(p) for p in pids) - servers0
    time.sleep(STATUS_SETTLE_S)
    nodes = _node_counters(directory, n)
    nodes.subtract(nodes0)
    report = json.loads(proc.stdout)
    client = float(report["cpu_s"])
    committed = int(report["committed"])
    lat = report["latency_ms"]
    per_tx = 1 / committed if committed else 0.0
    crypto = report.get("crypto", {})
    return {
        "offered_per_s": rate,
        "seconds": seconds,
        "submitted": int(report["submitted"]),
        "committed": committed,
        "invalid": int(report["invalid"]),
        "refused": int(report["refused"]),
        "timed_out": int(report["timed_out"]),
        "error": int(report["error"]),
        "failed": int(report["failed"]),
        "tx_per_s": float(report["committed_tps"]),
        "p50_ms": float(lat["p50"]),
        "p99_ms": float(lat["p99"]),
        "server_cpu_s": servers,
        "client_cpu_s": client,
        "cpu_s_per_tx": (servers + client) * per_tx if committed else None,
        "client_cpu_s_per_tx": client * per_tx if committed else None,
        "client_cpu_share": client / (servers + client) if servers + client > 0 else None,
        "mqtt_per_tx": (nodes["mqtt_published"] + report["mqtt_published"]) * per_tx,
        "signs_per_tx": (nodes["crypto.sign"] + crypto.get("crypto.sign", 0)) * per_tx,
        "verifies_per_tx": (nodes["crypto.verify"] + crypto.get("crypto.verify", 0)) * per_tx,
    }


def _kept_up(run: dict[str, Any]) -> bool:
    return run["tx_per_s"] >= KEPT_UP * run["offered_per_s"]


def _signature_rates(quick: bool) -> tuple[float, float]:
    """ECDSA P-256 (sign/s, verify/s) through the project's identities, measured now."""
    rows = signature_rows(QUICK if quick else FULL, ("ecdsa-p256",))
    sign, verify, _ = preferred_rates({"signatures": [r.to_json() for r in rows]}, "ecdsa-p256")
    return sign, verify


def add_signature_bound(run: dict[str, Any], sign_rate: float, verify_rate: float) -> None:
    """The step's signature work per transaction, its bound on all cores, and the ratios."""
    seconds = run["signs_per_tx"] / sign_rate + run["verifies_per_tx"] / verify_rate
    cpus = os.cpu_count() or 1
    run["signature_ms_per_tx"] = seconds * 1000
    run["signature_bound_tx_per_s"] = cpus / seconds if seconds else None
    run["efficiency"] = run["tx_per_s"] * seconds / cpus if seconds else None
    cpu = run["cpu_s_per_tx"]
    run["cpu_vs_signatures"] = cpu / seconds if cpu and seconds else None


def live_section(quick: bool) -> dict[str, Any]:
    reason = live_unavailable_reason()
    if reason is not None:
        raise Unavailable(reason)
    cluster = importlib.import_module("sim.live.cluster")
    options = cluster.UpOptions(replicas=4, orgs=2, chaincode="kv", crypto="ecdsa-p256")
    sign_rate, verify_rate = _signature_rates(quick)
    os.environ[ENV] = "1"  # the nodes and load generators count their signature work
    try:
        runs, config, startup_s = _measure(cluster, options, quick)
    finally:
        os.environ.pop(ENV, None)
    for run in runs:
        add_signature_bound(run, sign_rate, verify_rate)
    best = max(runs, key=lambda run: run["tx_per_s"])
    if not best["committed"]:
        failed = sum(run["failed"] for run in runs)
        raise BenchError(f"the live network committed nothing ({failed} requests failed)")
    steady = runs[-1] if not quick else best
    return {
        "n": config.n,
        "chaincode": options.chaincode,
        "batch_size": config.pbft.batch_size,
        "max_batches_in_flight": config.pbft.max_batches_in_flight,
        "startup_s": startup_s,
        "sign_per_s": sign_rate,
        "verify_per_s": verify_rate,
        "cpus": os.cpu_count() or 1,
        "runs": runs,
        "tx_per_s": best["tx_per_s"],
        "cpu_s_per_tx": best["cpu_s_per_tx"],
        "mqtt_per_tx": best["mqtt_per_tx"],
        "signature_bound_tx_per_s": best["signature_bound_tx_per_s"],
        "signature_efficiency": best["efficiency"],
        "cpu_vs_signatures": best["cpu_vs_signatures"],
        "latency_at_per_s": steady["offered_per_s"],
        "p50_ms": steady["p50_ms"],
        "p99_ms": steady["p99_ms"],
    }


def _measure(cluster: Any, options: Any, quick: bool) -> tuple[list[dict[str, Any]], Any, float]:
    """The load steps against one fresh network (torn down whatever happens)."""
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
                return [_one_load(pids, directory, config.n, *QUICK_LOAD)], config, startup_s
            runs = [_one_load(pids, directory, config.n, r, FULL_SECONDS) for r in FULL_RATES]
            best = max(run["tx_per_s"] for run in runs)
            steady = max(1.0, round(STEADY_SHARE * best))
            runs.append(_one_load(pids, directory, config.n, steady, FULL_SECONDS))
            return runs, config, startup_s
        finally:
            cluster.down(directory)
