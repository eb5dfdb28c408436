"""A tiny direct-delivery harness for PBFT unit tests (no network model, no ledger).

Messages go through the real codec, a fixed or seeded-random latency, and
optional filters (drop, tamper) so tests can stage exactly the faults they need.
The simulator proper lives in sim/; this only exists so pbft/ can be tested alone.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.codec import decode, encode
from pbft.api import BROADCAST, CLIENT_ID_BASE, Deliver, Output, PBFTConfig, Tick
from pbft.auth import Keyring
from pbft.client import Client, ClientOutput, Completed
from pbft.memapp import MemoryApplication
from pbft.replica import Replica

Filter = Callable[[int, int, Any], "bool | bytes"]
"""(sender, receiver, message) -> True deliver, False drop, bytes: deliver these instead."""

Observer = Callable[[int, Output], None]
"""(replica, output) after every replica step, e.g. to record a run for invariant checks."""

InFlight = tuple[int, int, bytes]
"""(receiver, sender, data) of one message the network holds."""

TIMEOUT = 300
"""The view-change timeout of :data:`VIEW_CHANGE_SETTINGS`, in ms."""
VIEW_CHANGE_SETTINGS: dict[str, Any] = {
    "batch_size": 1,
    "view_change_timeout_ms": TIMEOUT,
    "client_retry_ms": 100,
    "checkpoint_interval": 50,
    "watermark_window": 100,
}
"""One request a batch, short timers and no checkpoint within a test's few requests:
what view-change and catching-up tests share (a replica that falls behind can
follow only by agreement, not by state transfer)."""


@dataclass
class Cluster:
    n: int = 4
    seed: int = 1
    clients: int = 1
    replica_class: type[Replica] = Replica
    latency: tuple[int, int] = (1, 1)
    settings: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config = PBFTConfig(n=self.n, **self.settings)
        self.keyring = Keyring(self.seed)
        self.rng = random.Random(self.seed)
        self.now = 0
        self.apps = [MemoryApplication() for _ in range(self.n)]
        self.replicas: list[Replica] = [
            self.replica_class(i, self.config, self.keyring.authenticator(i), self.apps[i])
            for i in range(self.n)
        ]
        self.client_ids = [CLIENT_ID_BASE + k for k in range(self.clients)]
        self.client_objs = {
            c: Client(c, self.config, self.keyring.authenticator(c)) for c in self.client_ids
        }
        self.persisted: list[list[bytes]] = [[] for _ in range(self.n)]
        self.queue: list[tuple[int, int, int, int, bytes]] = []
        self.wakes: dict[int, int] = {}
        self.counter = 0
        self.sent: Counter[str] = Counter()
        self.filters: list[Filter] = []
        self.observers: list[Observer] = []
        self.crashed: set[int] = set()
        self.completed: dict[int, list[Completed]] = {c: [] for c in self.client_ids}
        self.executed: list[list[int]] = [[] for _ in range(self.n)]

    # ------------------------------------------------------------------ plumbing

    def _enqueue(self, sender: int, to: int, data: bytes, msg: Any) -> None:
        for flt in self.filters:
            verdict = flt(sender, to, msg)
            if verdict is False:
                return
            if isinstance(verdict, bytes):
                data = verdict
        lo, hi = self.latency
        delay = lo if lo == hi else self.rng.randint(lo, hi)
        self.counter += 1
        heapq.heappush(self.queue, (self.now + delay, self.counter, to, sender, data))

    def _dispatch_sends(self, sender: int, sends: list[Any]) -> None:
        for send in sends:
            data = encode(send.message)
            if send.to == BROADCAST:
                targets = [r for r in range(self.n) if r != sender]
            else:
                targets = [send.to]
            self.sent[type(send.message).__name__] += len(targets)
            for to in targets:
                self._enqueue(sender, to, data, send.message)

    def _handle_replica_output(self, i: int, out: Output) -> None:
        if out.compact:
            self.persisted[i] = list(out.persist)
        else:
            self.persisted[i].extend(out.persist)
        self.executed[i].extend(b.seq for b in out.executed)
        for observe in self.observers:
            observe(i, out)
        self._dispatch_sends(i, out.send)
        if out.wake_at_ms is not None:
            self.wakes[i] = out.wake_at_ms
        else:
            self.wakes.pop(i, None)

    def _handle_client_output(self, c: int, out: ClientOutput) -> None:
        self.completed[c].extend(out.completed)
        self._dispatch_sends(c, out.send)
        if out.wake_at_ms is not None:
            self.wakes[c] = out.wake_at_ms
        else:
            self.wakes.pop(c, None)

    def deliver_raw(self, sender: int, to: int, data: bytes) -> None:
        """Inject bytes as if ``sender`` had sent them (Byzantine input)."""
        self._enqueue(sender, to, data, None)

    def submit(self, client: int, operation: bytes) -> None:
        self._handle_client_output(client, self.client_objs[client].submit(operation, self.now))

    def _step_node(self, node: int, event: Deliver | Tick) -> None:
        if node in self.client_objs:
            self._handle_client_output(node, self.client_objs[node].step(event))
        elif node not in self.crashed:
            self._handle_replica_output(node, self.replicas[node].step(event))

    def step_once(self) -> bool:
        """Advance to the next delivery or timer; False when nothing is left."""
        next_msg = self.queue[0][0] if self.queue else None
        next_wake = min(self.wakes.values()) if self.wakes else None
        if next_msg is None and next_wake is None:
            return False
        if next_wake is not None and (next_msg is None or next_wake < next_msg):
            self.now = max(self.now, next_wake)
            for node in sorted(k for k, t in self.wakes.items() if t <= self.now):
                del self.wakes[node]
                self._step_node(node, Tick(self.now))
            return True
        at, _, to, sender, data = heapq.heappop(self.queue)
        self.now = max(self.now, at)
        self._step_node(to, Deliver(self.now, sender, data))
        return True

    def run(self, until: Callable[[], bool] | None = None, max_ms: int = 60_000) -> None:
        limit = self.now + max_ms
        while (until is None or not until()) and self.now <= limit:
            if not self.step_once():
                break

    # ------------------------------------------------- message-by-message control
    # An asynchronous network may delay, lose, duplicate or reorder anything; these
    # let a test (e.g. a Hypothesis state machine) act as that network one message
    # at a time instead of through latencies and filters.

    def in_flight(self) -> list[InFlight]:
        """Messages the network holds, in the order ``step_once`` would deliver them."""
        return [(to, sender, data) for _, _, to, sender, data in sorted(self.queue)]

    def take(self, index: int) -> InFlight:
        """Remove the ``index``-th in-flight message (delivery order) from the network."""
        ordered = sorted(self.queue)
        _, _, to, sender, data = ordered.pop(index)
        self.queue = ordered  # a sorted list is a valid heap
        return to, sender, data

    def deliver_now(self, to: int, sender: int, data: bytes) -> None:
        """Hand ``data`` to ``to`` at the current time, ahead of anything still in flight."""
        self._step_node(to, Deliver(self.now, sender, data))

    def advance(self, ms: int) -> None:
        """Let ``ms`` of virtual time pass delivering nothing: only timers fire.

        Everything in flight is thereby delayed past timeouts, which is how a
        test makes replicas suspect a primary that did nothing wrong.
        """
        target = self.now + ms
        while self.wakes:
            due = min(self.wakes.values())
            if due > target:
                break
            self.now = max(self.now, due)
            for node in sorted(k for k, t in self.wakes.items() if t <= self.now):
                del self.wakes[node]
                self._step_node(node, Tick(self.now))
        self.now = target

    # ------------------------------------------------------------------ faults

    def crash(self, i: int) -> None:
        self.crashed.add(i)
        self.wakes.pop(i, None)

    def recover(self, i: int) -> None:
        self.crashed.discard(i)
        self.replicas[i] = self.replica_class.restore(
            i, self.config, self.keyring.authenticator(i), self.apps[i], self.persisted[i]
        )
        self.wakes[i] = self.now

    # ------------------------------------------------------------------ queries

    def all_done(self) -> bool:
        return not any(c.busy for c in self.client_objs.values())

    def run_requests(self, count: int, max_ms: int = 120_000) -> None:
        """Each client submits ``count`` requests one after another (closed loop)."""
        remaining = {c: count for c in self.client_ids}

        def refill() -> bool:
            for c, client in self.client_objs.items():
                if not client.busy and remaining[c]:
                    remaining[c] -= 1
                    self.submit(c, f"op-{c}-{count - remaining[c]}".encode())
            return not any(remaining.values()) and self.all_done()

        limit = self.now + max_ms
        while not refill() and self.now <= limit:
            if not self.step_once():
                break
        self.settle()

    def settle(self) -> None:
        """Deliver what is in flight (late CHECKPOINTs, spare COMMITs), firing no new timers."""
        while self.queue:
            at, _, to, sender, data = heapq.heappop(self.queue)
            self.now = max(self.now, at)
            self._step_node(to, Deliver(self.now, sender, data))

    def assert_safe(self) -> None:
        """Every pair of replicas executed identical batches at every common sequence number."""
        logs = [app.batches for app in self.apps]
        for a in range(self.n):
            for b in range(a + 1, self.n):
                common = min(len(logs[a]), len(logs[b]))
                for k in range(common):
                    assert logs[a][k].requests == logs[b][k].requests, (a, b, k + 1)

    def decode(self, data: bytes) -> Any:
        return decode(data)
