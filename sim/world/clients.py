"""Driving the clients: request arrivals, submission, replies and latencies.

Requests arrive as a Poisson process (``rate_per_s``; all at the start when
it is 0) and go to the clients in turn. A client has one request outstanding,
as PBFT's clients do, so later arrivals queue at it; the workload supplies each
operation and hears each result.
"""

from __future__ import annotations

from typing import Any

from pbft.messages import Request
from sim.world.events import ARRIVAL
from sim.world.slots import ClientSlot
from sim.world.state import WorldState


class ClientDriving(WorldState):
    def _live(self) -> list[int]:
        """The replicas up now: worked out again only after a crash or a start."""
        live = self._live_ids
        if live is None:
            live = self._live_ids = [node.id for node in self.nodes if node.replica is not None]
        return live

    def _try_submit(self, slot: ClientSlot) -> None:
        if slot.pending is not None or not slot.queue:
            return
        slot.queue.popleft()
        now = int(self.now)
        operation = self.workload.next_operation(slot.index, now, self._live())
        out = slot.client.submit(operation, now)
        slot.pending = operation
        self.submitted += 1
        if self.first_submit is None:
            self.first_submit = self.now
        for send in out.send:
            message = send.message
            if isinstance(message, Request):
                self.history.submitted[(message.client, message.timestamp)] = (operation, self.now)
                break
        self._client_output(slot, out)

    def _client_output(self, slot: ClientSlot, out: Any) -> None:
        if out.send:
            self._send_all(slot.id, out.send)
        for done in out.completed:
            self.committed += 1
            self.last_commit = self.now
            self.latencies.append(float(done.latency_ms))
            self.history.completed[(slot.id, done.timestamp)] = self.now
            self.workload.on_result(slot.index, done.operation, done.result, int(self.now))
            slot.pending = None
        wake = out.wake_at_ms
        now = self.now
        # Usually a timer for that instant is queued already (a reply per replica).
        if wake is not None and (wake < now or wake not in slot.ticks):
            self._tick_at(slot, wake, 0)
        # An idle output whose timer is queued at ``wake`` itself (a timer due in the
        # past was queued for now instead: not settled, as it must be queued again later).
        if out.send or out.completed or (wake is not None and wake < now):
            slot.settled = None
        else:
            slot.settled = out
        if slot.pending is None and slot.queue:
            self._try_submit(slot)

    def _arrival(self) -> None:
        slot = self.clients[self.arrivals % len(self.clients)]
        self.arrivals += 1
        slot.queue.append(self.now)
        if self.arrivals < self._total_requests:
            self._schedule_arrival(self.now)
        self._try_submit(slot)

    def _schedule_arrival(self, after: float) -> None:
        """The next arrival, an exponential gap after ``after``."""
        self.queue.push(after + self.workload_rng.expovariate(1.0 / self._mean_gap_ms), ARRIVAL)

    def _outstanding(self) -> bool:
        if self.arrivals < self._total_requests:
            return True
        return any(s.pending is not None or s.queue for s in self.clients)
