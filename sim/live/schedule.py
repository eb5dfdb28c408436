"""The fault schedule of a nemesis run, drawn from a seed before the run starts.

Which faults, in which order, when, for how long, and on which *role* (a
backup, the primary, any node). Roles are resolved to replica ids only when
the fault strikes (``sim.live.faults``), because which node is primary depends
on the view changes earlier faults caused. Faults never overlap: each one is
healed, and the network given a few seconds to settle, before the next begins,
so every fault is one the protocol is meant to survive (except ``kill-two``,
which is beyond f on purpose: progress may stop while it lasts, safety may not).
Kept free of process handling so the command line can list the kinds cheaply.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sim.errors import InputError

KINDS = (
    "kill-backup",
    "kill-primary",
    "pause",
    "broker-restart",
    "torn-tail",
    "kill-two",
    "bridge-cut",
)
"""Every fault kind; ``kill-two`` (beyond f) and ``bridge-cut`` (bridged networks
only) when asked for by name."""
DEFAULT_KINDS = ("kill-backup", "kill-primary", "pause", "broker-restart", "torn-tail")
HOLD_S = {
    "kill-backup": (2.0, 3.0),
    "kill-primary": (2.0, 3.0),
    "pause": (2.0, 3.0),
    "broker-restart": (1.0, 1.5),
    "torn-tail": (2.0, 3.0),
    "kill-two": (2.0, 3.0),
    "bridge-cut": (2.0, 3.0),
}
"""How long each kind lasts before it is healed (drawn uniformly in the range)."""
SETTLE_S = 3.0
"""Quiet time after a fault is healed, before the next one."""
WARMUP_S = 3.0


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault: what, when (seconds after load starts), how long, and on whom."""

    kind: str
    at_s: float
    hold_s: float
    pick: int
    """Which node of the role (an index into the sorted candidates, modulo their number)."""
    cut_bytes: int = 0
    """For ``torn-tail``: bytes cut off the end of the block store."""


def parse_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise InputError(f"--faults: expected a comma list of {', '.join(KINDS)}, got {text!r}")
    return kinds


def schedule(seed: int, duration_s: float, kinds: tuple[str, ...]) -> list[Fault]:
    """Faults cycling through ``kinds`` (shuffled by ``seed``) until ``duration_s`` is used up.

    The last fault is healed at least SETTLE_S before the load ends, so the
    run also shows throughput coming back under load.
    """
    rng = random.Random(seed)
    order = list(kinds)
    rng.shuffle(order)
    faults: list[Fault] = []
    at = WARMUP_S
    while True:
        kind = order[len(faults) % len(order)]
        low, high = HOLD_S[kind]
        hold = round(rng.uniform(low, high), 1)
        if at + hold + SETTLE_S > duration_s:
            return faults
        cut = rng.randint(1, 64) if kind == "torn-tail" else 0
        faults.append(Fault(kind, round(at, 1), hold, rng.randrange(1 << 16), cut))
        at += hold + SETTLE_S + round(rng.uniform(0.0, 1.0), 1)
