"""What a run is configured from: the protocol parameters and the seed.

Each subsystem (network, workload arrivals, operations, Byzantine behaviours)
draws from its own ``random.Random`` derived from the seed, so adding draws in
one never shifts another's.
"""

from __future__ import annotations

import hashlib
import random

from pbft.api import PBFTConfig
from sim.scenario.model import Scenario


def derive_rng(seed: int, label: str) -> random.Random:
    """An independent RNG per subsystem: SHA-256 of (seed, label), never ``hash()``."""
    digest = hashlib.sha256(f"ledgersim/{seed}/{label}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def config_for(scenario: Scenario) -> PBFTConfig:
    net = scenario.network
    return PBFTConfig(
        n=net.replicas,
        batch_size=net.batch_size,
        batch_timeout_ms=net.batch_timeout_ms,
        checkpoint_interval=net.checkpoint_interval,
        watermark_window=net.watermark_window,
        view_change_timeout_ms=net.view_change_timeout_ms,
    )
