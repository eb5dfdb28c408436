"""One coarse timer for many deadlines: a client's request timeouts, hedges and retransmits.

A load generator keeps hundreds of requests in flight, each with a deadline
or two that almost never fire. One asyncio timer per deadline costs a heap
entry, a handle and a cancellation each; here deadlines fall into slots of
``resolution_s`` and a single asyncio timer fires for the earliest slot.
A callback runs at most ``resolution_s`` late and never early. Nothing is
cancelled: a callback whose work is already done simply finds nothing to do.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable

RESOLUTION_S = 0.02


class Wheel:
    """Deadlines on the running loop's clock, fired in slot order."""

    def __init__(self, resolution_s: float = RESOLUTION_S) -> None:
        self.resolution_s = resolution_s
        self._slots: dict[int, list[Callable[[], None]]] = {}
        self._order: list[int] = []
        """The slots in ``_slots`` as a heap (each pushed once, when created)."""
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def now(self) -> float:
        return self._running_loop().time()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def after(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` once, ``delay_s`` seconds from now (up to a slot later)."""
        self.at(self.now() + delay_s, callback)

    def at(self, when: float, callback: Callable[[], None]) -> None:
        slot = math.ceil(when / self.resolution_s)
        found = self._slots.get(slot)
        if found is None:
            self._slots[slot] = [callback]
            heapq.heappush(self._order, slot)
        else:
            found.append(callback)
        if self._armed_for is None or slot < self._armed_for:
            self._arm(slot)

    def _arm(self, slot: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_for = slot
        self._handle = self._running_loop().call_at(slot * self.resolution_s, self._fire)

    def _fire(self) -> None:
        self._handle = self._armed_for = None
        now = self.now()
        while self._order and self._order[0] * self.resolution_s <= now:
            for callback in self._slots.pop(heapq.heappop(self._order)):
                callback()
        if self._order:
            self._arm(self._order[0])

    def close(self) -> None:
        """Forget every deadline (the owner is shutting down)."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._armed_for = None
        self._slots.clear()
        self._order.clear()

    def __len__(self) -> int:
        return sum(len(callbacks) for callbacks in self._slots.values())
