"""The "live" section: n=4 nodes as OS processes over a mosquitto broker on loopback."""

from __future__ import annotations

from typing import Any

from sim.bench.simruns import require


def live_section(quick: bool) -> dict[str, Any]:
    require("sim.live")
    raise NotImplementedError  # filled in when sim/live lands
