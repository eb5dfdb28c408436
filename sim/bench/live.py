"""The "live" section: n=4 nodes as OS processes over a mosquitto broker on loopback."""

from __future__ import annotations

from typing import Any

from sim.bench.simruns import Unavailable


def live_unavailable_reason() -> str | None:
    """Why the live section can't run here, or ``None`` when it can."""
    return "the live runtime (sim/live) is not complete yet"


def live_section(quick: bool) -> dict[str, Any]:
    reason = live_unavailable_reason()
    if reason is not None:
        raise Unavailable(reason)
    return {}
