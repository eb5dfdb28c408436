"""A run's world: what every part of the simulator shares, built from a scenario and a seed.

:class:`WorldState` holds the virtual clock, the event queue, the network,
the workload, the replica and client slots, the history the invariants judge
and the counters the result reports. The parts of the simulator are mixins
over it (``sim.world.simulation`` puts them together), the way ``pbft.replica``
is put together over ``pbft.replica_state``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbft.api import CLIENT_ID_BASE, Authenticator, PBFTConfig, ReplicaFactory
from sim.scenario.model import Scenario
from sim.trace.writer import TraceWriter
from sim.world.config import config_for, derive_rng
from sim.world.disk import NodeDisk
from sim.world.events import EventQueue, Timer
from sim.world.faults import check_faults, fault_model
from sim.world.invariants import History
from sim.world.network import Network
from sim.world.slots import ClientSlot, ReplicaSlot
from sim.world.workload import Workload, workload_for

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pbft.api import Event as ReplicaEvent
    from pbft.api import Send
    from pbft.messages import Message
    from sim.world.faults import FaultAction

Progress = Callable[[float, float], Any]
"""Called as ``progress(virtual_ms_elapsed, duration_ms)`` now and then."""

ClientFactory = Callable[[int, PBFTConfig, Authenticator], Any]
"""A client class: ``pbft.client.Client`` or a test's stand-in."""


class WorldState:
    """The shared fields; see the module docstring and ``sim.world.simulation``.

    Held in slots: the world has more attributes than CPython 3.11 keeps inline
    (30), so without slots every ``self.x`` of the loop, the host and the
    sender (several per delivered message) would be a hashed lookup in the
    instance dict. The mixins and ``Simulation`` declare no slots of their own,
    so a name missing here (or a test subclass's own) still works, only slower;
    ``tests/test_slots.py`` checks that none is missing.
    """

    __slots__ = (
        "_batches",
        "_down",
        "_faults_pending",
        "_in_flight",
        "_live_ids",
        "_mean_gap_ms",
        "_msg_id",
        "_others",
        "_total_requests",
        "arrivals",
        "bytes",
        "byz_rng",
        "clients",
        "committed",
        "config",
        "drops_to",
        "end_ms",
        "events",
        "f",
        "fault_model",
        "first_submit",
        "history",
        "last_commit",
        "latencies",
        "liveness_bound_ms",
        "messages",
        "n",
        "net_drops",
        "net_rng",
        "network",
        "nodes",
        "now",
        "ordered_before",
        "progress",
        "queue",
        "replica_class",
        "scenario",
        "seed",
        "start_ms",
        "start_view",
        "submitted",
        "trace",
        "workload",
        "workload_rng",
    )

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        *,
        trace: TraceWriter | None,
        data_dir: Path | None,
        replica_class: ReplicaFactory,
        client_class: ClientFactory,
        progress: Progress | None,
        liveness_bound_ms: float | None = None,
        start_ms: int = 0,
        resume: bool = False,
        identities: Any = None,
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
        self.queue = EventQueue()
        self._msg_id = 0
        self._in_flight = 0
        self._others: dict[int, list[int]] = {}
        """Per sender, the replicas its broadcasts reach (shared by its ``Burst`` events)."""
        self._faults_pending = 0
        self._live_ids: list[int] | None = None
        """Replicas up (``sim.world.clients``); ``None`` when a crash or start made it stale."""
        self._down = 0
        """Replicas crashed now: while none is, every hop of a burst part is delivered."""
        self._batches: dict[int, tuple[Any, ...]] = {}
        """``sim.world.hosting``'s facts about recently executed batches, by requests tuple."""
        self.events = 0

        self.net_rng = derive_rng(seed, "network")
        self.workload_rng = derive_rng(seed, "workload")
        self.byz_rng = derive_rng(seed, "byzantine")
        self.network = Network(scenario.network.latency, self.net_rng, self.n)

        wl = scenario.workload
        auths, crypto = authenticators(scenario, wl.clients)
        # A caller holding the network's identities from disk (its CRLs included)
        # gives them to the peers' endorsers and validators; the keys are the same.
        crypto = crypto if identities is None else identities
        self.workload: Workload = workload_for(scenario, crypto, derive_rng(seed, "operations"))
        self.fault_model = fault_model(scenario)
        byzantine = frozenset(
            f.replica for f in scenario.faults if f.kind == "byzantine" and f.replica is not None
        )
        self.history = History(n=self.n, byzantine=byzantine)
        self.liveness_bound_ms = liveness_bound_ms

        self.nodes = [
            ReplicaSlot(i, NodeDisk(i, data_dir, resume=resume), auths[i]) for i in range(self.n)
        ]
        for node in self.nodes:
            self._start_replica(node, restore=bool(node.disk.records))
        self.start_view = max(
            (node.view for node in self.nodes if node.id not in byzantine), default=0
        )
        self.ordered_before = max(node.app.last_executed for node in self.nodes)
        """Highest sequence number some replica had executed before this run began."""
        self.clients = [
            ClientSlot(k, client_class(CLIENT_ID_BASE + k, self.config, auths[CLIENT_ID_BASE + k]))
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

    def _tick_at(self, owner: ReplicaSlot | ClientSlot, wake: int, life: int) -> None:
        """Queue a timer event for ``owner`` at ``wake`` (never in the past, one per instant)."""
        t = float(wake)
        if t < self.now:
            t = self.now
        if t in owner.ticks:
            return
        owner.ticks.add(t)
        self.queue.push(t, Timer(owner, life))

    if TYPE_CHECKING:
        # What one part calls in another (each defined once, in the module named).

        # sim.world.send.Sending
        def _send_all(self, src: int, sends: Iterable[Send]) -> None: ...
        def _send(
            self, src: int, to: int, payload: Message | bytes, delay: float = 0.0
        ) -> None: ...
        def _dropped(self, msg_id: int, src: int, dst: int, kind: str, reason: str) -> None: ...

        # sim.world.hosting.Hosting
        def _start_replica(self, node: ReplicaSlot, *, restore: bool) -> None: ...
        def _step_replica(self, node: ReplicaSlot, event: ReplicaEvent) -> None: ...
        def _step_replicas(self, ids: Iterable[int], event: ReplicaEvent) -> None: ...
        def _crash(self, node: ReplicaSlot) -> None: ...
        def _recover(self, node: ReplicaSlot) -> None: ...
        def _sample_logs(self) -> None: ...

        # sim.world.clients.ClientDriving
        def _client_output(self, slot: ClientSlot, out: Any) -> None: ...
        def _arrival(self) -> None: ...
        def _outstanding(self) -> bool: ...
        def _schedule_arrival(self, after: float) -> None: ...

        # sim.world.fault_effects.FaultEffects
        def _fault(self, action: FaultAction) -> None: ...
