"""The benchmark suite as one call: sections, their order, and the targets.

``run_suite`` measures the requested sections in one process run, so every
throughput can be read as a ratio against the limits measured minutes
before on the same machine under the same load. A section whose dependency
is not built yet is reported ``unavailable`` with the reason; one that
breaks is reported ``failed`` with the error, and the others still run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.bench import limits as limits_mod
from sim.bench.live import live_section
from sim.bench.machine import describe
from sim.bench.simruns import BenchError, Unavailable, sim_modelled, sim_real
from sim.bench.timing import FULL, QUICK

SECTIONS = ("limits", "sim-real", "sim-modelled", "live")
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Options:
    quick: bool = False
    only: tuple[str, ...] = ()
    profile_top: int = 0
    """With > 0, add a cProfile run per simulator section and keep its top functions."""
    peer_bftsim: Path | None = None
    """A BFT-Simulator checkout to time beside sim-modelled's n = 16 run (``sim.bench.peer``)."""
    progress: Callable[[str], None] = field(default=lambda _msg: None)

    def wants(self, section: str) -> bool:
        return not self.only or section in self.only


@dataclass(frozen=True, slots=True)
class Target:
    """One goal from the benchmark issue, checked against a run's figures."""

    name: str
    section: str
    threshold: float
    higher_is_better: bool
    pick: Callable[[dict[str, Any]], float | None]

    def check(self, section: dict[str, Any]) -> dict[str, Any]:
        value = self.pick(section) if section.get("status") == "ok" else None
        met = None
        if value is not None:
            met = value >= self.threshold if self.higher_is_better else value < self.threshold
        return {
            "name": self.name,
            "section": self.section,
            "threshold": self.threshold,
            "comparison": ">=" if self.higher_is_better else "<",
            "value": value,
            "met": met,
        }


def _size(n: int, key: str) -> Callable[[dict[str, Any]], float | None]:
    def pick(section: dict[str, Any]) -> float | None:
        for row in section["sizes"]:
            if row["n"] == n:
                return float(row[key])
        return None

    return pick


def _peer_ratio(section: dict[str, Any]) -> float | None:
    """n = 16 messages/s over BFT-Simulator's in the same run (None unless it ran)."""
    for row in section["sizes"]:
        peer = row.get("peer")
        if peer is not None and peer.get("status") == "ok":
            return float(peer["ratio"])
    return None


def _key(key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda section: float(section[key]) if section.get(key) is not None else None


TARGETS = (
    Target("sim-real committed tx/s", "sim-real", 1000, True, _key("tx_per_s")),
    Target("sim-real share of the crypto bound", "sim-real", 0.5, True, _key("efficiency")),
    Target(
        "sim-modelled messages/s at n=16",
        "sim-modelled",
        300_000,
        True,
        _size(16, "messages_per_s"),
    ),
    Target(
        "sim-modelled n=16 msgs/s / BFT-Simulator's, side by side",
        "sim-modelled",
        1.0,
        True,
        _peer_ratio,
    ),
    Target(
        "sim-modelled n=100 wall s for 1,000 requests",
        "sim-modelled",
        8,
        False,
        _size(100, "wall_s"),
    ),
    Target("live committed tx/s", "live", 1000, True, _key("tx_per_s")),
    Target("live p99 commit latency ms", "live", 500, False, _key("p99_ms")),
)


def _run_section(body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        figures = body()
    except Unavailable as exc:
        return {"status": "unavailable", "reason": str(exc)}
    except BenchError as exc:
        return {"status": "failed", "reason": str(exc), "seconds": time.perf_counter() - start}
    return {"status": "ok", "seconds": time.perf_counter() - start, **figures}


def _signature_rates(limits: dict[str, Any], quick: bool) -> tuple[float, float, str]:
    """ECDSA P-256 (sign/s, verify/s, code path) for the crypto bound.

    Measured again right after the simulator run and combined with the limits
    section's figures by taking the higher rate: a limit is what the machine
    can do, and on a shared machine the least disturbed measurement is the
    closest to it. A limit caught during someone else's burst would otherwise
    make the efficiency look better than it is.
    """
    rows = limits_mod.signature_rows(QUICK if quick else FULL, ("ecdsa-p256",))
    sign, verify, via = limits_mod.preferred_rates(
        {"signatures": [row.to_json() for row in rows]}, "ecdsa-p256"
    )
    if limits.get("status") == "ok":
        earlier_sign, earlier_verify, _ = limits_mod.preferred_rates(limits, "ecdsa-p256")
        sign, verify = max(sign, earlier_sign), max(verify, earlier_verify)
    return sign, verify, via


def add_ratios(sections: dict[str, dict[str, Any]]) -> None:
    """Figures against limits from the same run, where both sides were measured.

    * sim-modelled: messages/s over the modelled authenticator's first-sight
      verify rate, a machine constant of the same run: how many MAC checks
      the time one message takes would buy.
    * live: committed tx/s over what all the cores could commit doing only
      the signature checks a transaction needs on separate machines (the
      sim-real deployment bound, times the number of CPUs).
    """
    limits, real = sections.get("limits", {}), sections.get("sim-real", {})
    modelled, live = sections.get("sim-modelled", {}), sections.get("live", {})
    if limits.get("status") == "ok" and modelled.get("status") == "ok":
        _, verify_rate, _ = limits_mod.preferred_rates(limits, "hmac-sha256")
        for row in modelled["sizes"]:
            row["mac_verify_per_s"] = verify_rate
            row["messages_vs_mac_verify"] = row["messages_per_s"] / verify_rate
    if real.get("status") == "ok" and live.get("status") == "ok":
        cpus = os.cpu_count() or 1
        bound = real["deployment_bound_tx_per_s"] * cpus
        live["crypto_bound_tx_per_s"] = bound
        live["crypto_bound_cpus"] = cpus
        live["efficiency"] = live["tx_per_s"] / bound


def run_suite(options: Options) -> dict[str, Any]:
    """Measure every wanted section; the answer is what ``bench --json`` prints."""
    sections: dict[str, dict[str, Any]] = {}
    budget = QUICK if options.quick else FULL
    skipped = {"status": "skipped", "reason": "not selected with --only"}

    def step(name: str, body: Callable[[], dict[str, Any]]) -> None:
        if not options.wants(name):
            sections[name] = dict(skipped)
            return
        options.progress(f"bench: {name} ...")
        sections[name] = _run_section(body)
        options.progress(f"bench: {name} {sections[name]['status']}")

    step("limits", lambda: limits_mod.run_limits(budget))

    def real() -> dict[str, Any]:
        return sim_real(
            options.quick,
            lambda: _signature_rates(sections["limits"], options.quick),
            options.profile_top,
        )

    step("sim-real", real)
    step(
        "sim-modelled",
        lambda: sim_modelled(options.quick, options.profile_top, options.peer_bftsim),
    )
    step("live", lambda: live_section(options.quick))
    add_ratios(sections)
    return {
        "schema": SCHEMA_VERSION,
        "quick": options.quick,
        "machine": describe(),
        "sections": sections,
        "targets": [t.check(sections[t.section]) for t in TARGETS],
    }
