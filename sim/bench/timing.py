"""Rate measurement that stays honest on a shared, noisy machine.

Each figure is the best of a few repeats, each repeat running the operation
until a minimum wall time has passed: the best repeat is the one least
disturbed by other processes, which is what a ratio against limits measured
in the same run needs. Operations run in growing inner batches so the clock
is read rarely compared with the work measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Budget:
    """How long to spend measuring one rate."""

    min_seconds: float
    repeats: int


QUICK = Budget(min_seconds=0.05, repeats=2)
FULL = Budget(min_seconds=0.4, repeats=3)


def measure_rate(op: Callable[[], object], budget: Budget) -> float:
    """Operations per second of ``op``, best of ``budget.repeats`` timed runs."""
    best = 0.0
    for _ in range(budget.repeats):
        count = 0
        batch = 1
        start = time.perf_counter()
        while True:
            for _ in range(batch):
                op()
            count += batch
            elapsed = time.perf_counter() - start
            if elapsed >= budget.min_seconds:
                break
            batch = min(batch * 2, 4096)
        best = max(best, count / elapsed)
    return best
