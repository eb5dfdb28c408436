"""The fault schedule of a scenario: a timeline, and where it sits in the fault model.

A scenario's ``[[fault]]`` entries become :class:`FaultAction` items the
simulator fires at their virtual time (ties keep file order, ends before
starts at the same instant so back-to-back windows never overlap). The same
schedule is judged against PBFT's fault model (docs/design.md, "The fault model"): at most
f replicas Byzantine or crashed *at the same time*, and a network that heals
(global stabilisation time, GST). Schedules beyond the model are allowed — a
researcher may want to see what breaks — and :func:`fault_model` says so in
the run's result rather than refusing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.errors import InputError
from sim.scenario.model import Fault, Scenario

FAULT_KINDS = ("byzantine", "crash", "recover", "partition", "link")


@dataclass(frozen=True, slots=True)
class FaultAction:
    """One change of the world at ``at_ms``; ``index`` is the fault's position in the file."""

    at_ms: int
    kind: str
    """``byzantine(-end)``, ``crash``, ``recover``, ``partition-`` and ``link-start/-end``."""
    index: int
    fault: Fault


_ORDER = {
    "partition-end": 0,
    "link-end": 0,
    "byzantine-end": 0,
    "crash": 1,
    "recover": 2,
    "byzantine": 2,
}


def check_faults(scenario: Scenario) -> None:
    """Refuse faults that name things that do not exist (local misuse: raises)."""
    n = scenario.network.replicas
    where = f"{scenario.source}: fault"
    for i, fault in enumerate(scenario.faults):
        if fault.kind not in FAULT_KINDS:
            raise InputError(
                f"{where}[{i}].kind: expected one of {FAULT_KINDS}, got {fault.kind!r}"
            )
        if fault.until_ms is not None and fault.until_ms < fault.at_ms:
            raise InputError(f"{where}[{i}].until_ms: expected >= at_ms ({fault.at_ms})")
        if fault.kind in ("byzantine", "crash", "recover") and (
            fault.replica is None or not 0 <= fault.replica < n
        ):
            raise InputError(f"{where}[{i}].replica: expected a replica id 0..{n - 1}")
        if fault.kind == "byzantine":
            from sim.world.catalogue import BEHAVIOURS

            if fault.behavior not in BEHAVIOURS:
                raise InputError(
                    f"{where}[{i}].behavior: expected one of {sorted(BEHAVIOURS)}, "
                    f"got {fault.behavior!r}"
                )
        if fault.kind == "link" and (fault.src is None or fault.dst is None):
            raise InputError(f"{where}[{i}]: a link fault needs 'from' and 'to'")
        if fault.kind == "partition" and not fault.groups:
            raise InputError(f"{where}[{i}].groups: expected a list of replica groups")


def timeline(scenario: Scenario) -> list[FaultAction]:
    """Every fault as start (and end) actions, in the order they take effect.

    At one instant, windows close before others open, and a crash comes
    before a recovery (as ``sim.scenario.reader`` checks crash/recover order).
    """
    actions: list[FaultAction] = []
    for i, fault in enumerate(scenario.faults):
        kind = fault.kind
        if kind in ("partition", "link"):
            if fault.until_ms is not None and fault.until_ms <= fault.at_ms:
                continue  # an empty window never cuts anything
            actions.append(FaultAction(fault.at_ms, f"{kind}-start", i, fault))
            if fault.until_ms is not None:
                actions.append(FaultAction(fault.until_ms, f"{kind}-end", i, fault))
        else:
            actions.append(FaultAction(fault.at_ms, kind, i, fault))
            if fault.until_ms is not None and kind == "crash":
                actions.append(FaultAction(fault.until_ms, "recover", i, fault))
            elif fault.until_ms is not None and kind == "byzantine":
                actions.append(FaultAction(fault.until_ms, "byzantine-end", i, fault))
    actions.sort(key=lambda a: (a.at_ms, _ORDER.get(a.kind, 3), a.index))
    return actions


def fault_model(scenario: Scenario) -> dict[str, Any]:
    """Is this schedule inside PBFT's fault model, and when does the network heal?

    ``gst_ms`` is the first instant after which no partition or link fault is
    active, no replica is still to recover, and no loss is configured; it is
    ``None`` when that never happens (then liveness is not promised).
    """
    f = scenario.f
    byzantine: set[int] = set()
    down: set[int] = set()
    ever_crashed: set[int] = set()
    worst = 0
    gst: int | None = 0
    for action in timeline(scenario):
        replica = action.fault.replica
        if action.kind == "byzantine" and replica is not None:
            byzantine.add(replica)
        elif action.kind == "crash" and replica is not None:
            down.add(replica)
            ever_crashed.add(replica)
        elif action.kind == "recover" and replica is not None:
            down.discard(replica)
        worst = max(worst, len(byzantine | down))
        if gst is not None and action.kind != "byzantine":
            gst = max(gst, action.at_ms)
    for fault in scenario.faults:
        endless = fault.kind in ("partition", "link") and fault.until_ms is None
        if endless and (fault.kind == "partition" or fault.drop_rate > 0):
            gst = None
    if scenario.network.latency.drop_rate > 0:
        gst = None
    return {
        "within": worst <= f,
        "f": f,
        "max_faulty": worst,
        "byzantine": sorted(byzantine),
        "crashed": sorted(ever_crashed),
        "down_at_end": sorted(down),
        "gst_ms": gst,
    }
