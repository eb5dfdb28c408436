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
import contextlib
import itertools
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.collector import fewer_collections
from sim.errors import InputError
from sim.fabric.sdk import EndorsementFailed
from sim.live.client import Busy, ClientPool, Ended, NoReply
from sim.live.cryptocount import counting_if_asked
from sim.live.netconfig import CLIENT_SLOTS, NetworkConfig, load_config
from sim.world.results import percentiles

Start = Callable[[int, Ended], Callable[[], None]]
"""Begin request number ``k``; its ``ended`` gets ``(committed valid?, transaction id)``
or the exception that ended it, once. The function returned abandons the request
(its deadline passed): ``ended`` is then never called. :class:`Busy` if not admitted."""

GC_THRESHOLD = 50_000
"""Allocations between young-generation collections while a load runs (Python's default: 700)."""

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


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """Run with the cyclic garbage collector mostly out of the way, then restore it.

    A load's objects die by reference counting; the collector only rescans the
    keys, identities and caches loaded at start-up, at a cost that grows with
    them (a tenth of the generator's CPU, measured). Those are frozen (never
    scanned again) and collections are made rarer while the load runs.
    """
    with fewer_collections(GC_THRESHOLD, collect_first=True):
        yield


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
        start = starter(pool, config.chaincode, tag)
        with _few_collections():
            requests = Requests(pool, start, timeout_s)
            sent0, cpu0 = pool.transport.stats["sent"], time.process_time()
            loop = asyncio.get_running_loop()
            k = 0

            def arrive() -> None:
                """Start every request whose time has come (one timer for the next, not each)."""
                nonlocal k
                now = loop.time()
                while k < total and requests.start_s + k / rate <= now:
                    requests.begin(k, requests.start_s + k / rate)
                    k += 1
                if k < total:
                    loop.call_at(requests.start_s + k / rate, arrive)

            if progress is not None:
                requests.progress = lambda ended: progress(ended, total)
            arrive()
            await requests.until(lambda: len(requests.ends) == total)
            usage = {
                "cpu_s": time.process_time() - cpu0,
                "mqtt_published": pool.transport.stats["sent"] - sent0,
            }
    return requests.ends, usage


def default_user(config: NetworkConfig) -> str:
    return next(m.name for m in config.users if "@" in m.name and "User" in m.name)


def classify(result: Any) -> tuple[str, str]:
    """How a request ended (:data:`OUTCOMES`), and its transaction id once ordered.

    ``result`` is what a :data:`Start`'s ``ended`` got: ``(valid, tx_id)`` or
    the exception that ended the request. Anything else is a bug, raised.
    """
    if isinstance(result, Busy):
        return "refused", ""
    if isinstance(result, (TimeoutError, NoReply)):
        return "timed_out", ""
    if isinstance(result, (InputError, EndorsementFailed)):
        return "error", ""
    if isinstance(result, BaseException):
        raise result
    ok, tx_id = result
    return ("committed" if ok else "invalid"), tx_id


class Requests:
    """The requests of one load in flight, and how each ended.

    Each request is started by a :data:`Start` and ends exactly once: when its
    ``ended`` is called, or at its deadline (``timeout_s`` after it started, on
    the pool's one coarse timer), whichever is first; the other is then moot.
    """

    def __init__(self, pool: ClientPool, start: Start, timeout_s: float) -> None:
        self.pool = pool
        self.start = start
        self.timeout_s = timeout_s
        self.loop = asyncio.get_running_loop()
        self.start_s = self.loop.time()
        self.ends: list[Done] = []
        self.in_flight = 0
        self.progress: Callable[[int], None] | None = None
        self.after_end: Callable[[Done], None] | None = None
        self._changed: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None

    def begin(self, k: int, scheduled_s: float) -> None:
        """Start request ``k``, due at ``scheduled_s`` (loop clock; latency counts from it)."""
        request = _Request(self, k, scheduled_s)
        self.in_flight += 1
        try:
            request.abandon = self.start(k, request.ended)
        except Exception as exc:  # Busy: refused; anything else ends the load (classify)
            request.ended(exc)
            return
        self.pool.wheel.after(self.timeout_s, request.expire)

    def end(self, k: int, scheduled_s: float, result: Any) -> None:
        self.in_flight -= 1
        try:
            outcome, tx_id = classify(result)
        except BaseException as exc:  # a bug: the load stops with it, not silently
            self._failure = self._failure or exc
            outcome, tx_id = "error", ""
        now = self.loop.time()
        latency = (now - scheduled_s) * 1000 if outcome == "committed" else None
        done = Done(k, now - self.start_s, outcome, latency, tx_id)
        self.ends.append(done)
        if self.progress is not None:
            self.progress(len(self.ends))
        if self.after_end is not None:
            self.after_end(done)
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition`` holds after some request ended."""
        while not condition():
            self._changed = self.loop.create_future()
            await self._changed
            if self._failure is not None:
                raise self._failure


class _Request:
    __slots__ = ("abandon", "k", "open", "requests", "scheduled_s")

    def __init__(self, requests: Requests, k: int, scheduled_s: float) -> None:
        self.requests = requests
        self.k = k
        self.scheduled_s = scheduled_s
        self.abandon: Callable[[], None] | None = None
        self.open = True

    def ended(self, result: Any) -> None:
        if self.open:
            self.open = False
            self.requests.end(self.k, self.scheduled_s, result)

    def expire(self) -> None:
        if self.open:
            if self.abandon is not None:
                self.abandon()
            self.ended(TimeoutError())


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
        requests = Requests(pool, starter(pool, config.chaincode, secrets.token_hex(4)), 30.0)
        deadline = requests.start_s + duration_s
        counter = itertools.count()

        def next_one(_done: Done | None = None) -> None:
            now = requests.loop.time()
            if now < deadline:
                requests.begin(next(counter), now)

        requests.after_end = next_one
        for _ in range(concurrency):
            next_one()
        await requests.until(lambda: requests.in_flight == 0)
        committed = sum(1 for d in requests.ends if d.outcome == "committed")
    return committed / (time.monotonic() - requests.start_s)


def starter(pool: ClientPool, chaincode: str, tag: str) -> Start:
    if chaincode == "none":

        def raw(k: int, ended: Ended) -> Callable[[], None]:
            key = load_key(tag, k)

            def done(result: Any) -> None:
                ended(result if isinstance(result, BaseException) else (True, key))

            cid = pool.start(key.encode(), done)
            return lambda: pool.abandon(cid, done)

        return raw
    from sim.live.gateway import LiveGateway

    gateway = LiveGateway(pool)

    def fabric(k: int, ended: Ended) -> Callable[[], None]:
        def done(result: Any) -> None:
            if isinstance(result, BaseException):
                ended(result)
            else:
                ended((result.outcome.valid, result.tx_id))

        return gateway.start("put", (load_key(tag, k), str(k)), done, chaincode="kv")

    return fabric
