"""The event loop: pop the earliest event, advance the clock to it, hand it to its owner.

The run ends at the scenario's end, or earlier once nothing can happen any
more: no message in flight, no fault still to fire and no request still to
arrive or to complete. Every 1024 events the replicas' log sizes are sampled
(and now and then progress is reported).
"""

from __future__ import annotations

import heapq

from ledger.codec import constructor
from pbft.api import CLIENT_ID_BASE, Deliver, Tick
from sim.world.events import ARRIVAL, Arrival, Burst, Delivery, FaultDue, Timer
from sim.world.faults import timeline
from sim.world.slots import ReplicaSlot
from sim.world.state import WorldState

_deliver = constructor(Deliver)
"""``Deliver(...)`` without a call of the class: one is built per message, or per part."""


class EventLoop(WorldState):
    def run(self) -> None:
        start = self.start_ms
        for action in timeline(self.scenario):
            if start + action.at_ms <= self.end_ms:
                self._faults_pending += 1
                self.queue.push(start + action.at_ms, FaultDue(action))
        if self._total_requests > 0 and self._mean_gap_ms > 0:
            self._schedule_arrival(start)
        elif self._total_requests > 0:
            for _ in range(self._total_requests):
                self.queue.push_in_order(start, ARRIVAL)
        for node in self.nodes:
            self._step_replica(node, Tick(int(start)))

        heap = self.queue.heap
        in_order = self.queue.in_order
        pop = heapq.heappop
        popleft = in_order.popleft
        nodes = self.nodes
        step_replicas = self._step_replicas
        clients = self.clients
        n = self.n
        end = self.end_ms
        trace = self.trace
        progress = self.progress
        events = 0
        while True:
            # The earlier of the two heads (``EventQueue``); order numbers never tie.
            if in_order and (not heap or in_order[0] < heap[0]):
                t, _, event = popleft()
            elif heap:
                t, _, event = pop(heap)
            else:
                break
            if t > end:
                self.now = end
                break
            self.now = t
            events += 1
            if type(event) is Burst:
                # One hop after another, each counted and sampled after exactly as
                # if each hop had its own entry. The run cannot end before the last
                # hop (the ones left are still in flight), so that is checked once.
                events -= 1
                src = event.src
                now_ms = int(t)
                self._in_flight -= event.hops
                delivered = False
                for first_id, dsts, data, name in event.parts:
                    hops = len(dsts)
                    if (events & 0x3FF) + hops < 0x400:
                        # No log sample falls due inside this part (the usual case): the
                        # loop below without its per-hop count and check.
                        events += hops
                        if dsts[0] >= n:  # one client, which needs no event object
                            slot = clients[dsts[0] - CLIENT_ID_BASE]
                            out = slot.receive(now_ms, src, data)
                            if out is not slot.settled:  # else handling it does nothing
                                self._client_output(slot, out)
                            delivered = True
                            continue
                        shared = _deliver(now_ms, src, data)  # frozen: shared
                        if not self._down:  # every receiver is up: one call for the part
                            step_replicas(dsts, shared)
                            delivered = True
                            continue
                        for dst in dsts:
                            node = nodes[dst]
                            if node.replica is None:
                                msg_id = first_id + dsts.index(dst)
                                self._dropped(msg_id, src, dst, name, "crashed")
                                delivered = False
                            else:
                                self._step_replica(node, shared)
                                delivered = True
                        continue
                    # A part goes to replicas (one frozen event, shared), or to one client
                    # (which needs no event object).
                    deliver = None if dsts[0] >= n else _deliver(now_ms, src, data)
                    for dst in dsts:
                        events += 1
                        if deliver is None:
                            slot = clients[dst - CLIENT_ID_BASE]
                            self._client_output(slot, slot.receive(now_ms, src, data))
                        else:
                            node = nodes[dst]
                            if node.replica is None:
                                # Hop ids follow ``dsts`` (no receiver twice in one part).
                                msg_id = first_id + dsts.index(dst)
                                self._dropped(msg_id, src, dst, name, "crashed")
                                delivered = False
                                continue
                            self._step_replica(node, deliver)
                        delivered = True
                        if not events & 0x3FF:
                            self._sample_logs()
                            if progress is not None and not events & 0x3FFF:
                                progress(t - self.start_ms, end - self.start_ms)
                # As for a single hop: a drop (to a crashed replica) ends nothing.
                if (
                    delivered
                    and self._in_flight == 0
                    and self._faults_pending == 0
                    and not self._outstanding()
                ):
                    break
                continue
            elif type(event) is Delivery:
                self._in_flight -= 1
                dst = event.dst
                src = event.src
                msg_id = event.msg_id
                name = event.kind
                if dst < n:
                    node = nodes[dst]
                    if node.replica is None:
                        self._dropped(msg_id, src, dst, name, "crashed")
                        continue
                    if trace is not None:
                        trace.deliver(t, msg_id, src, dst, name)
                    self._step_replica(node, _deliver(int(t), src, event.data))
                else:
                    slot = clients[dst - CLIENT_ID_BASE]
                    if trace is not None:
                        trace.deliver(t, msg_id, src, dst, name)
                    self._client_output(slot, slot.receive(int(t), src, event.data))
            elif type(event) is Timer:
                owner = event.owner
                owner.ticks.discard(t)
                owner.settled = None  # it counted on a queued timer, maybe this one
                if isinstance(owner, ReplicaSlot):
                    if owner.replica is not None and owner.life == event.life:
                        self._step_replica(owner, Tick(int(t)))
                else:
                    self._client_output(owner, owner.client.step(Tick(int(t))))
            elif type(event) is Arrival:
                self._arrival()
            elif type(event) is FaultDue:
                self._fault(event.action)
            if self._in_flight == 0 and self._faults_pending == 0 and not self._outstanding():
                break
            if not events & 0x3FF:
                self._sample_logs()
                if progress is not None and not events & 0x3FFF:
                    progress(t - self.start_ms, end - self.start_ms)
        self.events = events
        self._sample_logs()
        if progress is not None:
            progress(self.now - self.start_ms, end - self.start_ms)
