"""An open-loop load generator against a live network (``ledgersim load``).

Arrivals are scheduled at a fixed rate whatever the network does (open loop),
and each request's latency is measured from its *scheduled* arrival, so a
stalled network shows up as latency instead of silently lowering the offered
load (the "coordinated omission" trap of closed-loop generators).

Past capacity, an open loop must not pile work onto the network: at most one
transaction per PBFT client of the pool is in flight, and an arrival beyond
that is *refused* at once (before any signing), as is one the nodes refuse for
load (``busy, retry later``). Each request ends as exactly one of committed,
invalid (ordered, but the validator rejected it), refused, timed out, or
error (anything else, e.g. endorsement refused), so goodput under overload is
the committed count and nothing is silently dropped.

What each request does depends on the network's chaincode: with ``none`` it
is a raw PBFT operation; with ``kv`` or ``patchset`` it is a full Fabric
transaction (endorse on peers, submit, wait for f+1 replies) through the live
gateway, a ``kv`` put of the key ``load-<tag>-<k>``.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.fabric.sdk import EndorsementFailed
from sim.live.client import Busy, ClientPool, NoReply
from sim.live.cryptocount import counting_if_asked
from sim.live.netconfig import CLIENT_SLOTS, NetworkConfig, load_config
from sim.world.results import percentiles

Submit = Callable[[int], Awaitable[tuple[bool, str]]]
"""Issue request number ``k``; whether it committed valid, and its transaction id."""

OUTCOMES = ("committed", "invalid", "refused", "timed_out", "error")
"""How a request can end; ``failed`` in a report is refused + timed_out + error."""


def pool_size(rate: float) -> int:
    """Enough PBFT clients to keep ``rate`` requests/s in flight at up to ~1 s latency.

    This is also the admission limit: past it, arrivals are refused. A larger
    pool admits more and makes the admitted wait longer, not the network faster.
    (One user owns CLIENT_SLOTS client ids, which caps it.)
    """
    return max(4, min(CLIENT_SLOTS, int(rate) + 1))


def load_key(tag: str, k: int) -> str:
    """The kv key request ``k`` of the load run ``tag`` writes (how checks find it)."""
    return f"load-{tag}-{k}"


@dataclass(frozen=True, slots=True)
class Done:
    """One request's end: when (seconds after the start), how, and its latency if it committed."""

    k: int
    at_s: float
    outcome: str
    latency_ms: float | None
    tx_id: str = ""


async def run_load(
    directory: Path,
    rate: float,
    duration_s: float,
    *,
    user: str | None = None,
    progress: Callable[[float, float], None] | None = None,
    timeout_s: float = 30.0,
    rng: random.Random | None = None,
    clients: int | None = None,
    timeline: bool = False,
) -> dict[str, Any]:
    """Offer ``rate`` tx/s for ``duration_s``; ``rng`` picks the client slots (tests).

    ``clients`` bounds the requests in flight (default :func:`pool_size`);
    ``timeline`` adds per-second counts and the committed request numbers.
    """
    if rate <= 0 or duration_s <= 0:
        raise InputError("--rate and --duration must be positive")
    config = load_config(directory)
    user = user or default_user(config)
    total = max(1, int(rate * duration_s))
    size = clients or pool_size(rate)
    tag = secrets.token_hex(4)
    with counting_if_asked() as crypto:
        ends, usage = await _offer(
            directory, config, user, size, rate, total, tag, progress, timeout_s=timeout_s, rng=rng
        )
    report = summarise(ends, max(1e-9, max(d.at_s for d in ends)))
    report = {
        "network": config.net,
        "chaincode": config.chaincode,
        "rate": rate,
        "duration_s": duration_s,
        "submitted": total,
        "tag": tag,
        **report,
        "clients": size,
        **usage,
    }
    if crypto is not None:
        report["crypto"] = dict(crypto)
    if timeline:
        report["timeline"] = per_second(ends)
        report["committed_tx_ids"] = sorted(d.tx_id for d in ends if d.outcome == "committed")
    return report


async def _offer(
    directory: Path,
    config: NetworkConfig,
    user: str,
    size: int,
    rate: float,
    total: int,
    tag: str,
    progress: Callable[[float, float], None] | None,
    *,
    timeout_s: float,
    rng: random.Random | None,
) -> tuple[list[Done], dict[str, Any]]:
    """Run the arrivals; their ends, and what the offering cost this process.

    ``cpu_s`` is this process's CPU time from the first arrival to the last end
    (start-up, key loading and the broker connection excluded), and
    ``mqtt_published`` the broker messages it sent meanwhile: the benchmark adds
    them to the nodes' own.
    """
    async with ClientPool(directory, user, size, config=config, rng=rng) as pool:
        submit = submitter(pool, config.chaincode, tag, timeout_s)
        ends: list[Done] = []
        sent0, cpu0 = pool.transport.stats["sent"], time.process_time()
        start = time.monotonic()

        async def one(k: int) -> None:
            scheduled = start + k / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            outcome, tx_id = await attempt(submit, k, timeout_s)
            now = time.monotonic()
            latency = (now - scheduled) * 1000 if outcome == "committed" else None
            ends.append(Done(k, now - start, outcome, latency, tx_id))
            if progress is not None:
                progress(len(ends), total)

        await asyncio.gather(*(one(k) for k in range(total)))
        usage = {
            "cpu_s": time.process_time() - cpu0,
            "mqtt_published": pool.transport.stats["sent"] - sent0,
        }
    return ends, usage


def default_user(config: NetworkConfig) -> str:
    return next(m.name for m in config.users if "@" in m.name and "User" in m.name)


async def attempt(submit: Submit, k: int, timeout_s: float) -> tuple[str, str]:
    """One request's outcome (never raised), and its transaction id once ordered."""
    try:
        async with asyncio.timeout(timeout_s):  # in the caller's task: no task per request
            ok, tx_id = await submit(k)
    except Busy:
        return "refused", ""
    except (TimeoutError, NoReply):
        return "timed_out", ""
    except (InputError, EndorsementFailed):
        return "error", ""
    return ("committed" if ok else "invalid"), tx_id


def summarise(ends: list[Done], elapsed_s: float) -> dict[str, Any]:
    counts = {name: 0 for name in OUTCOMES}
    for done in ends:
        counts[done.outcome] += 1
    latencies = [d.latency_ms for d in ends if d.latency_ms is not None]
    return {
        **counts,
        "failed": counts["refused"] + counts["timed_out"] + counts["error"],
        "elapsed_s": round(elapsed_s, 3),
        "committed_tps": round(counts["committed"] / elapsed_s, 2),
        "latency_ms": percentiles(latencies),
    }


def per_second(ends: list[Done]) -> list[dict[str, Any]]:
    """Counts and commit-latency percentiles of the requests that ended in each second."""
    if not ends:
        return []
    seconds = int(max(d.at_s for d in ends)) + 1
    rows = []
    for second in range(seconds):
        inside = [d for d in ends if int(d.at_s) == second]
        row: dict[str, Any] = {"t": second}
        row.update({name: sum(1 for d in inside if d.outcome == name) for name in OUTCOMES})
        latencies = [d.latency_ms for d in inside if d.latency_ms is not None]
        marks = percentiles(latencies)
        row["p50_ms"], row["p99_ms"] = marks["p50"], marks["p99"]
        rows.append(row)
    return rows


async def measure_capacity(
    directory: Path, duration_s: float, *, concurrency: int = 16, user: str | None = None
) -> float:
    """Committed tx/s with ``concurrency`` requests always in flight (a closed loop).

    A closed loop never offers more than the network finishes, so this is the
    capacity an overload test compares its goodput with, measured on the same
    machine in the same minute.
    """
    config = load_config(directory)
    user = user or default_user(config)
    async with ClientPool(directory, user, concurrency, config=config) as pool:
        submit = submitter(pool, config.chaincode, secrets.token_hex(4), 30.0)
        counter = iter(range(1 << 30))
        committed = 0
        start = time.monotonic()
        deadline = start + duration_s

        async def worker() -> None:
            nonlocal committed
            while time.monotonic() < deadline:
                if (await attempt(submit, next(counter), 30.0))[0] == "committed":
                    committed += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return committed / (time.monotonic() - start)


def submitter(pool: ClientPool, chaincode: str, tag: str, timeout_s: float) -> Submit:
    if chaincode == "none":

        async def raw(k: int) -> tuple[bool, str]:
            await pool.invoke(load_key(tag, k).encode(), timeout_s, wait_for_client=False)
            return True, load_key(tag, k)

        return raw
    from sim.live.gateway import LiveGateway

    gateway = LiveGateway(pool)

    async def fabric(k: int) -> tuple[bool, str]:
        done = await gateway.load_transaction(load_key(tag, k), str(k), timeout_s)
        return done.outcome.valid, done.tx_id

    return fabric
