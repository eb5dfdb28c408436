"""The "live" section: n=4 nodes as OS processes over a private mosquitto broker on loopback.

The network is the one ``ledgersim net up`` starts (``sim.live.cluster``)
with the ``kv`` chaincode, ECDSA P-256 identities and the live defaults for
batching; the load is ``ledgersim load``'s open-loop generator
(``sim.live.load``), run in this process. CPU time is read from
``/proc/<pid>/stat`` for every node and the broker, plus this process's own
(the load generator is the client: it signs proposals, envelopes and
requests), and divided by committed transactions.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sim.bench.simruns import BenchError, Unavailable, have_module

LIVE_MODULES = ("sim.live.cluster", "sim.live.load")
QUICK_LOAD = (100.0, 2.0)
"""(offered tx/s, seconds) of the quick run."""
FULL_START_RATE, FULL_MAX_RATE, FULL_SECONDS = 125.0, 2000.0, 5.0
"""The full run doubles the offered rate from the start until the network falls behind."""
SATURATED = 0.8
"""A step whose committed rate is below this share of the offered rate ends the ramp."""


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


def _one_load(
    cluster: Any, load: Any, directory: Path, n: int, rate: float, seconds: float
) -> dict[str, Any]:
    pids = _pids(cluster, directory, n)
    cpu0 = sum(_cpu_s(p) for p in pids) + time.process_time()
    report: dict[str, Any] = asyncio.run(load.run_load(directory, rate, seconds))
    cpu = sum(_cpu_s(p) for p in pids) + time.process_time() - cpu0
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
        "cpu_s": cpu,
        "cpu_s_per_tx": cpu / committed if committed else None,
    }


def live_section(quick: bool) -> dict[str, Any]:
    reason = live_unavailable_reason()
    if reason is not None:
        raise Unavailable(reason)
    cluster = importlib.import_module("sim.live.cluster")
    load = importlib.import_module("sim.live.load")
    options = cluster.UpOptions(replicas=4, orgs=2, chaincode="kv", crypto="ecdsa-p256")
    with tempfile.TemporaryDirectory(prefix="ledgersim-bench-live-") as tmp:
        directory = Path(tmp) / "net"
        started = time.perf_counter()
        config = cluster.up(directory, options)
        startup_s = time.perf_counter() - started
        try:
            if quick:
                runs = [_one_load(cluster, load, directory, config.n, *QUICK_LOAD)]
            else:
                runs = []
                rate = FULL_START_RATE
                while rate <= FULL_MAX_RATE:
                    run = _one_load(cluster, load, directory, config.n, rate, FULL_SECONDS)
                    runs.append(run)
                    if run["failed"] or run["tx_per_s"] < SATURATED * rate:
                        break
                    rate *= 2
        finally:
            cluster.down(directory)
    best = max(runs, key=lambda run: run["tx_per_s"])
    if not best["committed"]:
        raise BenchError("the live network committed nothing")
    return {
        "n": config.n,
        "chaincode": options.chaincode,
        "batch_size": config.pbft.batch_size,
        "startup_s": startup_s,
        "runs": runs,
        "tx_per_s": best["tx_per_s"],
        "p50_ms": best["p50_ms"],
        "p99_ms": best["p99_ms"],
        "cpu_s_per_tx": best["cpu_s_per_tx"],
        "offered_per_s": best["offered_per_s"],
    }
