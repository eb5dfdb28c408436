"""What a teacher wants to point at, derived from a trace's raw events.

The writer records hops and faults as they happen; the picture also needs
things that only exist between events: how long a replica stayed crashed or a
network stayed cut (periods), what each replica did with one sequence number
(slots), and how many view changes actually completed (view figures). They are
computed here once, in Python, so the page only draws them and the tests can
check them without a browser.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STAGES = ("pre-prepared", "prepared", "committed", "executed")
"""Per replica and sequence number, in protocol order (see :func:`slots`)."""

_PERIOD_ENDS = {
    "crash": ("recover", "crashed"),
    "pause": ("resume", "paused"),
    "byzantine": ("byzantine-end", "byzantine"),
    "link-start": ("link-end", "link"),
}


# ------------------------------------------------------------------ periods


def periods(events: Iterable[Mapping[str, Any]], t_end: float) -> list[list[Any]]:
    """``[t0, t1, kind, replica|None, label, group]`` for every fault that lasts a while.

    ``kind`` is ``crashed``, ``paused``, ``byzantine``, ``link`` or ``partition``.
    A partition gives one period per replica it names, ``group`` being the index
    of that replica's side (-1 otherwise). Ends pair with the earliest open start
    of the same kind (and replica): the trace does not name the fault it ends.
    A fault still in force when the trace stops lasts to its end.
    """
    open_: dict[tuple[str, int | None], list[list[Any]]] = defaultdict(list)
    closers = {end: start for start, (end, _) in _PERIOD_ENDS.items()}
    out: list[list[Any]] = []
    open_partitions: list[list[list[Any]]] = []
    for event in events:
        if event.get("ev") != "fault":
            continue
        t = float(event["t"])
        kind = str(event.get("kind", ""))
        replica = event.get("replica") if isinstance(event.get("replica"), int) else None
        detail = str(event.get("detail", ""))
        if kind in _PERIOD_ENDS:
            label = detail if detail and detail != kind else _PERIOD_ENDS[kind][1]
            period = [t, t_end, _PERIOD_ENDS[kind][1], replica, label, -1]
            open_[(kind, replica)].append(period)
            out.append(period)
        elif kind in closers and open_[(closers[kind], replica)]:
            open_[(closers[kind], replica)].pop(0)[1] = t
        elif kind == "partition-start":
            groups = partition_groups(detail)
            label = " | ".join("{" + ", ".join(map(str, g)) + "}" for g in groups)
            members = [
                [t, t_end, "partition", r, f"partition {label}", index]
                for index, group in enumerate(groups)
                for r in group
            ]
            open_partitions.append(members)
            out.extend(members)
        elif kind == "partition-end" and open_partitions:
            for period in open_partitions.pop(0):
                period[1] = t
    out.sort(key=lambda p: (p[0], -1 if p[3] is None else p[3]))
    return out


def partition_groups(detail: str) -> list[list[int]]:
    """``partition [[0, 1], [2, 3]]`` -> ``[[0, 1], [2, 3]]`` (nothing when unreadable)."""
    match = re.search(r"\[\s*\[.*\]\s*\]", detail)
    if not match:
        return []
    try:
        groups = json.loads(match.group(0))
    except json.JSONDecodeError:
        return []
    if not isinstance(groups, list):
        return []
    return [
        [r for r in g if isinstance(r, int) and not isinstance(r, bool)]
        for g in groups
        if isinstance(g, list)
    ]


# ------------------------------------------------------------------ view figures


@dataclass
class ViewFigures:
    """The three numbers behind "view changes", kept apart on purpose.

    ``installed`` counts views above 0 that some correct replica started working
    in (a NEW-VIEW took effect); ``attempts`` counts replicas moving to a higher
    view, including changes that never completed; ``highest`` is the highest
    view any correct replica reached, completed or not.

    This is the one place these figures are defined: the simulator feeds it as
    the run goes (``sim.world.invariants.History.views_figures``) and the trace
    reader feeds it from the trace's events (:func:`view_figures`), so a run's
    result and its trace page cannot disagree.
    """

    installed_views: list[int] = field(default_factory=list)
    installs: int = 0
    attempts: int = 0
    highest: int = 0

    @property
    def installed(self) -> int:
        return len(self.installed_views)

    def attempt(self, view: int) -> None:
        """A correct replica moved up to ``view`` (its view-change timer fired, or it followed)."""
        self.attempts += 1
        self.highest = max(self.highest, view)

    def install(self, view: int) -> None:
        """A correct replica started working in ``view`` (see :func:`installs_view`)."""
        self.installs += 1
        self.highest = max(self.highest, view)
        if view not in self.installed_views:
            self.installed_views.append(view)
            self.installed_views.sort()


def installs_view(before: tuple[int, bool] | None, after: tuple[int, bool]) -> bool:
    """Whether one step installed a view: ``(view, in a view change)`` before and after.

    It did when the replica is left working (not changing views) in a view above
    0 that it was not working in before -- through a NEW-VIEW, or by catching up
    to a view the others installed.
    """
    view, changing = after
    return view > 0 and not changing and before != after


def view_figures(
    events: Iterable[Mapping[str, Any]], meta: Mapping[str, Any], byzantine: set[int]
) -> ViewFigures:
    """From ``new_view`` events; traces written before they existed use accepted NEW-VIEWs.

    A trace is of the newer kind when it has ``new_view`` events or digests on
    its sends (both were added together).
    """
    figures = ViewFigures()
    new_view_sends: dict[int, int] = {}
    delivered_new_views: set[int] = set()
    recorded_installs = False
    for event in events:
        ev = event.get("ev")
        replica = event.get("replica")
        view = event.get("view")
        if ev == "view_change" and isinstance(view, int) and replica not in byzantine:
            figures.attempt(view)
        elif ev == "new_view" and isinstance(view, int) and replica not in byzantine:
            figures.install(view)
        elif ev == "send" and "digest" in event:
            recorded_installs = True  # a trace that has digests also logs installs
        elif ev == "send" and _is_new_view(event.get("type")) and isinstance(view, int):
            if isinstance(event.get("id"), int):
                new_view_sends[event["id"]] = view
        elif ev == "deliver" and event.get("id") in new_view_sends:
            delivered_new_views.add(new_view_sends[event["id"]])
    if not figures.installed_views and not recorded_installs:
        figures.installed_views = sorted(v for v in delivered_new_views if v > 0)
    return figures


def _is_new_view(kind: Any) -> bool:
    return isinstance(kind, str) and kind.lower().replace("-", "").replace("_", "") == "newview"


# ------------------------------------------------------------------ slots


_VOTE_STAGE = {"preprepare": 0, "prepare": 0, "commit": 1}
"""Sending a PRE-PREPARE or PREPARE shows the sender accepted the proposal;
sending a COMMIT shows it had a prepared certificate."""


def slots(events: Iterable[Mapping[str, Any]], meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per sequence number: the digests proposed, and each replica's progress on them.

    ``proposals`` are ``[t, view, digest#, from, recipients]`` (one per distinct
    PRE-PREPARE, with how many replicas it was sent to); ``states`` are
    ``[t, replica, stage#, view, digest#]``, the first time a replica reached a
    stage of :data:`STAGES` for that (view, digest). "committed" is inferred:
    the replica received matching COMMITs from a quorum, counting its own (the
    trace holds messages, not replica state).
    """
    n, f = meta.get("n"), meta.get("f")
    n = n if isinstance(n, int) else 0
    f = f if isinstance(f, int) else 0
    quorum = math.ceil((n + f + 1) / 2) if n else 0
    by_seq: dict[int, dict[str, Any]] = {}
    sends: dict[int, tuple[int, int, int, str]] = {}
    commits_seen: dict[tuple[int, int, int, str], set[int]] = defaultdict(set)
    proposals: dict[tuple[int, int, str, int], list[Any]] = {}
    recipients: dict[tuple[int, int, str, int], set[Any]] = {}

    def slot(seq: int) -> dict[str, Any]:
        if seq not in by_seq:
            by_seq[seq] = {"seq": seq, "digests": [], "proposals": [], "states": [], "_seen": set()}
        return by_seq[seq]

    def digest_index(entry: dict[str, Any], digest: str) -> int:
        if digest not in entry["digests"]:
            entry["digests"].append(digest)
        return int(entry["digests"].index(digest))

    def reach(t: float, replica: int, stage: int, seq: int, view: int, digest: str) -> None:
        entry = slot(seq)
        key = (replica, stage, view, digest)
        if key not in entry["_seen"]:
            entry["_seen"].add(key)
            entry["states"].append([t, replica, stage, view, digest_index(entry, digest)])

    for event in events:
        ev = event.get("ev")
        if ev == "send":
            kind = str(event.get("type", "")).lower().replace("-", "").replace("_", "")
            digest, seq, view = event.get("digest"), event.get("seq"), event.get("view")
            if kind not in _VOTE_STAGE or not isinstance(digest, str):
                continue
            if not isinstance(seq, int) or not isinstance(view, int):
                continue
            src, t = event.get("from"), float(event["t"])
            if not isinstance(src, int):
                continue
            reach(t, src, _VOTE_STAGE[kind], seq, view, digest)
            if kind == "preprepare":
                key = (seq, view, digest, src)
                if key not in proposals:
                    proposals[key] = [t, view, digest_index(slot(seq), digest), src, 0]
                    slot(seq)["proposals"].append(proposals[key])
                    recipients[key] = set()
                recipients[key].add(event.get("to"))
                proposals[key][4] = len(recipients[key])
            elif kind == "commit" and isinstance(event.get("id"), int):
                sends[event["id"]] = (src, seq, view, digest)
                commits_seen[(src, seq, view, digest)].add(src)
        elif ev == "deliver" and event.get("id") in sends and quorum:
            src, seq, view, digest = sends[event["id"]]
            dst = event.get("to")
            if not isinstance(dst, int):
                continue
            seen = commits_seen[(dst, seq, view, digest)]
            seen.add(src)
            if len(seen) >= quorum:
                reach(float(event["t"]), dst, 2, seq, view, digest)
        elif ev == "commit":
            seq, view, digest = event.get("seq"), event.get("view"), event.get("digest")
            replica = event.get("replica")
            if isinstance(seq, int) and isinstance(view, int) and isinstance(replica, int):
                reach(float(event["t"]), replica, 3, seq, view, str(digest or "?"))
    out = []
    for seq in sorted(by_seq):
        entry = by_seq[seq]
        del entry["_seen"]
        entry["states"].sort(key=lambda s: (s[0], s[1], s[2]))
        out.append(entry)
    return out


def contested(slot_entry: Mapping[str, Any]) -> bool:
    """More than one batch was proposed for this sequence number."""
    return len({p[2] for p in slot_entry["proposals"]}) > 1
