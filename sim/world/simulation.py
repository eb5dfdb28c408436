"""The deterministic discrete-event simulator: one process, one seed, one run.

Replicas and clients are the real ``pbft`` state machines, driven only
through ``step()``; everything around them is modelled here: a virtual clock,
an event heap, the network (``sim.world.network``), the fault timeline
(``sim.world.faults``), Byzantine rewriting (``sim.world.byzantine``), durable disks
(``sim.world.disk``) and the workload (``sim.world.workload``).

Determinism: the heap orders events by (virtual time, insertion counter), so
ties never depend on object identity; each subsystem draws from its own
``random.Random`` derived from the seed with SHA-256 (:func:`derive_rng`), so
adding draws in one subsystem does not shift another's; iteration is over
lists and insertion-ordered dicts only. The same scenario and seed therefore
give byte-identical results (except ``wall_s``).

Wire fidelity: every message is encoded with the canonical codec when sent
(once per send, however many receivers) and handed to the receiver as bytes,
which it decodes itself, so what is tested is what goes on the wire.

Host duties (``pbft.api``): ``Output.persist`` goes to the replica's disk
before its sends are released; ``wake_at_ms`` becomes a timer event. A crash
drops the replica object, its timers and everything delivered to it while
down; recovery rebuilds it with ``Replica.restore`` from the disk's records
and the application reopened by the workload from durable state.

Continuing a network (``start_ms``, ``resume``): a run may begin where an
earlier run over the same data directory ended. The virtual clock starts at
``start_ms`` (every scenario time -- faults, arrivals, the end -- counts from
there), and ``resume`` rebuilds each replica from the PBFT records the earlier
run left, exactly as crash recovery does, so its view, stable checkpoint and
clients' last timestamps carry over. A replica is thus indistinguishable from
one that kept running with a quiet network in between; the agreed block times
keep growing as long as ``start_ms`` is past the earlier run's end. Batches
ordered before the run are judged by agreement only: validity (every request
was submitted) was judged in the run that ordered them.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ledger.codec import CodecError, decode, encode
from pbft.api import BROADCAST, CLIENT_ID_BASE, Deliver, Output, PBFTConfig, Tick
from pbft.messages import Request
from pbft.replica_state import ReplicaState
from sim.scenario.model import Scenario
from sim.trace.writer import TraceWriter, view_state
from sim.world import invariants
from sim.world.byzantine import Behaviour, Context, Emit, make_behaviour
from sim.world.disk import NodeDisk
from sim.world.faults import FaultAction, check_faults, fault_model, timeline
from sim.world.invariants import History
from sim.world.network import LinkFault, Network
from sim.world.results import ReplicaReport, RunResult, check_expectations
from sim.world.workload import Workload, workload_for

Progress = Callable[[float, float], Any]

_DELIVER, _TICK, _ARRIVAL, _FAULT = 0, 1, 2, 3


def derive_rng(seed: int, label: str) -> random.Random:
    """An independent RNG per subsystem: SHA-256 of (seed, label), never ``hash()``."""
    digest = hashlib.sha256(f"ledgersim/{seed}/{label}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def config_for(scenario: Scenario) -> PBFTConfig:
    net = scenario.network
    return PBFTConfig(
        n=net.replicas,
        batch_size=net.batch_size,
        batch_timeout_ms=net.batch_timeout_ms,
        checkpoint_interval=net.checkpoint_interval,
        watermark_window=net.watermark_window,
        view_change_timeout_ms=net.view_change_timeout_ms,
    )


class _Node:
    """A replica slot: survives crashes (disk, application), unlike the replica object."""

    __slots__ = (
        "app",
        "auth",
        "behaviour",
        "disk",
        "id",
        "life",
        "past_stats",
        "replica",
        "stable",
        "ticks",
        "view",
    )

    def __init__(self, replica_id: int, disk: NodeDisk, auth: Any) -> None:
        self.id = replica_id
        self.disk = disk
        self.auth = auth
        self.app: Any = None
        self.replica: Any = None
        self.behaviour: Behaviour | None = None
        self.life = 0
        self.view = 0
        self.stable = 0
        self.ticks: set[float] = set()
        self.past_stats: dict[str, int] = {}


class _ClientSlot:
    __slots__ = ("client", "id", "index", "pending", "queue", "ticks")

    def __init__(self, index: int, client: Any) -> None:
        self.index = index
        self.id = CLIENT_ID_BASE + index
        self.client = client
        self.queue: deque[float] = deque()
        self.pending: bytes | None = None
        self.ticks: set[float] = set()


class Simulation:
    """One run in progress. :func:`run_scenario` is the way in; tests may poke at this."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        *,
        trace: TraceWriter | None,
        data_dir: Path | None,
        replica_class: type,
        client_class: type,
        progress: Progress | None,
        liveness_bound_ms: float | None = None,
        start_ms: int = 0,
        resume: bool = False,
    ) -> None:
        from sim.world.auth import authenticators

        if start_ms < 0:
            raise ValueError(f"start_ms must be >= 0, got {start_ms}")
        if resume and data_dir is None:
            raise ValueError("resume needs the data_dir an earlier run left")
        check_faults(scenario)
        self.scenario = scenario
        self.seed = seed
        self.config = config_for(scenario)
        self.n = scenario.network.replicas
        self.f = self.config.f
        self.replica_class = replica_class
        self.trace = trace
        self.progress = progress
        self.start_ms = float(start_ms)
        self.end_ms = self.start_ms + scenario.duration_ms
        self.now = self.start_ms
        self._heap: list[tuple[Any, ...]] = []
        self._counter = 0
        self._msg_id = 0
        self._in_flight = 0
        self._faults_pending = 0
        self.events = 0

        self.net_rng = derive_rng(seed, "network")
        self.workload_rng = derive_rng(seed, "workload")
        self.byz_rng = derive_rng(seed, "byzantine")
        self.network = Network(scenario.network.latency, self.net_rng, self.n)

        wl = scenario.workload
        auths, crypto = authenticators(scenario, wl.clients)
        self.workload: Workload = workload_for(scenario, crypto, derive_rng(seed, "operations"))
        self.fault_model = fault_model(scenario)
        byzantine = frozenset(
            f.replica for f in scenario.faults if f.kind == "byzantine" and f.replica is not None
        )
        self.history = History(n=self.n, byzantine=byzantine)
        self.liveness_bound_ms = liveness_bound_ms

        self.nodes = [
            _Node(i, NodeDisk(i, data_dir, resume=resume), auths[i]) for i in range(self.n)
        ]
        for node in self.nodes:
            node.app = self.workload.make_application(node.id, node.disk)
            if node.disk.records:
                node.replica = replica_class.restore(  # type: ignore[attr-defined]
                    node.id, self.config, node.auth, node.app, list(node.disk.records)
                )
            else:
                node.replica = replica_class(node.id, self.config, node.auth, node.app)
            self.history.new_incarnation(node.id)
            node.view = node.replica.view
            self.history.record_view(node.id, node.view)
        self.start_view = max(
            (node.view for node in self.nodes if node.id not in byzantine), default=0
        )
        self.ordered_before = max(node.app.last_executed for node in self.nodes)
        """Highest sequence number some replica had executed before this run began."""
        self.clients = [
            _ClientSlot(k, client_class(CLIENT_ID_BASE + k, self.config, auths[CLIENT_ID_BASE + k]))
            for k in range(wl.clients)
        ]
        self.messages: defaultdict[str, int] = defaultdict(int)
        self.bytes: defaultdict[str, int] = defaultdict(int)
        self.net_drops: defaultdict[str, int] = defaultdict(int)
        self.drops_to: dict[int, defaultdict[str, int]] = {
            i: defaultdict(int) for i in range(self.n)
        }
        self.latencies: list[float] = []
        self.submitted = 0
        self.committed = 0
        self.arrivals = 0
        self.first_submit: float | None = None
        self.last_commit: float | None = None
        self._mean_gap_ms = 1000.0 / wl.rate_per_s if wl.rate_per_s > 0 else 0.0
        self._total_requests = wl.requests if wl.clients > 0 else 0

    # ------------------------------------------------------------------ heap

    def _push(self, t: float, kind: int, a: Any = None, b: Any = None, c: Any = None) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (t, self._counter, kind, a, b, c))

    def _tick_at(self, owner: _Node | _ClientSlot, wake: int, life: int) -> None:
        t = float(wake)
        if t < self.now:
            t = self.now
        if t in owner.ticks:
            return
        owner.ticks.add(t)
        self._push(t, _TICK, owner, life)

    # ------------------------------------------------------------------ sending

    def _send(self, src: int, to: int, payload: Any, delay: float = 0.0) -> None:
        if type(payload) is bytes:
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
        if to == BROADCAST:
            targets: Any = range(self.n)
        else:
            targets = (to,)
        now = self.now + delay
        trace = self.trace
        network = self.network
        route = network.route
        # Without faults, loss, duplication or FIFO a hop is just a latency draw
        # (the same draw, in the same order, that ``route`` would make).
        latency = network.latency if network.plain else None
        heap = self._heap
        push = heapq.heappush
        n = self.n
        clients = len(self.clients)
        # Counters live in locals for the loop (nothing it calls reads them) and
        # are written back once; per-kind totals are added once per send.
        msg_id = self._msg_id
        counter = self._counter
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
                counter += 1
                push(heap, (now + latency(), counter, _DELIVER, dst, src, (data, msg_id, kind)))
                continue
            times, reason = route(src, dst, now)
            if reason is not None:
                self._dropped(msg_id, src, dst, kind, reason)
                continue
            for t in times:
                in_flight += 1
                counter += 1
                push(heap, (t, counter, _DELIVER, dst, src, (data, msg_id, kind)))
        self._msg_id = msg_id
        self._counter = counter
        self._in_flight = in_flight
        if hops:
            self.messages[kind] += hops
            self.bytes[kind] += size * hops

    def _dropped(self, msg_id: int, src: int, dst: int, kind: str, reason: str) -> None:
        self.net_drops[reason] += 1
        if 0 <= dst < self.n:
            self.drops_to[dst]["net." + reason] += 1
        if self.trace is not None:
            self.trace.drop(self.now, msg_id, src, dst, kind, reason)

    # ------------------------------------------------------------------ replicas

    def _step_replica(self, node: _Node, event: Any) -> None:
        behaviour = node.behaviour
        if behaviour is not None:
            event = behaviour.incoming(event)
            if event is None:
                return
        replica = node.replica
        trace = self.trace
        before = view_state(replica) if trace is not None else None
        out: Output = replica.step(event)
        if out.persist or out.compact:
            node.disk.append(out.persist, out.compact)
        if out.executed:
            self._executed(node, out)
        view = replica.view
        if view != node.view:
            self.history.record_view(node.id, view)
            if view > node.view and self.trace is not None:
                self.trace.view_change(self.now, node.id, view)
            node.view = view
        if trace is not None and behaviour is None:
            trace.view_installed(self.now, node.id, before, view_state(replica))
        if out.persist:
            self._note_stable(node)
        if behaviour is None:
            src = node.id
            for send in out.send:
                self._send(src, send.to, send.message)
        elif out.send or type(behaviour).outgoing is not Behaviour.outgoing:
            emits: list[Emit] = behaviour.outgoing(int(self.now), out.send)
            for emit in emits:
                self._send(node.id, emit.to, emit.payload, emit.delay_ms)
        if out.wake_at_ms is not None:
            self._tick_at(node, out.wake_at_ms, node.life)

    def _executed(self, node: _Node, out: Output) -> None:
        history = self.history
        last = len(out.executed) - 1
        head = node.app.head_digest
        for i, batch in enumerate(out.executed):
            digest = batch.digest
            # Only requests the replica executed: a stale or repeated one in a committed
            # batch stays in the block but is not run (pbft.api.Application).
            fresh = out.fresh[i] if i < len(out.fresh) else (True,) * len(batch.requests)
            if batch.seq <= self.ordered_before:  # validity was judged when it was ordered
                fresh = (False,) * len(batch.requests)
            history.record_execution(
                node.id,
                batch.seq,
                digest,
                head if i == last else None,
                (
                    (r.client, r.timestamp, r.operation)
                    for r, new in zip(batch.requests, fresh, strict=True)
                    if new
                ),
            )
            if self.trace is not None:
                self.trace.commit(
                    self.now, node.id, batch.seq, batch.view, digest, len(batch.requests)
                )

    def _note_stable(self, node: _Node) -> None:
        stable = getattr(node.replica, "stable_checkpoint", None)
        if stable is None:
            return
        seq, digest = (stable, None) if isinstance(stable, int) else (stable[0], stable[1])
        if seq != node.stable:
            node.stable = seq
            self.history.record_stable(node.id, seq, digest)

    # ------------------------------------------------------------------ clients

    def _live(self) -> list[int]:
        return [node.id for node in self.nodes if node.replica is not None]

    def _try_submit(self, slot: _ClientSlot) -> None:
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

    def _client_output(self, slot: _ClientSlot, out: Any) -> None:
        for send in out.send:
            self._send(slot.id, send.to, send.message)
        for done in out.completed:
            self.committed += 1
            self.last_commit = self.now
            self.latencies.append(float(done.latency_ms))
            self.history.completed[(slot.id, done.timestamp)] = self.now
            self.workload.on_result(slot.index, done.operation, done.result, int(self.now))
            slot.pending = None
        if out.wake_at_ms is not None:
            self._tick_at(slot, out.wake_at_ms, 0)
        if slot.pending is None and slot.queue:
            self._try_submit(slot)

    def _arrival(self) -> None:
        slot = self.clients[self.arrivals % len(self.clients)]
        self.arrivals += 1
        slot.queue.append(self.now)
        if self.arrivals < self._total_requests:
            self._push(self.now + self.workload_rng.expovariate(1.0 / self._mean_gap_ms), _ARRIVAL)
        self._try_submit(slot)

    def _outstanding(self) -> bool:
        if self.arrivals < self._total_requests:
            return True
        return any(s.pending is not None or s.queue for s in self.clients)

    # ------------------------------------------------------------------ faults

    def _fault(self, action: FaultAction) -> None:
        self._faults_pending -= 1
        fault = action.fault
        kind = action.kind
        replica = fault.replica
        detail = kind
        if kind == "byzantine" and replica is not None:
            node = self.nodes[replica]
            ctx = Context(
                replica_id=replica,
                config=self.config,
                auth=node.auth,
                rng=derive_rng(self.seed, f"byzantine/{replica}/{action.index}"),
                params=dict(fault.params),
                view=lambda node=node: node.view,  # type: ignore[misc]
            )
            node.behaviour = make_behaviour(str(fault.behavior), ctx)
            detail = f"byzantine {fault.behavior}"
        elif kind == "byzantine-end" and replica is not None:
            self.nodes[replica].behaviour = None
        elif kind == "crash" and replica is not None:
            self._crash(self.nodes[replica])
        elif kind == "recover" and replica is not None:
            self._recover(self.nodes[replica])
        elif kind == "partition-start":
            self.network.start_partition(action.index, fault.groups)
            detail = f"partition {[list(g) for g in fault.groups]}"
        elif kind == "partition-end":
            self.network.end_partition(action.index)
        elif kind == "link-start" and fault.src is not None and fault.dst is not None:
            self.network.start_link_fault(
                action.index,
                LinkFault(fault.src, fault.dst, fault.drop_rate, fault.extra_delay_ms),
            )
            detail = (
                f"link {fault.src}->{fault.dst} drop {fault.drop_rate} +{fault.extra_delay_ms}ms"
            )
        elif kind == "link-end" and fault.src is not None and fault.dst is not None:
            self.network.end_link_fault(action.index, fault.src, fault.dst)
        if self.trace is not None:
            self.trace.fault(self.now, kind, replica, detail)

    def _crash(self, node: _Node) -> None:
        if node.replica is None:
            return
        for key, value in getattr(node.replica, "stats", {}).items():
            node.past_stats[key] = node.past_stats.get(key, 0) + value
        node.replica = None
        node.life += 1
        node.ticks.clear()

    def _recover(self, node: _Node) -> None:
        if node.replica is not None:
            return
        node.app = self.workload.make_application(node.id, node.disk)
        node.replica = self.replica_class.restore(  # type: ignore[attr-defined]
            node.id, self.config, node.auth, node.app, list(node.disk.records)
        )
        self.history.new_incarnation(node.id)
        node.view = node.replica.view
        node.stable = 0
        self.history.record_view(node.id, node.view)
        self._step_replica(node, Tick(int(self.now)))

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        start = self.start_ms
        for action in timeline(self.scenario):
            if start + action.at_ms <= self.end_ms:
                self._faults_pending += 1
                self._push(start + action.at_ms, _FAULT, action)
        if self._total_requests > 0 and self._mean_gap_ms > 0:
            self._push(start + self.workload_rng.expovariate(1.0 / self._mean_gap_ms), _ARRIVAL)
        elif self._total_requests > 0:
            for _ in range(self._total_requests):
                self._push(start, _ARRIVAL)
        for node in self.nodes:
            self._step_replica(node, Tick(int(start)))

        heap = self._heap
        pop = heapq.heappop
        nodes = self.nodes
        clients = self.clients
        n = self.n
        end = self.end_ms
        trace = self.trace
        progress = self.progress
        events = 0
        while heap:
            if heap[0][0] > end:
                self.now = end
                break
            t, _, kind, a, b, c = pop(heap)
            self.now = t
            events += 1
            if kind == _DELIVER:
                self._in_flight -= 1
                data, msg_id, name = c
                if a < n:
                    node = nodes[a]
                    if node.replica is None:
                        self._dropped(msg_id, b, a, name, "crashed")
                        continue
                    if trace is not None:
                        trace.deliver(t, msg_id, b, a, name)
                    self._step_replica(node, Deliver(int(t), b, data))
                else:
                    slot = clients[a - CLIENT_ID_BASE]
                    if trace is not None:
                        trace.deliver(t, msg_id, b, a, name)
                    self._client_output(slot, slot.client.step(Deliver(int(t), b, data)))
            elif kind == _TICK:
                a.ticks.discard(t)
                if isinstance(a, _Node):
                    if a.replica is not None and a.life == b:
                        self._step_replica(a, Tick(int(t)))
                else:
                    self._client_output(a, a.client.step(Tick(int(t))))
            elif kind == _ARRIVAL:
                self._arrival()
            else:
                self._fault(a)
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

    def _sample_logs(self) -> None:
        for node in self.nodes:
            replica = node.replica
            if replica is None:
                continue
            measure = getattr(type(replica), "memory_footprint", None)
            if measure is ReplicaState.memory_footprint:
                # The stock footprint sums every structure; only its slot count is sampled.
                slots = replica.log_slots()
            else:
                footprint = getattr(replica, "memory_footprint", None)
                if footprint is None:
                    continue
                slots = footprint().get("slots", 0)
            self.history.record_log_size(node.id, slots)

    # ------------------------------------------------------------------ result

    def result(self, wall_s: float) -> RunResult:
        history = self.history
        fm = self.fault_model
        violations = invariants.safety(history, self.config.watermark_window)
        gst = fm["gst_ms"]
        live_checked = bool(fm["within"]) and gst is not None and not fm["down_at_end"]
        liveness: list[str] = []
        if live_checked:
            latency = self.scenario.network.latency
            bound = self.liveness_bound_ms
            if bound is None:
                bound = invariants.liveness_bound_ms(
                    self.config.view_change_timeout_ms, self.f, float(latency.max_ms)
                )
            liveness = invariants.liveness(history, self.start_ms + gst, bound, self.now)
        replicas: list[ReplicaReport] = []
        for node in self.nodes:
            stats = dict(node.past_stats)
            if node.replica is not None:
                for key, value in getattr(node.replica, "stats", {}).items():
                    stats[key] = stats.get(key, 0) + value
            dropped = {k[5:]: v for k, v in stats.items() if k.startswith("drop.") and v}
            dropped.update(self.drops_to[node.id])
            replicas.append(
                ReplicaReport(
                    id=node.id,
                    view=node.view,
                    height=node.app.last_executed + 1,
                    head_hash=node.app.head_digest,
                    byzantine=node.id in history.byzantine,
                    crashed=node.replica is None,
                    dropped=dropped,
                    stable_checkpoint=node.stable,
                )
            )
        correct_views = [node.view for node in self.nodes if node.id not in history.byzantine]
        commits = {
            r: [(s, d.hex()) for s, d in sorted(seqs.items())]
            for r, seqs in sorted(history.executed.items())
        }
        result = RunResult(
            scenario=self.scenario.name,
            seed=self.seed,
            n=self.n,
            f=self.f,
            safety_violations=violations,
            liveness_checked=live_checked,
            liveness_violations=liveness,
            requested=self.scenario.workload.requests,
            submitted=self.submitted,
            committed=self.committed,
            view_changes=max(correct_views, default=0) - self.start_view,
            messages=dict(self.messages),
            bytes=dict(self.bytes),
            latencies_ms=self.latencies,
            end_ms=self.now,
            first_submit_ms=self.first_submit,
            last_commit_ms=self.last_commit,
            wall_s=wall_s,
            replicas=replicas,
            fault_model=fm,
            network_drops=dict(self.net_drops),
            workload=self.workload.summary(),
            commits=commits,
            events=self.events,
        )
        result.expectations = check_expectations(self.scenario.expect, result)
        return result


def run_scenario(
    scenario: Scenario,
    seed: int | None = None,
    *,
    trace: str | Path | IO[str] | TraceWriter | None = None,
    data_dir: str | Path | None = None,
    replica_class: type | None = None,
    progress: Progress | None = None,
    liveness_bound_ms: float | None = None,
    client_class: type | None = None,
    start_ms: int = 0,
    resume: bool = False,
) -> RunResult:
    """Run ``scenario`` with ``seed`` (default: the scenario's) and judge the outcome.

    ``trace`` is a path, a text stream or a :class:`TraceWriter`;
    ``replica_class`` replaces ``pbft.replica.Replica`` (mutants, experiments)
    and must offer the same constructor and ``restore`` (``client_class`` likewise
    replaces ``pbft.client.Client``); ``progress`` is called
    as ``progress(virtual_ms_elapsed, duration_ms)`` now and then. ``start_ms`` is where
    the virtual clock starts; ``resume`` continues the replicas an earlier run
    left in ``data_dir`` (see the module's docstring): give it a ``start_ms``
    past that run's end, or the primary's agreed times would go backwards.
    """
    if replica_class is None:
        from pbft.replica import Replica

        replica_class = Replica
    if client_class is None:
        from pbft.client import Client

        client_class = Client
    run_seed = scenario.seed if seed is None else seed
    writer = trace if trace is None or isinstance(trace, TraceWriter) else TraceWriter(trace)
    owned = writer is not trace
    started = time.perf_counter()
    try:
        sim = Simulation(
            scenario,
            run_seed,
            trace=writer,
            data_dir=Path(data_dir) if data_dir is not None else None,
            replica_class=replica_class,
            client_class=client_class,
            progress=progress,
            liveness_bound_ms=liveness_bound_ms,
            start_ms=start_ms,
            resume=resume,
        )
        if writer is not None:
            writer.meta(scenario.name, run_seed, sim.n, sim.f, [c.id for c in sim.clients])
        sim.run()
        return sim.result(time.perf_counter() - started)
    finally:
        if owned and writer is not None:
            writer.close()
