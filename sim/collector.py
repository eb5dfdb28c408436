"""Keeping Python's cyclic garbage collector out of the way of a long, churning run.

Both the simulator and the live load generator allocate objects by the
million that die by reference counting; the collector still runs every few
hundred allocations, and its older generations rescan everything the process
built before (keys, identities, the simulated world). Freezing those objects
and collecting the young generation less often removes that rescanning
without changing what is freed, only when.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def fewer_collections(young_threshold: int, collect_first: bool = False) -> Iterator[None]:
    """Freeze what exists now and collect the young generation every ``young_threshold``
    allocations; both are put back on the way out, also after an exception.

    ``collect_first`` frees garbage left by start-up before freezing, so it is
    not kept for the whole run (the live generator's start-up makes some;
    deterministic runs must not, as collecting there would be a needless pass).
    """
    threshold = gc.get_threshold()
    if collect_first:
        gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
