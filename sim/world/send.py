"""Sending: one message from one principal to one or all, encoded once, routed per hop.

Wire fidelity: every message is encoded with the canonical codec when sent
(once per send, however many receivers) and handed to each receiver as bytes,
which it decodes itself, so what is tested is what goes on the wire. Raw
bytes (a Byzantine replica's replay or garbage) are sent as they are.

Each hop gets a message id (traces follow it from send to delivery or drop),
is routed by ``sim.world.network`` and becomes a :class:`Delivery` event per
arrival; when every hop of a broadcast would arrive at the same instant
(fixed latency, no fault active) the broadcast is one :class:`Broadcast`
event instead, which the loop delivers hop by hop. This is the simulator's
hottest code, hence the locals.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from ledger.codec import CodecError, decode, encode
from pbft.api import BROADCAST, CLIENT_ID_BASE
from pbft.messages import Message
from sim.world.events import Broadcast, Delivery
from sim.world.state import WorldState


class Sending(WorldState):
    def _send(self, src: int, to: int, payload: Message | bytes, delay: float = 0.0) -> None:
        message: Message | None
        if isinstance(payload, bytes):
            data = payload
            try:
                kind = type(decode(data)).__name__
            except CodecError:
                kind = "garbage"
            message = None
        else:
            message = payload
            data = encode(payload)
            kind = type(payload).__name__
        size = len(data)
        now = self.now + delay
        trace = self.trace
        network = self.network
        if to == BROADCAST and trace is None:
            fixed = network.same_arrival
            if fixed is not None:
                self._broadcast_together(src, data, kind, size, now + fixed)
                return
        targets: Iterable[int] = range(self.n) if to == BROADCAST else (to,)
        route = network.route
        # Without faults, loss, duplication or FIFO a hop is just a latency draw
        # (the same draw, in the same order, that ``route`` would make).
        latency = network.latency if network.plain else None
        queue = self.queue
        heap = queue.heap
        push = heapq.heappush
        n = self.n
        clients = len(self.clients)
        # Counters live in locals for the loop (nothing it calls reads them) and
        # are written back once; per-kind totals are added once per send.
        msg_id = self._msg_id
        pushed = queue.pushed
        in_flight = self._in_flight
        hops = 0
        for dst in targets:
            if dst == src:
                continue
            msg_id += 1
            hops += 1
            if trace is not None:
                trace.send(
                    self.now,
                    msg_id,
                    src,
                    dst,
                    kind,
                    getattr(message, "view", None),
                    getattr(message, "seq", None),
                    size,
                    getattr(message, "digest", None),
                )
            if not (0 <= dst < n or 0 <= dst - CLIENT_ID_BASE < clients):
                self._dropped(msg_id, src, dst, kind, "unknown-destination")
                continue
            if latency is not None:
                in_flight += 1
                pushed += 1
                push(heap, (now + latency(), pushed, Delivery(dst, src, data, msg_id, kind)))
                continue
            times, reason = route(src, dst, now)
            if reason is not None:
                self._dropped(msg_id, src, dst, kind, reason)
                continue
            for t in times:
                in_flight += 1
                pushed += 1
                push(heap, (t, pushed, Delivery(dst, src, data, msg_id, kind)))
        self._msg_id = msg_id
        queue.pushed = pushed
        self._in_flight = in_flight
        if hops:
            self.messages[kind] += hops
            self.bytes[kind] += size * hops

    def _broadcast_together(self, src: int, data: bytes, kind: str, size: int, at: float) -> None:
        """One :class:`Broadcast` event for every replica but ``src``, all arriving ``at``.

        The same ids, counts and delivery order as one event per hop (see
        ``Broadcast``); untraced runs only, so the trace's per-hop send lines
        need no second code path.
        """
        dsts = self._others.get(src)
        if dsts is None:
            dsts = self._others[src] = [dst for dst in range(self.n) if dst != src]
        hops = len(dsts)
        if not hops:
            return
        queue = self.queue
        queue.pushed += 1
        heapq.heappush(
            queue.heap, (at, queue.pushed, Broadcast(dsts, src, data, self._msg_id + 1, kind))
        )
        self._msg_id += hops
        self._in_flight += hops
        self.messages[kind] += hops
        self.bytes[kind] += size * hops

    def _dropped(self, msg_id: int, src: int, dst: int, kind: str, reason: str) -> None:
        self.net_drops[reason] += 1
        if 0 <= dst < self.n:
            self.drops_to[dst]["net." + reason] += 1
        if self.trace is not None:
            self.trace.drop(self.now, msg_id, src, dst, kind, reason)
