"""A nemesis run on a live network (``ledgersim nemesis``), in the spirit of Jepsen's.

Load is offered at a fixed rate while a seeded, bounded schedule of faults
(``sim.live.faults``) strikes the real processes: ``kill -9`` and restart of a
backup or the primary, SIGSTOP/SIGCONT, a broker restart, a torn block-store
tail at restart, and optionally two nodes at once. Then everything is healed
and the run checks what the network promises (docs/live.md):

* ``committed-in-every-ledger``: every transaction the load generator saw
  committed is VALID in every node's block store;
* ``ledgers-verify``: ``ledger verify`` passes on every node;
* ``chains-agree``: every node's chain is a prefix of the longest, and after
  recovery they are equal;
* ``throughput-recovered``: commits resumed within the stated limit after the
  last fault was healed, and a probe load after the run commits in full;
* ``views-settled``: every node runs, none is left in a view change, and they
  share one view;
* ``no-tracebacks``: no node wrote a traceback to its log during the run.

The seed fixes the schedule, not the outcome: real processes on a shared
machine never replay byte for byte.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ledger.block import ValidationCode
from ledger.blockstore import BlockStore
from ledger.validator import parse
from sim.errors import InputError
from sim.fabric.app import LEDGER_DIR, unwrap_request
from sim.live import broker as brokers
from sim.live import cluster, faultlog
from sim.live.faults import Nemesis
from sim.live.host import read_status
from sim.live.load import measure_capacity, run_load
from sim.live.netconfig import NetworkConfig, load_config, node_dir
from sim.live.schedule import SETTLE_S, Fault, schedule

RECOVERY_LIMIT_S = 20.0
"""Commits must resume within this long after the last fault is healed."""
SETTLED_TIMEOUT_S = 60.0
CHAINS_WAIT_S = 10.0
"""How long the chains may take to become equal after the nodes reported one head."""
LOAD_SHARE = 0.7
"""Without ``rate``, load is offered at this share of the capacity measured first."""

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


def statuses(directory: Path, config: NetworkConfig) -> list[dict[str, Any]]:
    return [read_status(node_dir(directory, i)) or {} for i in range(config.n)]


def settled(directory: Path, config: NetworkConfig) -> bool:
    """Every node runs, reports the same view and head, and none is in a view change."""
    found = statuses(directory, config)
    running = all(brokers.pid_alive(cluster.node_pid(directory, i) or 0) for i in range(config.n))
    heads = {(s.get("height"), s.get("head_hash")) for s in found}
    return running and one_view(found) and len(heads) == 1


async def wait_settled(directory: Path, config: NetworkConfig, timeout_s: float) -> float | None:
    """Seconds until the network settled, or ``None`` if it did not within ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if settled(directory, config):
            return round(time.monotonic() - start, 1)
        await asyncio.sleep(0.25)
    return None


def log_sizes(directory: Path, config: NetworkConfig) -> list[int]:
    sizes = []
    for i in range(config.n):
        path = node_dir(directory, i) / cluster.NODE_LOG
        sizes.append(path.stat().st_size if path.exists() else 0)
    return sizes


async def run_nemesis(
    directory: Path,
    *,
    seed: int,
    duration_s: float,
    kinds: tuple[str, ...],
    rate: float | None = None,
    recovery_limit_s: float = RECOVERY_LIMIT_S,
    say: Say = _quiet,
) -> dict[str, Any]:
    """One whole run: load with faults, healing, recovery, checks; the report."""
    config = load_config(directory)
    if config.chaincode == "none":
        raise InputError(f"{directory}: nemesis needs a ledger (kv or patchset chaincode)")
    if "bridge-cut" in kinds and len(cluster.broker_dirs(directory, config)) < 2:
        raise InputError(f"{directory}: --faults bridge-cut needs a network made with --bridged")
    await asyncio.to_thread(cluster.up, directory)
    if await wait_settled(directory, config, SETTLED_TIMEOUT_S) is None:
        raise InputError(f"{directory}: the network did not settle before the run")
    capacity = None
    if rate is None:
        say("measuring capacity (5 s, closed loop)")
        capacity = await measure_capacity(directory, 5.0, concurrency=32)
        rate = max(1.0, round(LOAD_SHARE * capacity, 1))
    faults = schedule(seed, duration_s, kinds)
    say(f"offering {rate:g} tx/s for {duration_s:g} s with {len(faults)} faults (seed {seed})")
    logs_before = log_sizes(directory, config)
    nemesis = Nemesis(directory, config)
    start = time.monotonic()
    load = asyncio.create_task(run_load(directory, rate, duration_s, timeout_s=15.0, timeline=True))
    applied = await apply_faults(nemesis, faults, start, duration_s, say)
    report = await load
    problems = await asyncio.to_thread(nemesis.heal)
    say("healed; waiting for the network to settle")
    settle_s = await wait_settled(directory, config, SETTLED_TIMEOUT_S)
    probe = await run_load(directory, min(rate, 10.0), 2.0, timeout_s=15.0)
    # The chains are compared once the probe's blocks have reached every node.
    after_probe = await wait_settled(directory, config, SETTLED_TIMEOUT_S / 2)
    settle_s = None if after_probe is None else settle_s
    checks = await asyncio.to_thread(
        run_checks,
        directory,
        config,
        report,
        applied,
        probe,
        settle_s,
        recovery_limit_s,
        logs_before,
        problems,
    )
    return {
        "network": config.net,
        "seed": seed,
        "rate": rate,
        "capacity_tps": None if capacity is None else round(capacity, 1),
        "duration_s": duration_s,
        "faults": applied,
        "load": {k: v for k, v in report.items() if k not in ("timeline", "committed_tx_ids")},
        "timeline": report["timeline"],
        "probe": {k: probe[k] for k in ("submitted", "committed", "failed")},
        "settled_after_s": settle_s,
        "nodes": [
            {
                "id": i,
                "view": st.get("view"),
                "in_view_change": st.get("in_view_change"),
                "height": st.get("height"),
                "view_changes": st.get("stats", {}).get("view-change", 0),
                "connections": st.get("connections"),
            }
            for i, st in enumerate(statuses(directory, config))
        ],
        "checks": checks,
        "ok": all(c["ok"] for c in checks),
    }


async def apply_faults(
    nemesis: Nemesis, faults: list[Fault], start: float, duration_s: float, say: Say
) -> list[dict[str, Any]]:
    """Strike and heal each fault on time (blocking work off the event loop)."""
    applied: list[dict[str, Any]] = []
    for fault in faults:
        # On time, but never before the previous fault has had SETTLE_S to settle
        # (a restart can take longer than planned on a busy machine).
        after = applied[-1]["healed_s"] + SETTLE_S if applied else 0.0
        if after + fault.hold_s > duration_s - SETTLE_S:
            break
        await asyncio.sleep(max(0.0, start + max(fault.at_s, after) - time.monotonic()))
        targets = await asyncio.to_thread(nemesis.targets, fault)
        struck = round(time.monotonic() - start, 1)
        await asyncio.to_thread(nemesis.strike, fault, targets)
        faultlog.record(nemesis.directory, fault.kind, targets, "strike", "nemesis")
        say(f"{struck:6.1f} s  {fault.kind} {targets or ''}")
        await asyncio.sleep(fault.hold_s)
        problems = await asyncio.to_thread(nemesis.heal)
        faultlog.record(nemesis.directory, fault.kind, targets, "heal", "nemesis")
        healed = round(time.monotonic() - start, 1)
        applied.append(
            {
                **asdict(fault),
                "targets": targets,
                "struck_s": struck,
                "healed_s": healed,
                "problems": problems,
            }
        )
    return applied


def valid_tx_ids(directory: Path, replica: int) -> tuple[set[str], list[bytes]]:
    """The ids of VALID transactions in a node's block store, and its chain of hashes."""
    store = BlockStore.open(node_dir(directory, replica) / LEDGER_DIR, readonly=True)
    valid: set[str] = set()
    hashes = []
    try:
        for block in store.blocks():
            hashes.append(block.hash)
            for item, code in zip(block.data, block.metadata.validation_codes, strict=True):
                payload = parse(item, unwrap_request)[2]
                if code == ValidationCode.VALID and payload is not None:
                    valid.add(payload.header.tx_id)
    finally:
        store.close()
    return valid, hashes


def read_ledgers(
    directory: Path, config: NetworkConfig, wait_s: float = CHAINS_WAIT_S
) -> list[tuple[set[str], list[bytes]]]:
    """Every node's VALID transaction ids and chain, once the chains are equal or ``wait_s`` passed.

    ``settled`` compares the heights the nodes last wrote to ``status.json``
    (at most every 0.5 s), so the probe's last block may still be reaching a
    node when the chains are read; a node still that far behind after
    ``wait_s`` is reported.
    """
    deadline = time.monotonic() + wait_s
    while True:
        ledgers = [valid_tx_ids(directory, i) for i in range(config.n)]
        if len({tuple(chain) for _, chain in ledgers}) == 1 or time.monotonic() >= deadline:
            return ledgers
        time.sleep(0.5)


def verify_ledger(directory: Path, config: NetworkConfig, replica: int) -> str:
    """``ledger verify`` on one node, as a separate process: ``""`` or its complaint."""
    crypto = directory / config.crypto_dir
    args = ["ledger", "verify", str(node_dir(directory, replica)), "--msp", str(crypto)]
    done = subprocess.run(
        [sys.executable, "-m", "sim", *args], capture_output=True, text=True, check=False
    )
    return "" if done.returncode == 0 else (done.stderr.strip() or done.stdout.strip())


def check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


def run_checks(
    directory: Path,
    config: NetworkConfig,
    report: dict[str, Any],
    faults: list[dict[str, Any]],
    probe: dict[str, Any],
    settle_s: float | None,
    recovery_limit_s: float,
    logs_before: list[int],
    heal_problems: list[str],
) -> list[dict[str, Any]]:
    committed = set(report["committed_tx_ids"])
    ledgers = read_ledgers(directory, config)
    missing = {i: len(committed - valid) for i, (valid, _) in enumerate(ledgers)}
    chains = [hashes for _, hashes in ledgers]
    longest = max(chains, key=len)
    prefixes = all(chain == longest[: len(chain)] for chain in chains)
    equal = all(chain == longest for chain in chains)
    complaints = {i: verify_ledger(directory, config, i) for i in range(config.n)}
    bad = {i: why for i, why in complaints.items() if why}
    back = recovered_after(report["timeline"], faults)
    final = statuses(directory, config)
    tracebacks = [
        i
        for i, size in enumerate(logs_before)
        if "Traceback" in read_from(node_dir(directory, i) / cluster.NODE_LOG, size)
    ]
    restart_problems = heal_problems + [p for f in faults for p in f["problems"]]
    return [
        check(
            "committed-in-every-ledger",
            not any(missing.values()),
            f"{len(committed)} committed; missing per node {missing}",
        ),
        check(
            "ledgers-verify",
            not bad,
            "ok on every node" if not bad else "; ".join(f"node {i}: {w}" for i, w in bad.items()),
        ),
        check(
            "chains-agree",
            prefixes and equal,
            f"heights {[len(c) for c in chains]}, "
            + ("equal" if equal else "prefixes only" if prefixes else "DIVERGED"),
        ),
        check(
            "throughput-recovered",
            back is not None
            and back <= recovery_limit_s
            and probe["committed"] == probe["submitted"],
            f"commits resumed {back} s after the last fault (limit {recovery_limit_s:g} s); "
            f"probe {probe['committed']}/{probe['submitted']}",
        ),
        check(
            "views-settled",
            settle_s is not None and not restart_problems and one_view(final),
            f"settled {settle_s} s after healing; views at the end "
            + ", ".join(
                f"{s.get('view')}{' (changing)' * bool(s.get('in_view_change'))}" for s in final
            )
            + (f"; {'; '.join(restart_problems)}" if restart_problems else ""),
        ),
        check(
            "no-tracebacks",
            not tracebacks,
            "none" if not tracebacks else f"in the logs of nodes {tracebacks}",
        ),
    ]


def one_view(found: list[dict[str, Any]]) -> bool:
    """Every node reports the same view and none is in a view change (checked again at the end:
    a replica's timer may still send it alone into a view change after the network settled)."""
    return len({s.get("view") for s in found}) == 1 and not any(
        s.get("in_view_change") for s in found
    )


def recovered_after(timeline: list[dict[str, Any]], faults: list[dict[str, Any]]) -> float | None:
    """Seconds from the last heal to the first second with a commit (0 without faults)."""
    if not faults:
        return 0.0
    healed = faults[-1]["healed_s"]
    for row in timeline:
        if row["t"] + 1 > healed and row["committed"] > 0:
            return round(max(0.0, row["t"] - healed), 1)
    return None


def read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return ""
