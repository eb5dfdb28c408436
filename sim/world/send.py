"""Sending: one message from one principal to one or all, encoded once, routed per hop.

Wire fidelity: every message is encoded with the canonical codec when sent
(once per send, however many receivers) and handed to each receiver as bytes,
which it decodes itself, so what is tested is what goes on the wire. Raw
bytes (a Byzantine replica's replay or garbage) are sent as they are.

Each hop gets a message id (traces follow it from send to delivery or drop),
is routed by ``sim.world.network`` and becomes a :class:`Delivery` event per
arrival; when every hop would arrive at the same instant (fixed latency, no
fault active, untraced) all the hops of one send, or of every send one step
made, are one :class:`Burst` event instead, which the loop delivers hop by
hop. This is the simulator's hottest code, hence the locals.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import NamedTuple

from ledger.codec import CodecError, decode, encode
from pbft.api import BROADCAST, CLIENT_ID_BASE, Send
from pbft.messages import Message
from sim.world.events import Burst, Delivery, Part
from sim.world.state import WorldState


class Hop(NamedTuple):
    """One send that is not a replica's ``Send``: a Byzantine emit's payload may be raw bytes."""

    to: int
    message: Message | bytes


def raw_kind(data: bytes) -> str:
    """The kind counted for raw bytes sent as they are: what they decode to, or "garbage"."""
    try:
        return type(decode(data)).__name__
    except CodecError:
        return "garbage"


class Sending(WorldState):
    def _send_all(self, src: int, sends: Iterable[Send]) -> None:
        """Every send of one step, in order: one :class:`Burst` when they all arrive together."""
        at = self._together_at(0.0)
        if at is None:
            for send in sends:
                self._send(src, send.to, send.message)
        else:
            self._burst(src, sends, at)

    def _send(self, src: int, to: int, payload: Message | bytes, delay: float = 0.0) -> None:
        at = self._together_at(delay)
        if at is not None:
            self._burst(src, (Hop(to, payload),), at)
            return
        message: Message | None
        if isinstance(payload, bytes):
            data, kind, message = payload, raw_kind(payload), None
        else:
            data, kind, message = encode(payload), type(payload).__name__, payload
        size = len(data)
        now = self.now + delay
        trace = self.trace
        network = self.network
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

    def _together_at(self, delay: float) -> float | None:
        """When every hop sent now (plus ``delay``) arrives, if that is one instant for all.

        Only untraced: the trace writes a line per hop sent, which the per-hop
        path does, so there is one code path for traces.
        """
        if self.trace is not None:
            return None
        fixed = self.network.same_arrival
        return None if fixed is None else self.now + delay + fixed

    def _burst(self, src: int, sends: Iterable[Send | Hop], at: float) -> None:
        """Queue ``sends`` as one :class:`Burst` arriving ``at``.

        The same ids, counts, drops and delivery order as one event per hop:
        a broadcast reaches every replica but ``src`` in id order, a send to
        ``src`` itself is skipped, one to nobody known is dropped at once.

        The per-kind counters are added once per run of sends of one kind (a
        replica's replies to a batch's clients are one run): a counter update
        costs more than the rest of a send here. Runs are added in order, so
        the counters get their kinds in the same order as sent one by one.
        """
        dsts_all = self._others.get(src)
        if dsts_all is None:
            dsts_all = self._others[src] = [dst for dst in range(self.n) if dst != src]
        n = self.n
        clients = len(self.clients)
        messages = self.messages
        sizes = self.bytes
        msg_id = self._msg_id
        total = 0
        parts: list[Part] = []
        run_kind = ""  # the run of sends of one kind not counted yet ("": none)
        run_hops = run_bytes = 0
        for send in sends:
            payload = send.message
            if isinstance(payload, bytes):
                data, kind = payload, raw_kind(payload)
            else:
                data, kind = encode(payload), type(payload).__name__
            to = send.to
            if to == src:  # (never BROADCAST: ids are not negative)
                continue
            if to == BROADCAST:
                dsts: list[int] | tuple[int, ...] = dsts_all  # never empty: n >= 4
            elif 0 <= to < n or 0 <= to - CLIENT_ID_BASE < clients:
                dsts = (to,)
            else:
                dsts = ()
            if dsts:
                hops = len(dsts)
                parts.append((msg_id + 1, dsts, data, kind))
                total += hops
            else:  # nobody known: dropped at once, and counted as one hop
                hops = 1
                self._dropped(msg_id + 1, src, to, kind, "unknown-destination")
            msg_id += hops
            if kind != run_kind:
                if run_hops:
                    messages[run_kind] += run_hops
                    sizes[run_kind] += run_bytes
                run_kind = kind
                run_hops = run_bytes = 0
            run_hops += hops
            run_bytes += len(data) * hops
        if run_hops:
            messages[run_kind] += run_hops
            sizes[run_kind] += run_bytes
        self._msg_id = msg_id
        if parts:
            self._in_flight += total
            self.queue.push_in_order(at, Burst(src, parts, total))

    def _dropped(self, msg_id: int, src: int, dst: int, kind: str, reason: str) -> None:
        self.net_drops[reason] += 1
        if 0 <= dst < self.n:
            self.drops_to[dst]["net." + reason] += 1
        if self.trace is not None:
            self.trace.drop(self.now, msg_id, src, dst, kind, reason)
