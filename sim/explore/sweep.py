"""Many seeds of one scenario, in parallel, and what they add up to.

A sweep is how a researcher finds the one seed in ten thousand that breaks
something, so the output that matters is the failing seed and the exact
command that replays it. Workers are started with the ``spawn`` method (the
only one that behaves the same on every platform and never inherits a forked
simulator's state), so everything sent to them is picklable: the scenario
dataclass, a run of seeds, and the replica class as a ``module:Class`` string.

The runner (one seed -> :class:`SeedOutcome`) is injectable, which is how the
sweep machinery is tested without the simulator and how a mutant replica is
swept to show that a failure is reported with a reproducing command.

Ctrl-C stops a sweep cleanly: the workers ignore SIGINT (the terminal sends
it to the whole process group, and a worker's traceback would say nothing
useful), the parent stops them and returns the seeds finished so far, marked
``interrupted``, so the caller can still print what was learnt.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import re
import shlex
import signal
import statistics
import sys
import threading
import time
import types
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from pbft.api import ReplicaFactory
from sim.errors import InputError
from sim.progress import ProgressBar
from sim.scenario.model import Scenario
from sim.scenario.reader import show


@dataclass(frozen=True, slots=True)
class SeedOutcome:
    """What one seed's run came to; ``error`` is set when the run itself crashed."""

    seed: int
    ok: bool
    failures: tuple[str, ...] = ()
    view_changes: int = 0
    submitted: int = 0
    committed: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    wall_s: float = 0.0
    error: str | None = None


Runner = Callable[[Scenario, int, "str | None"], SeedOutcome]
"""``runner(scenario, seed, replica_spec) -> SeedOutcome``; must be a module-level function."""


# ------------------------------------------------------------------ arguments


_RANGE = re.compile(r"^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$")


def parse_seeds(text: str) -> range:
    """``A..B`` (both ends included) or a single seed ``N``."""
    match = _RANGE.match(text)
    if not match:
        raise InputError(f"--seeds: expected A..B with integers A <= B (e.g. 1..100), got {text!r}")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise InputError(f"--seeds: expected A..B with A <= B, got {text!r}")
    return range(first, last + 1)


def parse_shard(text: str) -> tuple[int, int]:
    """``i/k``: this machine takes seeds number i, i+k, i+2k, ... (0-based, i < k)."""
    match = re.match(r"^\s*(\d+)\s*/\s*(\d+)\s*$", text)
    if not match or int(match.group(2)) < 1 or int(match.group(1)) >= int(match.group(2)):
        raise InputError(f"--shard: expected i/k with 0 <= i < k (e.g. 0/4), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def shard_seeds(seeds: Sequence[int], shard: tuple[int, int] | None) -> list[int]:
    if shard is None:
        return list(seeds)
    index, count = shard
    return list(seeds[index::count])


def load_replica_class(spec: str) -> ReplicaFactory:
    """``package.module:ClassName`` -> the class (a mutant replica, for testing the checks).

    A class without a replica's ``restore`` and ``step`` is refused here; one
    that has them but breaks when built fails in the run, which the sweep
    reports as that seed's crash.
    """
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise InputError(f"--replica: expected MODULE:CLASS, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"--replica: cannot import {module_name!r}: {exc}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise InputError(f"--replica: {module_name!r} has no class {class_name!r}")
    missing = [name for name in ("restore", "step") if not callable(getattr(cls, name, None))]
    if missing:
        raise InputError(
            f"--replica: {spec} is not a replica class (it has no {' or '.join(missing)}; "
            "subclass pbft.replica.Replica)"
        )
    return cast("ReplicaFactory", cls)


def reproduce_command(source: str, seed: int, replica_spec: str | None = None) -> str:
    """The one command that replays ``seed`` exactly, ready to paste into a shell."""
    words = ["ledgersim", "run", source, "--seed", str(seed)]
    if replica_spec:
        words += ["--replica", replica_spec]
        root = _import_root(replica_spec)
        if root is not None:  # e.g. tests/pbft_mutants.py: importable only with its folder
            words = [f"PYTHONPATH={root}", *words]
    return shlex.join(words)


def _import_root(replica_spec: str) -> str | None:
    """The folder to put on PYTHONPATH so ``replica_spec``'s module imports in a new shell.

    ``None`` when the module is part of an installed package (nothing to add).
    The folder is given relative to the current directory when it lies below it.
    """
    module_name = replica_spec.partition(":")[0]
    module = sys.modules.get(module_name)
    location = getattr(module, "__file__", None)
    if location is None or module_name.split(".")[0] in INSTALLED_PACKAGES:
        return None
    root = Path(location).resolve().parents[module_name.count(".")]
    try:
        return str(root.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(root)


INSTALLED_PACKAGES = frozenset({"msp", "pbft", "ledger", "chaincode", "sim"})


# ------------------------------------------------------------------ one seed


def run_seed(scenario: Scenario, seed: int, replica_spec: str | None = None) -> SeedOutcome:
    """The real runner: one simulated run, judged against the scenario's ``[expect]``.

    A crash of the simulator is an outcome too (the seed is reported with the
    exception), because a sweep that dies on seed 4711 hides seeds 4712 on.
    Bad input is not: it would fail every seed alike, so it stops the sweep.
    """
    from sim.world.results import check_expectations
    from sim.world.simulation import run_scenario

    started = time.perf_counter()
    try:
        kwargs: dict[str, Any] = {}
        if replica_spec:
            kwargs["replica_class"] = load_replica_class(replica_spec)
        result = run_scenario(scenario, seed, **kwargs)
        failures = failed_expectations(check_expectations(scenario.expect, result))
        summary = result.to_json()
    except InputError:
        raise  # the same for every seed: the sweep stops with exit status 2
    except Exception as exc:
        return SeedOutcome(
            seed=seed,
            ok=False,
            failures=(f"run crashed: {type(exc).__name__}: {exc}",),
            wall_s=time.perf_counter() - started,
            error=f"{type(exc).__name__}: {exc}",
        )
    return outcome_from_summary(seed, summary, failures, time.perf_counter() - started)


def failed_expectations(checks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``name: expected X, got Y`` per failed check (``sim.world.results`` judges them)."""
    return [
        f"{name}: expected {show(check.get('expected'))}, got {show(check.get('actual'))}"
        for name, check in checks.items()
        if not check.get("ok")
    ]


def outcome_from_summary(
    seed: int, summary: dict[str, Any], failures: Sequence[str], wall_s: float
) -> SeedOutcome:
    latency = summary.get("latency_ms") or {}
    return SeedOutcome(
        seed=seed,
        ok=not failures,
        failures=tuple(str(f) for f in failures),
        view_changes=int(summary.get("view_changes", 0)),
        submitted=int(summary.get("submitted", 0)),
        committed=int(summary.get("committed", 0)),
        latency_p50_ms=latency.get("p50"),
        latency_p99_ms=latency.get("p99"),
        wall_s=wall_s,
    )


# ------------------------------------------------------------------ many seeds


@dataclass
class SweepReport:
    scenario: str
    source: str
    seeds: list[int]
    shard: tuple[int, int] | None
    replica_spec: str | None
    outcomes: list[SeedOutcome] = field(default_factory=list)
    wall_s: float = 0.0
    planned: int = 0
    """Seeds this shard was to run; more than ``len(outcomes)`` when interrupted."""
    interrupted: bool = False

    @property
    def failed(self) -> list[SeedOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def command(self, seed: int) -> str:
        return reproduce_command(self.source, seed, self.replica_spec)

    def to_json(self) -> dict[str, Any]:
        p50s = [o.latency_p50_ms for o in self.outcomes if o.latency_p50_ms is not None]
        p99s = [o.latency_p99_ms for o in self.outcomes if o.latency_p99_ms is not None]
        return {
            "scenario": self.scenario,
            "source": self.source,
            "seeds": [self.seeds[0], self.seeds[-1]] if self.seeds else [],
            "shard": f"{self.shard[0]}/{self.shard[1]}" if self.shard else None,
            "replica": self.replica_spec,
            "runs": len(self.outcomes),
            "planned": self.planned,
            "interrupted": self.interrupted,
            "passed": len(self.outcomes) - len(self.failed),
            "failures": len(self.failed),
            "failing": [
                {"seed": o.seed, "reasons": list(o.failures), "command": self.command(o.seed)}
                for o in self.failed
            ],
            "view_changes": distribution([o.view_changes for o in self.outcomes]),
            "latency_ms": {"p50": distribution(p50s), "p99": distribution(p99s)},
            "committed": distribution([o.committed for o in self.outcomes]),
            "wall_s": round(self.wall_s, 3),
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def distribution(values: Sequence[float]) -> dict[str, float] | None:
    """min / median / p90 / max / mean over seeds (``None`` when there is nothing)."""
    if not values:
        return None
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {
        "min": ordered[0],
        "p50": statistics.median(ordered),
        "p90": p90,
        "max": ordered[-1],
        "mean": round(statistics.fmean(ordered), 3),
    }


MAX_CHUNK = 8
"""Most seeds one task carries (see :func:`chunk_sizes` for why 8)."""

Chunk = tuple[Runner, Scenario, tuple[int, ...], "str | None"]
"""One task: a runner, the scenario, a run of consecutive seeds and the replica spec."""


def chunk_sizes(count: int, workers: int, most: int = MAX_CHUNK) -> list[int]:
    """How many seeds each task takes, first to last: ``max(1, min(most, left // (4 * workers)))``.

    Every task costs a round trip on top of its seeds (a pickled scenario and
    a result through a pipe; on a Dask cluster a scheduler decision and a
    network hop), so a short seed sent alone pays that cost per seed. Tasks
    of several seeds pay it once. Sizes shrink as the seeds left run out
    (what OpenMP calls guided scheduling): while plenty are left a task is
    large, near the end tasks are single seeds, so no worker is left with a
    long last task while the others idle. ``4 * workers`` keeps each worker
    several tasks deep until then.

    The size is capped at ``most`` seeds, not sized by time, because the
    parent cannot know what a seed costs before it has run; the cap bounds
    what a task holds back: a worker's progress reaches the parent at least
    every ``most`` seeds, and Ctrl-C loses at most the seeds of the tasks
    in flight (as it loses one seed per worker without chunks). 8 short
    seeds (36 ms) are a third of a second, and a round trip of even a few
    milliseconds is then a small share.
    """
    sizes: list[int] = []
    left = count
    while left > 0:
        size = max(1, min(most, left // (4 * max(1, workers))))
        sizes.append(size)
        left -= size
    return sizes


def chunks(
    runner: Runner,
    scenario: Scenario,
    seeds: Sequence[int],
    replica_spec: str | None,
    workers: int,
    most: int = MAX_CHUNK,
) -> list[Chunk]:
    """The tasks for ``seeds``: consecutive runs of them, in order, each seed once."""
    tasks: list[Chunk] = []
    start = 0
    for size in chunk_sizes(len(seeds), workers, most):
        tasks.append((runner, scenario, tuple(seeds[start : start + size]), replica_spec))
        start += size
    return tasks


def _call(task: Chunk) -> list[SeedOutcome]:
    """In a worker: one task's seeds, one after the other, their outcomes in seed order."""
    runner, scenario, seeds, replica_spec = task
    return [runner(scenario, seed, replica_spec) for seed in seeds]


def sweep(
    scenario: Scenario,
    seeds: Sequence[int],
    *,
    jobs: int | None = None,
    runner: Runner = run_seed,
    replica_spec: str | None = None,
    shard: tuple[int, int] | None = None,
    progress: ProgressBar | None = None,
    dask: str | None = None,
    max_chunk: int = MAX_CHUNK,
) -> SweepReport:
    """Run ``runner`` for every seed of this shard; outcomes come back sorted by seed.

    ``dask`` is a Dask scheduler's address: the seeds then run as tasks there
    (:mod:`sim.explore.cluster`) instead of in ``jobs`` local processes.
    Either way a task carries up to ``max_chunk`` seeds (:func:`chunk_sizes`);
    1 sends every seed as a task of its own.

    Ctrl-C (KeyboardInterrupt) ends the sweep early with the seeds done so far
    and ``interrupted`` set, the workers stopped.
    """
    chosen = shard_seeds(seeds, shard)
    report = SweepReport(
        scenario=scenario.name,
        source=scenario.source,
        seeds=list(seeds),
        shard=shard,
        replica_spec=replica_spec,
        planned=len(chosen),
    )
    started = time.perf_counter()
    if progress is not None:
        progress.update(0, len(chosen))
    outcomes = _outcomes(scenario, chosen, jobs, runner, replica_spec, dask, max_chunk)
    try:
        for outcome in outcomes:
            report.outcomes.append(outcome)
            if progress is not None:
                progress.advance(failed=not outcome.ok)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        outcomes.close()  # leaves the pool: its workers are terminated
    report.outcomes.sort(key=lambda o: o.seed)
    report.wall_s = time.perf_counter() - started
    return report


def _outcomes(
    scenario: Scenario,
    seeds: list[int],
    jobs: int | None,
    runner: Runner,
    replica_spec: str | None,
    dask: str | None = None,
    most: int = MAX_CHUNK,
) -> Generator[SeedOutcome, None, None]:
    """The outcome of every seed, as the tasks finish (not in seed order).

    In one process there is no round trip to save, so seeds run one by one
    and Ctrl-C keeps every seed finished before it.
    """
    if dask is not None:
        from sim.explore.cluster import dask_map

        def plan(threads: int) -> list[Chunk]:
            return chunks(runner, scenario, seeds, replica_spec, threads, most)

        for done in dask_map(dask, _call, plan):
            yield from done
        return
    workers = max(1, min(jobs or os.cpu_count() or 1, len(seeds)))
    if workers == 1:
        for seed in seeds:
            yield runner(scenario, seed, replica_spec)
        return
    context = multiprocessing.get_context("spawn")
    # Workers start with SIGINT ignored (a spawned interpreter keeps an ignored
    # signal ignored), so there is no moment at which Ctrl-C gives them a traceback.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        with _main_left_behind(runner, replica_spec):
            pool = context.Pool(workers, initializer=_ignore_interrupts)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    with pool:
        tasks = chunks(runner, scenario, seeds, replica_spec, workers, most)
        for done in pool.imap_unordered(_call, tasks):
            yield from done


@contextmanager
def _main_left_behind(runner: Runner, replica_spec: str | None) -> Iterator[None]:
    """Workers started in this block do not re-import the parent's main module.

    A spawned worker normally first re-runs the parent's ``__main__``: for the
    ``ledgersim`` command that is the whole CLI (0.6 s of imports, three
    times what a seed needs), paid by every worker before its first seed,
    which for a short sweep was most of what two workers lost to one. Nothing
    a worker is sent comes from there (the runner and the replica are named by
    module), so the workers start from a blank main instead. A runner or
    replica that does live in ``__main__`` (a user's script) keeps the usual
    start-up, since the worker must import it to find it.
    """
    main = sys.modules.get("__main__")
    needs_main = runner.__module__ == "__main__" or (replica_spec or "").startswith("__main__:")
    if main is None or needs_main:
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")  # what spawn reads to start a worker
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _ignore_interrupts() -> None:
    """In a worker: Ctrl-C is the parent's to handle (it terminates the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
