"""BFT-Simulator, run side by side with sim-modelled: ``ledgersim bench --peer-bftsim DIR``.

A messages/s figure means little on a machine whose speed moves from day to
day, so the n = 16 target is a ratio against csienslab/BFT-Simulator (a
JavaScript BFT simulator) timed in the same bench run, right before and
right after our own n = 16 run. The user fetches that simulator themselves
and names its directory; nothing of it is shipped or changed here. Our own
driver (``peers/bftsim.js``) sets its configuration in memory, runs its main
loop and prints what it simulated.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

DRIVER = Path(__file__).with_name("peers") / "bftsim.js"
NODES = 16
"""The size the target compares: BFT-Simulator's PBFT at the bench's n = 16."""


class PeerError(RuntimeError):
    """The peer could not be run (the reason is the message)."""


def check_directory(directory: Path) -> str | None:
    """Why ``directory`` is not a BFT-Simulator checkout we can drive, or ``None``."""
    if not directory.is_dir():
        return f"{directory} is not a directory"
    for name in ("simulator.js", "config.js", "ba-algo/pbft.js"):
        if not (directory / name).is_file():
            return f"{directory} has no {name} (expected a checkout of csienslab/BFT-Simulator)"
    return None


def run_bftsim(directory: Path, decisions: int, timeout_s: float = 600.0) -> dict[str, Any]:
    """One timed PBFT run of BFT-Simulator at :data:`NODES` nodes."""
    node = shutil.which("node")
    if node is None:
        raise PeerError("node (Node.js) is not installed")
    try:
        proc = subprocess.run(
            [node, str(DRIVER), str(directory.resolve()), str(NODES), str(decisions)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PeerError(f"BFT-Simulator ran longer than {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        raise PeerError(f"BFT-Simulator exited {proc.returncode}: {_error_line(proc.stderr)}")
    try:
        run: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        messages, wall, cpu = int(run["messages"]), float(run["wall_s"]), float(run["cpu_s"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise PeerError(
            f"BFT-Simulator's driver printed no figures: {proc.stdout[:200]!r}"
        ) from None
    if messages <= 0 or wall <= 0:
        raise PeerError("BFT-Simulator simulated no messages")
    return {
        **run,
        "messages_per_s": messages / wall,
        "cpu_us_per_message": 1e6 * cpu / messages,
    }


def _error_line(stderr: str) -> str:
    """The line of Node's report that names the error (its last line is Node's version)."""
    lines = stderr.strip().splitlines() or ["(no output)"]
    return next((line for line in lines if "Error" in line), lines[-1]).strip()


def compare(ours: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Our n = 16 row against the peer's runs, judged against its *better* run."""
    best = max(runs, key=lambda r: float(r["messages_per_s"]))
    return {
        "name": "csienslab/BFT-Simulator",
        "nodes": NODES,
        "runs": runs,
        "messages_per_s": best["messages_per_s"],
        "cpu_us_per_message": best["cpu_us_per_message"],
        "ratio": float(ours["messages_per_s"]) / float(best["messages_per_s"]),
        "cpu_ratio": float(best["cpu_us_per_message"]) / float(ours["cpu_us_per_message"]),
    }
