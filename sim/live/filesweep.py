"""A live node's patch-file sweep: :mod:`sim.fabric.filegc` on the node's own store and state.

The node serves the files (``sim.live.host``), so the node removes them too:
every :data:`SWEEP_INTERVAL_MS` it judges its store against its own ledger's
world state, on its own event loop, between replica steps (the state is never
read while a block is being committed). The grace period is ``network.json``'s
``file_grace_ms`` (default :data:`sim.fabric.filegc.GRACE_MS`), in wall-clock
milliseconds.
"""

from __future__ import annotations

from typing import Any

from sim.fabric.blobs import DirectoryBlobStore
from sim.fabric.filegc import GRACE_MS, FileSweeper, check_grace, kept_files
from sim.live.netconfig import NetworkConfig

GRACE_KEY = "file_grace_ms"
SWEEP_INTERVAL_MS = 1_000


def grace_ms(config: NetworkConfig) -> int:
    return check_grace(config.extra.get(GRACE_KEY, GRACE_MS), "network.json")


class NodeFileSweep:
    """When the node placed each file, and the periodic sweep of those no release needs."""

    def __init__(self, store: DirectoryBlobStore, config: NetworkConfig, app: Any) -> None:
        self.sweeper = FileSweeper(store, grace_ms(config))
        self.ledger = getattr(app, "ledger", None)  # none for a plain-log network
        self._next_ms = 0
        self.removed = 0

    def placed(self, digest: str, now_ms: int) -> None:
        self.sweeper.placed(digest, now_ms)

    def tick(self, now_ms: int) -> int:
        """Sweep if it is time; the bytes freed (0 when nothing was due or removed)."""
        if self.ledger is None or now_ms < self._next_ms:
            return 0
        self._next_ms = now_ms + SWEEP_INTERVAL_MS
        if not self.sweeper.store.digests():
            return 0
        gone = self.sweeper.sweep(kept_files(self.ledger), now_ms)
        self.removed += len(gone)
        return sum(size for _digest, size in gone)
