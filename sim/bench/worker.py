"""One simulator run in a process of its own: ``python -m sim.bench.worker < spec.json``.

A fresh process per run keeps the figures apart: peak memory (``ru_maxrss``)
belongs to that run alone, the crypto counters patch classes only there, and
one run's garbage does not slow the next. The spec and the answer are JSON
on stdin and stdout.
"""

from __future__ import annotations

import contextlib
import cProfile
import importlib
import json
import resource
import sys
import time
from typing import Any

from sim.bench.counting import CryptoCounter
from sim.bench.profiling import hotspots
from sim.bench.runspec import RunSpec

WARM_MODULES = ("pbft.replica", "pbft.client", "pbft.auth", "pbft.memapp", "msp.ca", "msp.names")
"""Modules the simulator imports lazily, imported before the clock starts."""


def _maxrss_mib() -> float:
    """Peak resident memory of this process image, in MiB.

    ``VmHWM`` belongs to the address space, which ``exec`` replaces, so it
    measures this run alone; ``ru_maxrss`` survives ``exec`` and can report
    the parent's size at fork time, so it is only the fallback.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run(spec: RunSpec) -> dict[str, Any]:
    """Simulate ``spec`` once; wall/CPU time cover ``run_scenario`` and nothing else."""
    # Imported late (and by name) so the suite loads before the simulator is built.
    run_scenario = importlib.import_module("sim.world.simulation").run_scenario
    scenario = spec.scenario()
    for name in WARM_MODULES + (("sim.fabric.workload",) if spec.chaincode != "none" else ()):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)  # imports are set-up too, not simulation
    if spec.crypto != "modelled":
        # Key and certificate generation is set-up, not throughput: do it (it is
        # cached per process) before the clock starts.
        importlib.import_module("sim.world.auth").network_crypto(scenario)
    counter = CryptoCounter()
    profile = cProfile.Profile() if spec.profile_top else None
    rss_before = _maxrss_mib()
    with counter.installed() if spec.count_crypto else contextlib.nullcontext():
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        result = run_scenario(scenario, spec.seed)
        if profile is not None:
            profile.disable()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    out: dict[str, Any] = {
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_before_mib": rss_before,
        "maxrss_mib": _maxrss_mib(),
        "result": result.to_json(),
    }
    if spec.count_crypto:
        out["crypto"] = counter.to_json()
    if profile is not None:
        out["profile"] = hotspots(profile, spec.profile_top)
    return out


def main() -> int:
    spec = RunSpec(**json.load(sys.stdin))
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the answer alone
        answer = run(spec)
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
