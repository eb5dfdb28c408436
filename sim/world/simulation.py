"""The deterministic discrete-event simulator: one process, one seed, one run.

Replicas and clients are the real ``pbft`` state machines, driven only
through ``step()``; everything around them is modelled, one job per module:

* ``sim.world.state`` -- the world a run shares, built from the scenario and
  the seed (``sim.world.config``: protocol parameters, one RNG per subsystem);
* ``sim.world.events`` -- the event heap and its records;
* ``sim.world.loop`` -- the event loop;
* ``sim.world.send`` -- encoding and routing messages (``sim.world.network``);
* ``sim.world.hosting`` -- replicas: stepping, disks, crash and recovery, the
  Byzantine hook (``sim.world.byzantine``);
* ``sim.world.clients`` -- request arrivals and the clients (``sim.world.workload``);
* ``sim.world.fault_effects`` -- the fault timeline (``sim.world.faults``) taking effect;
* ``sim.world.assembly`` -- the result, with the invariants' verdicts.

Determinism: the heap orders events by (virtual time, insertion counter), so
ties never depend on object identity; each subsystem draws from its own
``random.Random`` derived from the seed with SHA-256 (:func:`derive_rng`), so
adding draws in one subsystem does not shift another's; iteration is over
lists and insertion-ordered dicts only. The same scenario and seed therefore
give byte-identical results (except ``wall_s``); ``tests/test_pinned_results.py``
holds a few runs to that.

Continuing a network (``start_ms``, ``resume``): a run may begin where an
earlier run over the same data directory ended. The virtual clock starts at
``start_ms`` (every scenario time -- faults, arrivals, the end -- counts from
there), and ``resume`` rebuilds each replica from the PBFT records the earlier
run left, exactly as crash recovery does, so its view, stable checkpoint and
clients' last timestamps carry over. A replica is thus indistinguishable from
one that kept running with a quiet network in between; the agreed block times
keep growing as long as ``start_ms`` is past the earlier run's end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TypeVar

from pbft.api import ReplicaFactory
from sim.collector import fewer_collections
from sim.scenario.model import Scenario
from sim.trace.writer import TraceWriter
from sim.world.assembly import ResultAssembly
from sim.world.clients import ClientDriving
from sim.world.config import config_for, derive_rng
from sim.world.fault_effects import FaultEffects
from sim.world.hosting import Hosting
from sim.world.loop import EventLoop
from sim.world.results import RunResult
from sim.world.send import Sending
from sim.world.state import ClientFactory, Progress

__all__ = ["Progress", "Simulation", "config_for", "derive_rng", "run_scenario"]


class Simulation(EventLoop, Sending, Hosting, ClientDriving, FaultEffects, ResultAssembly):
    """One run in progress. :func:`run_scenario` is the way in; tests may poke at this.

    Built as :class:`sim.world.state.WorldState` (same arguments); ``run()``
    runs it to the end, ``result(wall_s)`` judges it.
    """


def run_scenario(
    scenario: Scenario,
    seed: int | None = None,
    *,
    trace: str | Path | IO[str] | TraceWriter | None = None,
    data_dir: str | Path | None = None,
    replica_class: ReplicaFactory | None = None,
    progress: Progress | None = None,
    liveness_bound_ms: float | None = None,
    client_class: ClientFactory | None = None,
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
    ``sim.world.runs.simulate`` runs the same way and also hands back the
    history, the replicas and the messages, for checks of one's own.
    """
    _, result = execute(
        Simulation,
        scenario,
        seed,
        trace=trace,
        data_dir=data_dir,
        replica_class=replica_class,
        progress=progress,
        liveness_bound_ms=liveness_bound_ms,
        client_class=client_class,
        start_ms=start_ms,
        resume=resume,
    )
    return result


S = TypeVar("S", bound=Simulation)

YOUNG_COLLECTION_THRESHOLD = 20_000
"""Allocations between two collections of the youngest generation during a run (default 700)."""


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Keep the cyclic garbage collector from rescanning the world while a run churns.

    A run allocates millions of short-lived objects (events, outputs, messages),
    every few hundred of which trigger a collection; the oldest generation's
    collections walk everything the process holds, the world built before the
    run included: about 6% of a run's instructions at n = 16 (cachegrind). Objects
    that exist before the run are frozen out of collections, and the young
    generation is collected less often; both are put back afterwards. Garbage
    is still collected, only less often, and results cannot change: nothing
    in a run depends on when unreachable cycles are freed.
    """
    with fewer_collections(YOUNG_COLLECTION_THRESHOLD):
        yield


def execute(
    cls: type[S],
    scenario: Scenario,
    seed: int | None = None,
    *,
    trace: str | Path | IO[str] | TraceWriter | None = None,
    data_dir: str | Path | None = None,
    replica_class: ReplicaFactory | None = None,
    progress: Progress | None = None,
    liveness_bound_ms: float | None = None,
    client_class: ClientFactory | None = None,
    start_ms: int = 0,
    resume: bool = False,
) -> tuple[S, RunResult]:
    """:func:`run_scenario` with the simulation class chosen, returning the finished simulation."""
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
        sim = cls(
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
        with few_collections():
            sim.run()
        return sim, sim.result(time.perf_counter() - started)
    finally:
        if owned and writer is not None:
            writer.close()
