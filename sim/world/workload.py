"""What the simulated clients submit and what the replicas execute: the workload.

The simulator knows PBFT, not chaincode. Everything application-specific sits
behind this small protocol, so the same simulator runs raw PBFT ordering
(``chaincode = "none"``, implemented here) and the Fabric-style ledger with
the ``kv`` or ``patchset`` contract (``sim.fabric.workload``).

The contract, in the order the simulator uses it:

``make_application(replica_id, disk) -> pbft.api.Application``
    Called once per replica at start and again at every recovery after a
    crash. ``disk`` is that replica's :class:`sim.world.disk.NodeDisk`: ``disk.path``
    is ``DIR/replica-<id>/`` when the run has a data directory (else ``None``),
    and ``disk.state`` is a dict that survives crashes, for state kept in
    memory. On recovery the application must come back exactly as durable
    state left it (``last_executed``/``head_digest`` as before the crash).

``next_operation(client_index, now_ms, live_replicas) -> bytes``
    The operation client ``client_index`` (0-based; its PBFT id is
    ``CLIENT_ID_BASE + client_index``) submits now. ``live_replicas`` are the
    replicas currently up (a Fabric client endorses on some of them).

``on_result(client_index, operation, result, now_ms)``
    The client accepted ``result`` (f+1 matching replies) for ``operation``.

``summary() -> dict``
    JSON-ready facts for the run's result (``RunResult.workload``).

Randomness: the workload gets its own ``random.Random`` (``rng``), derived
from the run's seed; it must use nothing else.

Which workload a chaincode name means is looked up in a registry that the
layers above fill (:func:`register_workload`): the simulator sits below the
Fabric wiring and must not import it. A name nobody registered yet is looked
up among the installed plugins, the entry points of group
:data:`PLUGIN_GROUP` (ledgersim declares ``kv`` and ``patchset`` there, so
``run_scenario`` on a ledger scenario needs no import first; another package
can ship its own chaincode workload the same way). ``sim.fabric.workload``
registers ``kv`` and ``patchset`` when it is imported; each factory is called as
``factory(scenario, crypto, rng)``, where ``crypto`` is the run's ``msp``
``NetworkCrypto`` (``None`` with modelled crypto; the factory makes one on
demand).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol

from pbft.api import Application
from sim.errors import InputError
from sim.scenario.model import Scenario
from sim.world.disk import NodeDisk


class Workload(Protocol):
    def make_application(self, replica_id: int, disk: NodeDisk) -> Application: ...

    def next_operation(
        self, client_index: int, now_ms: int, live_replicas: Sequence[int]
    ) -> bytes: ...

    def on_result(
        self, client_index: int, operation: bytes, result: bytes, now_ms: int
    ) -> None: ...

    def summary(self) -> dict[str, Any]: ...


class OrderingOnly:
    """``chaincode = "none"``: opaque operations, ordered by PBFT into an in-memory log.

    Operations are ``op:<client>:<k>:<8 random hex bytes>`` so every request is
    distinct and the log shows who asked what. The application is
    ``pbft.memapp.MemoryApplication``; its whole state is the executed-batch
    log, which the simulator treats as durable (it lives in ``disk.state``),
    so "reopening" after a crash hands back the same log.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._issued: dict[int, int] = {}
        self.results = 0

    def make_application(self, replica_id: int, disk: NodeDisk) -> Application:
        from pbft.memapp import MemoryApplication

        app: MemoryApplication | None = disk.state.get("memapp")
        if app is None:
            app = MemoryApplication()
            disk.state["memapp"] = app
        return app

    def next_operation(self, client_index: int, now_ms: int, live_replicas: Sequence[int]) -> bytes:
        k = self._issued.get(client_index, 0)
        self._issued[client_index] = k + 1
        return f"op:{client_index}:{k}:{self._rng.getrandbits(32):08x}".encode()

    def on_result(self, client_index: int, operation: bytes, result: bytes, now_ms: int) -> None:
        self.results += 1

    def summary(self) -> dict[str, Any]:
        return {
            "chaincode": "none",
            "operations": sum(self._issued.values()),
            "results": self.results,
        }


WorkloadFactory = Callable[[Scenario, Any, random.Random], Workload]
"""``(scenario, crypto, rng) -> Workload``; ``crypto`` is a ``NetworkCrypto`` or ``None``."""

_FACTORIES: dict[str, WorkloadFactory] = {"none": lambda _scenario, _crypto, rng: OrderingOnly(rng)}


def register_workload(chaincode: str, factory: WorkloadFactory) -> None:
    """Make ``workload.chaincode = <chaincode>`` runnable (the last registration wins)."""
    _FACTORIES[chaincode] = factory


PLUGIN_GROUP = "ledgersim.workloads"
"""Entry-point group naming, per chaincode, the module that registers its workload."""


def _load_plugin(chaincode: str) -> None:
    """Import the module an installed package declares for ``chaincode`` (it registers itself)."""
    for entry in entry_points(group=PLUGIN_GROUP, name=chaincode):
        entry.load()


def workload_for(scenario: Scenario, crypto: Any, rng: random.Random) -> Workload:
    """The workload ``scenario.workload.chaincode`` names, from the registry or a plugin."""
    kind = scenario.workload.chaincode
    if kind not in _FACTORIES:
        _load_plugin(kind)
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise InputError(
            f"{scenario.source}: workload.chaincode: no workload {kind!r} is installed "
            f"(known: {', '.join(sorted(_FACTORIES))})"
        )
    return factory(scenario, crypto, rng)
