"""A finished run as data, for property tests that check invariants of their own.

:func:`sim.world.simulation.run_scenario` returns the verdict (a
:class:`RunResult`). A researcher checking a claim the built-in invariants do
not cover needs what the verdict was computed from: :func:`simulate` runs the
scenario the same way (same seed, same run) and returns a :class:`Run` with

* ``history`` -- what the replicas executed, per sequence number, with the
  requests submitted and completed (:class:`sim.world.invariants.History`;
  the built-in checks in ``sim.world.invariants`` are functions over it);
* ``replicas`` -- each replica's final state: the ``pbft`` replica object
  (``None`` if it ended crashed) and its application (the ledger);
* ``messages`` -- every message any replica or client sent, decoded, in
  sending order.

An invariant is then a plain function ``check(run) -> list[str]`` returning
violations; docs/tutorial-property-test.md writes one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ledger.codec import CodecError, decode
from pbft.api import BROADCAST, ReplicaFactory, Send
from pbft.messages import Message
from sim.scenario.model import Scenario
from sim.trace.writer import TraceWriter
from sim.world.invariants import History
from sim.world.results import RunResult
from sim.world.simulation import Simulation, execute
from sim.world.state import ClientFactory


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One send: at ``t_ms`` (virtual), from ``src`` to ``dst`` (``None``: to every replica).

    ``message`` is the decoded message, or ``None`` for bytes that do not
    decode (a Byzantine replica's garbage). Counted once per send, however
    many replicas a broadcast reaches; whether each hop arrived is the
    network's business (see the trace for that).
    """

    t_ms: float
    src: int
    dst: int | None
    message: Message | None


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """Replica ``id`` as the run left it."""

    id: int
    replica: Any
    """The ``pbft`` replica object (``view``, ``stable_checkpoint``, ...); ``None`` if crashed."""
    application: Any
    """Its application: ``last_executed``, ``head_digest`` and, with a ledger, the blocks."""
    byzantine: bool

    @property
    def crashed(self) -> bool:
        return self.replica is None


@dataclass(slots=True)
class Run:
    """A finished run: the verdict and everything it was judged on."""

    scenario: Scenario
    result: RunResult
    history: History
    replicas: list[ReplicaState]
    messages: list[SentMessage] = field(default_factory=list)

    @property
    def correct(self) -> list[ReplicaState]:
        """The replicas that were never Byzantine (crashed ones included)."""
        return [r for r in self.replicas if not r.byzantine]


class _Recording(Simulation):
    """The simulation, also keeping every message sent (only :func:`simulate` pays for it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[SentMessage] = []
        super().__init__(*args, **kwargs)

    def _send_all(self, src: int, sends: Iterable[Send]) -> None:
        # One by one through ``_send``, which records each; the run is the same.
        for send in sends:
            self._send(src, send.to, send.message)

    def _send(self, src: int, to: int, payload: Message | bytes, delay: float = 0.0) -> None:
        if isinstance(payload, bytes):
            try:
                message: Message | None = decode(payload)
            except CodecError:
                message = None
        else:
            message = payload
        dst = None if to == BROADCAST else to
        self.sent.append(SentMessage(self.now + delay, src, dst, message))
        super()._send(src, to, payload, delay)


def simulate(
    scenario: Scenario,
    seed: int | None = None,
    *,
    replica_class: ReplicaFactory | None = None,
    client_class: ClientFactory | None = None,
    trace: str | Path | IO[str] | TraceWriter | None = None,
    liveness_bound_ms: float | None = None,
) -> Run:
    """Run ``scenario`` as :func:`run_scenario` does and return the whole :class:`Run`.

    The same scenario and seed give the same run, so ``simulate(s).result``
    equals ``run_scenario(s)`` (but for ``wall_s``).
    """
    sim, result = execute(
        _Recording,
        scenario,
        seed,
        trace=trace,
        replica_class=replica_class,
        client_class=client_class,
        liveness_bound_ms=liveness_bound_ms,
    )
    replicas = [
        ReplicaState(node.id, node.replica, node.app, node.id in sim.history.byzantine)
        for node in sim.nodes
    ]
    return Run(scenario, result, sim.history, replicas, sim.sent)
