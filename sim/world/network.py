"""The simulated network: per-hop latency, loss, duplication, reordering, cuts.

Every message hop (one sender, one receiver) is routed here once, when it is
sent, and gets either a list of arrival times (one, or two when duplicated) or
a drop reason. All randomness comes from the network's own ``random.Random``
(derived from the run's seed), drawn in a fixed order per hop, so a seed
replays the same network.

Model (``sim.scenario.model.Latency`` plus the timed faults of ``sim.world.faults``):

* latency ``fixed`` (``min_ms``), ``uniform`` (``min_ms..max_ms``) or
  ``exponential`` (``min_ms`` + Exp with mean ``mean_ms - min_ms``, capped at
  ``10 * max_ms`` so one unlucky draw cannot stall a run forever);
* ``drop_rate`` loses a hop (reason ``loss``), ``duplicate_rate`` delivers it a
  second time with an independent latency;
* ``reorder = False`` makes each directed link FIFO; otherwise independent
  latencies reorder messages freely;
* a partition cuts every link between nodes listed in different groups
  (reason ``partition``). Replicas not listed in any group form one more group
  together; clients are never cut by partitions (use link faults for that);
* a link fault affects one direction of one link: it drops with its own
  ``drop_rate`` (reason ``link``) and adds ``extra_delay_ms``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sim.scenario.model import Latency

LATENCY_KINDS = ("fixed", "uniform", "exponential")


@dataclass(frozen=True, slots=True)
class LinkFault:
    src: int
    dst: int
    drop_rate: float
    extra_delay_ms: float


class Network:
    """Routes hops; faults are switched on and off by the simulator's fault timeline."""

    def __init__(self, latency: Latency, rng: random.Random, replicas: int) -> None:
        if latency.kind not in LATENCY_KINDS:
            raise ValueError(f"latency kind must be one of {LATENCY_KINDS}, got {latency.kind!r}")
        self._rng = rng
        self._replicas = replicas
        self._kind = latency.kind
        self._min = float(latency.min_ms)
        self._span = float(latency.max_ms) - float(latency.min_ms)
        mean_extra = float(latency.mean_ms) - float(latency.min_ms)
        self._exp_lambda = 1.0 / mean_extra if mean_extra > 0 else 0.0
        self._cap = 10.0 * float(latency.max_ms)
        self._drop_rate = float(latency.drop_rate)
        self._duplicate_rate = float(latency.duplicate_rate)
        self._fifo = not latency.reorder
        self._last_arrival: dict[tuple[int, int], float] = {}
        self._partitions: dict[int, dict[int, int]] = {}
        self._links: dict[tuple[int, int], dict[int, LinkFault]] = {}
        self.plain = False
        """True when :meth:`route` would return ``[now + self.latency()]`` for every hop.

        That is: no partition or link fault, no loss, no duplication and no FIFO
        bookkeeping. Senders may then draw the latency themselves. Read per
        send, so kept up to date by the fault switches rather than worked out.
        """
        self.same_arrival: float | None = None
        """The latency every hop gets while :attr:`plain` and fixed (no draw), else ``None``.

        Then all hops of one send arrive together, which lets the sender queue
        them as one event.
        """
        self._refresh()

    # ------------------------------------------------------------- fault switches

    def start_partition(self, key: int, groups: tuple[tuple[int, ...], ...]) -> None:
        """Cut links between ``groups`` until :meth:`end_partition` with the same key."""
        side: dict[int, int] = {}
        for index, group in enumerate(groups):
            for node in group:
                side[node] = index
        rest = len(groups)
        for replica in range(self._replicas):
            side.setdefault(replica, rest)
        self._partitions[key] = side
        self._refresh()

    def end_partition(self, key: int) -> None:
        self._partitions.pop(key, None)
        self._refresh()

    def start_link_fault(self, key: int, fault: LinkFault) -> None:
        self._links.setdefault((fault.src, fault.dst), {})[key] = fault
        self._refresh()

    def end_link_fault(self, key: int, src: int, dst: int) -> None:
        faults = self._links.get((src, dst))
        if faults is not None:
            faults.pop(key, None)
            if not faults:
                del self._links[(src, dst)]
        self._refresh()

    def _refresh(self) -> None:
        """Work out :attr:`plain` and :attr:`same_arrival` again: a fault started or ended."""
        self.plain = not (
            self._partitions
            or self._links
            or self._drop_rate > 0
            or self._duplicate_rate > 0
            or self._fifo
        )
        self.same_arrival = self._min if self._kind == "fixed" and self.plain else None

    @property
    def cut(self) -> bool:
        """True while any partition or link fault is active."""
        return bool(self._partitions or self._links)

    # ---------------------------------------------------------------- routing

    def latency(self) -> float:
        kind = self._kind
        if kind == "uniform":
            return self._min + self._rng.random() * self._span
        if kind == "fixed":
            return self._min
        if self._exp_lambda <= 0:
            return self._min
        return min(self._min + self._rng.expovariate(self._exp_lambda), self._cap)

    def route(self, src: int, dst: int, now: float) -> tuple[list[float], str | None]:
        """Arrival times for one hop sent at ``now``, or ``([], reason)`` if it is lost."""
        for side in self._partitions.values():
            a = side.get(src)
            if a is not None:
                b = side.get(dst)
                if b is not None and a != b:
                    return [], "partition"
        extra = 0.0
        if self._links:
            faults = self._links.get((src, dst))
            if faults:
                for fault in faults.values():
                    if fault.drop_rate > 0 and self._rng.random() < fault.drop_rate:
                        return [], "link"
                    extra += fault.extra_delay_ms
        rng = self._rng
        if self._drop_rate > 0 and rng.random() < self._drop_rate:
            return [], "loss"
        times = [now + extra + self.latency()]
        if self._duplicate_rate > 0 and rng.random() < self._duplicate_rate:
            times.append(now + extra + self.latency())
        if self._fifo:
            link = (src, dst)
            last = self._last_arrival.get(link, 0.0)
            for i, t in enumerate(times):
                if t < last:
                    times[i] = t = last
                last = t
            self._last_arrival[link] = last
        return times, None
