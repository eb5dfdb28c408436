"""An open-loop load generator against a live network (``ledgersim load``).

Arrivals are scheduled at a fixed rate whatever the network does (open loop),
and each request's latency is measured from its *scheduled* arrival, so a
stalled network shows up as latency instead of silently lowering the offered
load (the "coordinated omission" trap of closed-loop generators).

What each request does depends on the network's chaincode: with ``none`` it
is a raw PBFT operation; with ``kv`` or ``patchset`` it is a full Fabric
transaction (endorse on peers, submit, wait for f+1 replies) through the live
gateway.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.fabric.sdk import EndorsementFailed
from sim.live.client import ClientPool
from sim.live.netconfig import load_config
from sim.world.results import percentiles

Submit = Callable[[int], Awaitable[bool]]
"""Issue request number ``k``; True when it committed valid."""


def pool_size(rate: float) -> int:
    """Enough PBFT clients to keep ``rate`` requests/s in flight at ~0.5 s latency."""
    return max(4, min(256, int(rate // 2) + 1))


async def run_load(
    directory: Path,
    rate: float,
    duration_s: float,
    *,
    user: str | None = None,
    progress: Callable[[float, float], None] | None = None,
    timeout_s: float = 30.0,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Offer ``rate`` tx/s for ``duration_s``; ``rng`` picks the client slots (tests)."""
    if rate <= 0 or duration_s <= 0:
        raise InputError("--rate and --duration must be positive")
    config = load_config(directory)
    user = user or next(m.name for m in config.users if "@" in m.name and "User" in m.name)
    total = max(1, int(rate * duration_s))
    async with ClientPool(directory, user, pool_size(rate), config=config, rng=rng) as pool:
        submit = _submitter(pool, config.chaincode, directory, user)
        latencies: list[float] = []
        outcomes = {"committed": 0, "invalid": 0, "failed": 0}
        start = time.monotonic()
        last_done = start

        async def one(k: int) -> None:
            nonlocal last_done
            scheduled = start + k / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                ok = await asyncio.wait_for(submit(k), timeout_s)
            except (InputError, TimeoutError, EndorsementFailed):
                outcomes["failed"] += 1
            else:
                outcomes["committed" if ok else "invalid"] += 1
                latencies.append((time.monotonic() - scheduled) * 1000)
            last_done = time.monotonic()
            if progress is not None:
                progress(sum(outcomes.values()), total)

        await asyncio.gather(*(one(k) for k in range(total)))
    elapsed = max(1e-9, last_done - start)
    return {
        "network": config.net,
        "chaincode": config.chaincode,
        "rate": rate,
        "duration_s": duration_s,
        "submitted": total,
        **outcomes,
        "elapsed_s": round(elapsed, 3),
        "committed_tps": round(outcomes["committed"] / elapsed, 2),
        "latency_ms": percentiles(latencies),
        "clients": pool_size(rate),
    }


def _submitter(pool: ClientPool, chaincode: str, directory: Path, user: str) -> Submit:
    tag = secrets.token_hex(4)
    if chaincode == "none":

        async def raw(k: int) -> bool:
            await pool.invoke(f"load:{tag}:{k}".encode())
            return True

        return raw
    from sim.live.gateway import LiveGateway

    gateway = LiveGateway(pool)

    async def fabric(k: int) -> bool:
        return await gateway.load_transaction(k, tag)

    return fabric
