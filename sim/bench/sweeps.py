"""Seeds per minute: how many fault schedules a sweep gets through, at 1 and 2 workers.

A researcher's budget is wall time, so the figure that matters for a search
is seeds per minute of ``ledgersim sweep`` on a shipped scenario, not
messages per second. Two scenarios are timed: the Byzantine primary (n = 4,
a view change in every run) and the lossy one with two Byzantine replicas
(n = 7, loss and duplication, so every hop is routed). Each runs the same
seeds with one worker and with two, through ``ledgersim sweep`` itself (a
process of its own), so worker start-up and result collection are counted
as a user pays them; the ratio of the two rates is the scaling.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SWEEP_SCENARIOS = ("byzantine-primary.toml", "n7-two-byzantine-lossy.toml")
SWEEP_WORKERS = (1, 2)
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
"""The repository's shipped scenarios (the bench runs from a source checkout)."""


class SweepFailed(RuntimeError):
    """A timed sweep printed no report (the reason is the message)."""


def seeds_for(quick: bool) -> range:
    return range(1, 1 + (8 if quick else 120))


def sweep_rate(path: Path, seeds: range, workers: int) -> dict[str, Any]:
    """One timed ``ledgersim sweep --json`` in a process of its own.

    Seeds per minute come from the sweep's own ``wall_s`` (from its first
    seed started to its last collected, workers' start-up included); the
    process time around it, interpreter start-up and imports included, is
    kept as ``process_s``.
    """
    command = [
        sys.executable,
        "-m",
        "sim",
        "sweep",
        str(path),
        "--seeds",
        f"{seeds.start}..{seeds.stop - 1}",
        "--jobs",
        str(workers),
        "--json",
    ]
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        raise SweepFailed(f"sweep of {path.name} took over 900 s") from None
    process_s = time.perf_counter() - started
    try:
        report = json.loads(proc.stdout)
        done, wall_s = int(report["runs"]), float(report["wall_s"])
    except (ValueError, KeyError, TypeError):
        lines = proc.stderr.strip().splitlines() or ["(no output)"]
        raise SweepFailed(f"sweep of {path.name} exited {proc.returncode}: {lines[-1]}") from None
    return {
        "workers": workers,
        "seeds": done,
        "failed": int(report["failures"]),
        "wall_s": wall_s,
        "process_s": process_s,
        "seeds_per_min": 60.0 * done / wall_s if wall_s > 0 else 0.0,
    }


def sweep_section(quick: bool) -> list[dict[str, Any]]:
    """Per scenario: the rate at each worker count and the speed-up of the last over one."""
    rows: list[dict[str, Any]] = []
    seeds = seeds_for(quick)
    for name in SWEEP_SCENARIOS:
        path = SCENARIO_DIR / name
        if not path.is_file():
            rows.append({"scenario": name, "status": "missing", "runs": []})
            continue
        try:
            runs = [sweep_rate(path, seeds, workers) for workers in SWEEP_WORKERS]
        except SweepFailed as exc:
            rows.append({"scenario": name, "status": "failed", "reason": str(exc), "runs": []})
            continue
        first = runs[0]["seeds_per_min"]
        rows.append(
            {
                "scenario": name,
                "status": "ok",
                "runs": runs,
                "scaling": runs[-1]["seeds_per_min"] / first if first > 0 else None,
            }
        )
    return rows
