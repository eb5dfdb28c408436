"""Hypothesis strategies for networks, fault schedules and whole scenarios.

For property tests against Byzantine behaviour: draw a scenario, run it with
:func:`sim.world.simulation.run_scenario`, assert the invariants. By default every
schedule stays inside PBFT's fault model — at most f distinct replicas are
ever Byzantine or crashed, and every partition and link fault ends by the
global stabilisation time ``gst_ms`` — so safety *and* liveness must hold.
``beyond_model=True`` lifts the replica limit (up to n-1 faulty, network cuts
that may never heal): safety may then legitimately break, which is what a
researcher exploring the edge of the model wants to see.

The Byzantine replicas draw from ``DEFAULT_BEHAVIOURS`` unless given
``behaviours=``; ``PROOF_BEHAVIOURS`` are the ones that forge or mix proofs
(``sim.world.adversaries``), drawn with their options by
:func:`behaviour_params`.

Shrinking works towards fewer faults, fewer replicas, fixed latency and no
loss, so a failing example ends up small enough to read. Draws are kept
small (a few dozen requests) so a property run costs well under a second.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from sim.scenario.model import (
    Expect,
    Fault,
    Latency,
    NetworkSpec,
    Scenario,
    WorkloadSpec,
)
from sim.world.adversaries import ForgedStateServer, ForgedViewChange
from sim.world.catalogue import BEHAVIOURS, PROOF_FORGERS

PROOF_BEHAVIOURS = PROOF_FORGERS
"""The behaviours that forge or mix proofs (``sim.world.adversaries``), for tests aimed at
a replica's proof checks: ``scenarios(behaviours=PROOF_BEHAVIOURS)``."""

DEFAULT_BEHAVIOURS = tuple(sorted(name for name in BEHAVIOURS if name not in PROOF_BEHAVIOURS))
"""What schedules draw unless told otherwise. The proof forgers are left out so that
derandomized property tests written before them keep drawing the same examples;
``ALL_BEHAVIOURS`` has both."""

ALL_BEHAVIOURS = tuple(sorted(BEHAVIOURS))

Params = tuple[tuple[str, float | int | str], ...]


def behaviour_params(draw: st.DrawFn, behavior: str) -> Params:
    """Options for ``behavior``: which forgery the proof forgers use, when a primary stalls."""
    if behavior == "delay":
        return (("delay_ms", draw(st.sampled_from([50, 200, 800]))),)
    if behavior == "forged-state":
        return (("trick", draw(st.sampled_from(("all", *ForgedStateServer.TRICKS)))),)
    if behavior == "forged-view-change":
        trick = draw(st.sampled_from(("cycle", *ForgedViewChange.TRICKS)))
        stall = draw(st.sampled_from([1000, 200, 3000]))
        return (("trick", trick), ("stall_ms", stall), ("quiet", draw(st.sampled_from([0, 1]))))
    return ()


@st.composite
def latencies(
    draw: st.DrawFn, *, max_ms: int = 30, lossy: bool = True, max_loss: float = 0.05
) -> Latency:
    """Latency models; ``lossy`` adds loss and duplication (the network never fully heals)."""
    kind = draw(st.sampled_from(["fixed", "uniform", "exponential"]))
    low = draw(st.integers(0, max_ms // 2))
    high = draw(st.integers(max(low, 1), max_ms))
    mean = draw(st.integers(low, high)) if kind == "exponential" else (low + high) // 2
    drop = draw(st.sampled_from([0.0, 0.01, max_loss])) if lossy else 0.0
    dup = draw(st.sampled_from([0.0, 0.02, 0.05])) if lossy else 0.0
    return Latency(
        kind=kind,
        min_ms=float(low),
        max_ms=float(high),
        mean_ms=float(mean),
        drop_rate=drop,
        duplicate_rate=dup,
        reorder=draw(st.booleans()),
    )


@st.composite
def network_specs(
    draw: st.DrawFn,
    *,
    replicas: st.SearchStrategy[int] | None = None,
    crypto: str = "modelled",
    lossy: bool = False,
) -> NetworkSpec:
    """Network parameters with small batches and short timeouts (fast view changes)."""
    n = draw(replicas if replicas is not None else st.sampled_from([4, 5, 7]))
    k = draw(st.sampled_from([2, 5, 10]))
    return NetworkSpec(
        replicas=n,
        orgs=draw(st.integers(1, min(n, 3))),
        batch_size=draw(st.sampled_from([1, 3, 10])),
        batch_timeout_ms=draw(st.sampled_from([5, 20, 50])),
        checkpoint_interval=k,
        watermark_window=k * draw(st.sampled_from([2, 4])),
        view_change_timeout_ms=draw(st.sampled_from([300, 600, 1000])),
        crypto=crypto,
        latency=draw(latencies(lossy=lossy)),
    )


def _groups(draw: st.DrawFn, n: int) -> tuple[tuple[int, ...], ...]:
    order = draw(st.permutations(list(range(n))))
    cut = draw(st.integers(1, n - 1))
    return (tuple(sorted(order[:cut])), tuple(sorted(order[cut:])))


@st.composite
def fault_schedules(
    draw: st.DrawFn,
    n: int,
    f: int | None = None,
    duration_ms: int = 10_000,
    *,
    gst_ms: int | None = None,
    beyond_model: bool = False,
    behaviours: tuple[str, ...] = DEFAULT_BEHAVIOURS,
    max_network_faults: int = 3,
) -> tuple[Fault, ...]:
    """A fault schedule for ``n`` replicas; inside the model unless ``beyond_model``.

    Replica faults: each chosen replica is Byzantine (one of ``behaviours``,
    from some time on) or crashes and, inside the model, recovers before
    ``gst_ms``. Network faults (partitions, one-way link faults) all end by
    ``gst_ms`` (default: half the duration) unless ``beyond_model``.
    """
    f = (n - 1) // 3 if f is None else f
    gst = duration_ms // 2 if gst_ms is None else gst_ms
    limit = n - 1 if beyond_model else f
    faulty = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=limit))
    faults: list[Fault] = []
    for replica in faulty:
        at = draw(st.integers(0, max(gst - 1, 0)))
        if draw(st.sampled_from(["byzantine", "crash", "byzantine"])) == "byzantine":
            behavior = draw(st.sampled_from(behaviours))
            params = behaviour_params(draw, behavior)
            faults.append(
                Fault("byzantine", at_ms=at, replica=replica, behavior=behavior, params=params)
            )
        else:
            faults.append(Fault("crash", at_ms=at, replica=replica))
            if not beyond_model or draw(st.booleans()):
                back = draw(st.integers(at, max(gst, at)))
                faults.append(Fault("recover", at_ms=back, replica=replica))
    for _ in range(draw(st.integers(0, max_network_faults))):
        at = draw(st.integers(0, max(gst - 1, 0)))
        until: int | None = draw(st.integers(at + 1, max(gst, at + 1)))
        if beyond_model and draw(st.booleans()):
            until = None
        if draw(st.booleans()):
            faults.append(Fault("partition", at_ms=at, until_ms=until, groups=_groups(draw, n)))
        else:
            src, dst = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
            faults.append(
                Fault(
                    "link",
                    at_ms=at,
                    until_ms=until,
                    src=src,
                    dst=dst,
                    drop_rate=draw(st.sampled_from([1.0, 0.5])),
                    extra_delay_ms=float(draw(st.sampled_from([0, 100]))),
                )
            )
    return tuple(sorted(faults, key=lambda fault: fault.at_ms))


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    replicas: st.SearchStrategy[int] | None = None,
    requests: st.SearchStrategy[int] | None = None,
    beyond_model: bool = False,
    lossy: bool = False,
    behaviours: tuple[str, ...] = DEFAULT_BEHAVIOURS,
    crypto: str = "modelled",
    chaincode: str = "none",
    **expect: Any,
) -> Scenario:
    """A whole PBFT-only scenario (modelled crypto) with a drawn fault schedule.

    The duration leaves room after GST for liveness to show; ``expect``
    keywords become the scenario's ``[expect]`` table.
    """
    network = draw(network_specs(replicas=replicas, crypto=crypto, lossy=lossy))
    gst = draw(st.sampled_from([0, 1000, 3000]))
    faults = draw(
        fault_schedules(
            network.replicas,
            duration_ms=2 * gst + 1,
            gst_ms=gst,
            beyond_model=beyond_model,
            behaviours=behaviours,
        )
    )
    count = draw(requests if requests is not None else st.integers(5, 40))
    clients = draw(st.integers(1, 4))
    rate = draw(st.sampled_from([50.0, 200.0, 1000.0]))
    duration = gst + 16 * network.view_change_timeout_ms * 2 ** (network.replicas // 3) + 5000
    return Scenario(
        name="hypothesis",
        seed=draw(st.integers(0, 2**32 - 1)),
        duration_ms=duration,
        network=network,
        workload=WorkloadSpec(
            clients=clients, requests=count, rate_per_s=rate, chaincode=chaincode
        ),
        faults=faults,
        expect=Expect(**expect),
    )
