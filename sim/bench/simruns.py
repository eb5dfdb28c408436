"""The two simulator sections: "sim-real" (ECDSA everywhere) and "sim-modelled" (HMAC, n up to 100).

Each run happens in a worker process (``sim.bench.worker``); this module
chooses the runs and turns what the workers report into the figures the
suite prints: throughput per wall-second, the crypto bound and how close
the run gets to it, and messages per batch against the PBFT paper's count.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from sim.bench.peer import NODES as PEER_NODES
from sim.bench.peer import PeerError, compare, run_bftsim
from sim.bench.runspec import RunSpec
from sim.bench.sweeps import sweep_section


class BenchError(RuntimeError):
    """A benchmark run did not produce figures (the reason is the message)."""


class Unavailable(RuntimeError):
    """A section's dependency is not built yet (the reason is the message)."""


def have_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def require(*modules: str) -> None:
    missing = [m for m in modules if not have_module(m)]
    if missing:
        raise Unavailable(f"needs {', '.join(missing)} (not built yet)")


def spawn(spec: RunSpec, timeout_s: float) -> dict[str, Any]:
    """Run ``spec`` in a fresh interpreter and return its JSON answer."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sim.bench.worker"],
            input=json.dumps(asdict(spec)),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(
            f"n={spec.replicas} {spec.crypto} run exceeded {timeout_s:.0f} s"
        ) from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no output)"]
        raise BenchError(f"worker exited {proc.returncode}: {lines[-1]}")
    try:
        answer: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        raise BenchError(f"worker printed no JSON: {proc.stdout[:200]!r}") from None
    return answer


def fastest(spec: RunSpec, repeats: int, timeout_s: float) -> dict[str, Any]:
    """The least-disturbed of ``repeats`` identical runs (same seed, so same work)."""
    runs = [spawn(spec, timeout_s) for _ in range(repeats)]
    return min(runs, key=lambda run: float(run["wall_s"]))


# --------------------------------------------------------------------- sim-real


def crypto_bound(
    verifies_per_tx: float, signs_per_tx: float, sign_per_s: float, verify_per_s: float
) -> float:
    """Transactions/s one core could commit doing nothing but the run's signature work."""
    seconds = verifies_per_tx / verify_per_s + signs_per_tx / sign_per_s
    return 1.0 / seconds if seconds > 0 else float("inf")


def _per_tx(
    counts: dict[str, int], layers: tuple[str, ...], committed: int
) -> tuple[str, float, float]:
    """(layer, verifies/tx, signs/tx) from the first of ``layers`` that saw any work."""
    for layer in layers:
        verifies, signs = counts.get(f"{layer}.verify", 0), counts.get(f"{layer}.sign", 0)
        if verifies + signs:
            return layer, verifies / committed, signs / committed
    raise BenchError(f"no signature work was counted (layers {', '.join(layers)})")


def sim_real(
    quick: bool, rates: Callable[[], tuple[float, float, str]], profile_top: int
) -> dict[str, Any]:
    """The sim-real figures; ``rates`` gives (sign/s, verify/s, code path) after the run."""
    require("sim.world.simulation", "msp.identity")
    chaincode = "kv" if have_module("sim.fabric.app") else "none"
    spec = RunSpec(
        replicas=4,
        requests=400 if quick else 3000,
        clients=200,
        batch_size=100,
        crypto="ecdsa-p256",
        chaincode=chaincode,
        count_crypto=True,
    )
    run = fastest(spec, 1 if quick else 2, timeout_s=300)
    result = run["result"]
    committed = int(result["committed"])
    if committed <= 0:
        raise BenchError("sim-real run committed nothing")
    counts: dict[str, int] = run["crypto"]["counts"]
    sign_rate, verify_rate, rates_via = rates()
    # The bound uses the key operations actually performed; the "deployment" bound
    # uses every identity-level check, as separate machines could not share a cache.
    layer, verifies, signs = _per_tx(counts, ("crypto", "msp", "auth"), committed)
    d_layer, d_verifies, d_signs = _per_tx(counts, ("msp", "auth"), committed)
    bound = crypto_bound(verifies, signs, sign_rate, verify_rate)
    tps = committed / run["wall_s"]
    out: dict[str, Any] = {
        "n": spec.replicas,
        "batch_size": spec.batch_size,
        "clients": spec.clients,
        "workload": chaincode,
        "requests": spec.requests,
        "committed": committed,
        "wall_s": run["wall_s"],
        "cpu_s": run["cpu_s"],
        "tx_per_s": tps,
        "verifies_per_tx": verifies,
        "signs_per_tx": signs,
        "counted_at": layer,
        "deployment_verifies_per_tx": d_verifies,
        "deployment_signs_per_tx": d_signs,
        "deployment_counted_at": d_layer,
        "crypto_counts": counts,
        "wrapped": run["crypto"]["wrapped"],
        "sign_per_s": sign_rate,
        "verify_per_s": verify_rate,
        "rates_via": rates_via,
        "bound_tx_per_s": bound,
        "efficiency": tps / bound,
        "deployment_bound_tx_per_s": crypto_bound(d_verifies, d_signs, sign_rate, verify_rate),
        "maxrss_mib": run["maxrss_mib"],
    }
    if profile_top:
        out["profile"] = spawn(_with(spec, profile_top=profile_top, count_crypto=False), 600)[
            "profile"
        ]
    return out


def _with(spec: RunSpec, **changes: Any) -> RunSpec:
    return RunSpec(**{**asdict(spec), **changes})


# ----------------------------------------------------------------- sim-modelled

MODELLED_SIZES_FULL = (4, 16, 64, 100, 256)
MODELLED_SIZES_QUICK = (4, 16)
MODELLED_BATCH = 10
MODELLED_CHECKPOINT = 10
PROFILED_SIZES = (16, 100)
"""Sizes --profile covers: the messages/s target (n=16) and the wall-time target (n=100)."""


def _requests_for(n: int, quick: bool) -> int:
    if quick:
        return 200 if n <= 4 else 100
    # n = 256 sends 130,000 messages a batch: 20 batches show its rate and memory.
    return {4: 5000, 16: 2000, 256: 200}.get(n, 1000)


def paper_messages_per_batch(n: int, checkpoint_interval: int) -> dict[str, float]:
    """Normal-case PBFT messages per batch (OSDI'99 section 4.2), point to point.

    The primary sends n-1 PRE-PREPAREs, each of the n-1 backups sends n-1
    PREPAREs, every replica sends n-1 COMMITs, and every K batches each
    replica sends n-1 CHECKPOINTs.
    """
    return {
        "PrePrepare": n - 1,
        "Prepare": (n - 1) ** 2,
        "Commit": n * (n - 1),
        "Checkpoint": n * (n - 1) / checkpoint_interval,
    }


def _per_type(messages: dict[str, int], name: str) -> int:
    wanted = name.lower()
    return sum(
        v for k, v in messages.items() if k.lower().replace("-", "").replace("_", "") == wanted
    )


def modelled_size(n: int, quick: bool, profile_top: int) -> dict[str, Any]:
    spec = RunSpec(
        replicas=n,
        requests=_requests_for(n, quick),
        clients=4 * MODELLED_BATCH,
        batch_size=MODELLED_BATCH,
        checkpoint_interval=MODELLED_CHECKPOINT,
        watermark_window=4 * MODELLED_CHECKPOINT,
        crypto="modelled",
        chaincode="none",
    )
    run = spawn(spec, timeout_s=900)
    result = run["result"]
    messages: dict[str, int] = {k: int(v) for k, v in result["messages"].items()}
    total = sum(messages.values())
    # A replica's height counts the genesis block; each batch is one block after it.
    batches = max((int(r["height"]) - 1 for r in result["replicas"]), default=0)
    expected = paper_messages_per_batch(n, MODELLED_CHECKPOINT)
    per_batch = {
        name: (_per_type(messages, name) / batches if batches else 0.0) for name in expected
    }
    protocol = sum(per_batch.values())
    out: dict[str, Any] = {
        "n": n,
        "requests": spec.requests,
        "committed": int(result["committed"]),
        "batches": batches,
        "wall_s": run["wall_s"],
        "cpu_s": run["cpu_s"],
        "messages": total,
        "messages_per_s": total / run["wall_s"],
        "cpu_us_per_message": 1e6 * run["cpu_s"] / total if total else None,
        "tx_per_s": int(result["committed"]) / run["wall_s"],
        "messages_by_type": messages,
        "per_batch": per_batch,
        "paper_per_batch": expected,
        "per_batch_vs_paper": protocol / sum(expected.values()),
        "maxrss_mib": run["maxrss_mib"],
        "rss_before_mib": run["rss_before_mib"],
    }
    if profile_top:
        out["profile"] = spawn(_with(spec, profile_top=profile_top, count_crypto=False), 900)[
            "profile"
        ]
    return out


def beside_peer(
    measure: Callable[[], dict[str, Any]], peer_dir: Path, quick: bool
) -> dict[str, Any]:
    """``measure()``'s row with BFT-Simulator timed right before and right after it.

    Bracketing our run between two of the peer's shows how much the machine
    moved meanwhile; the ratio is taken against the peer's better run. A peer
    that cannot run is reported in the row and leaves our figures alone.
    """
    decisions = 300 if quick else 3000
    try:
        before = run_bftsim(peer_dir, decisions)
    except PeerError as exc:
        row = measure()  # the peer failed on its own: our figures stand without it
        row["peer"] = {"status": "failed", "reason": str(exc)}
        return row
    row = measure()
    try:
        after = run_bftsim(peer_dir, decisions)
    except PeerError as exc:
        row["peer"] = {"status": "failed", "reason": str(exc)}
        return row
    row["peer"] = {"status": "ok", **compare(row, [before, after])}
    return row


def sim_modelled(quick: bool, profile_top: int, peer_dir: Path | None = None) -> dict[str, Any]:
    require("sim.world.simulation")
    sizes = MODELLED_SIZES_QUICK if quick else MODELLED_SIZES_FULL
    rows = []
    for n in sizes:
        top = profile_top if n in PROFILED_SIZES else 0
        if n == PEER_NODES and peer_dir is not None:
            rows.append(beside_peer(partial(modelled_size, n, quick, top), peer_dir, quick))
        else:
            rows.append(modelled_size(n, quick, top))
    return {
        "batch_size": MODELLED_BATCH,
        "checkpoint_interval": MODELLED_CHECKPOINT,
        "clients": 4 * MODELLED_BATCH,
        "sizes": rows,
        "sweeps": sweep_section(quick),
    }
