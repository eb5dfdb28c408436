"""A message-sequence picture of a run, as one self-contained HTML page.

The picture follows the PBFT paper's normal-case figure: one horizontal lane
per client and replica, time running left to right, one arrow per message
coloured by protocol phase. Drops are dashed and end in a cross, faults and
view changes are marked on their lanes.

The JSON-lines trace (schema in docs/contracts.md) is turned here into a
compact model: every ``send`` is paired with its ``deliver``/``drop`` events by
message id (a duplicated message is two arrows from one send), sorted by send
time, one array per message. The page's script only draws that model, on a
canvas and only what is in view, so a run with 100,000 messages stays usable
without creating a DOM node per arrow. Everything (data, script, style) is
inlined: the page works offline, opened from disk or attached to a bug report.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.trace.derive import STAGES, ViewFigures, periods, slots, view_figures

PHASES = (
    "request",
    "pre-prepare",
    "prepare",
    "commit",
    "reply",
    "checkpoint",
    "view-change",
    "new-view",
    "state-transfer",
    "other",
)

_PHASE_OF_TYPE = {
    "request": "request",
    "preprepare": "pre-prepare",
    "prepare": "prepare",
    "commit": "commit",
    "reply": "reply",
    "checkpoint": "checkpoint",
    "viewchange": "view-change",
    "newview": "new-view",
    "fetchstate": "state-transfer",
    "statechunk": "state-transfer",
    "statetransfer": "state-transfer",
}

MAX_REPLICAS = 10_000
"""A trace's ``meta.n`` above this is refused: a lane is drawn for every replica id
below ``n``, so a corrupt ``n`` must not make the page (or the memory) explode."""

DELIVERED, DROPPED, IN_FLIGHT = 0, 1, 2
"""Message status codes in the page model."""


def phase_of(message_type: str) -> str:
    """``PrePrepare``/``pre-prepare``/``PRE_PREPARE`` all mean the same phase."""
    key = "".join(ch for ch in message_type.lower() if ch.isalnum())
    return _PHASE_OF_TYPE.get(key, "other")


@dataclass
class _Send:
    t: float
    src: int
    dst: int
    type: str
    view: int | None
    seq: int | None
    size: int
    digest: str | None = None
    outcomes: list[tuple[float, int, str]] = field(default_factory=list)


@dataclass
class TraceModel:
    """What the page draws; :meth:`to_json` is embedded in the HTML as is."""

    meta: dict[str, Any]
    lanes: list[dict[str, Any]]
    types: list[str]
    reasons: list[str]
    msgs: list[list[Any]]
    """``[t_send, t_end, from, to, type#, view|-1, seq|-1, status, bytes, reason#|-1, digest]``
    (digest ``""`` when the message carries none)."""
    marks: list[list[Any]]
    """``[t, kind, replica|None, label, view|-1, seq|-1]``: faults, view changes, commits."""
    t_end: float
    periods: list[list[Any]] = field(default_factory=list)
    """See :func:`sim.trace.derive.periods`."""
    slots: list[dict[str, Any]] = field(default_factory=list)
    """See :func:`sim.trace.derive.slots`."""
    views: ViewFigures = field(default_factory=ViewFigures)
    warnings: list[str] = field(default_factory=list)
    """Shown on the page (e.g. the trace was cut off)."""
    sent: dict[str, int] = field(default_factory=dict)
    """Messages sent (hops, a duplicate counted once) by type."""

    @property
    def arrows(self) -> int:
        return len(self.msgs)

    @property
    def drops(self) -> int:
        return sum(1 for m in self.msgs if m[7] == DROPPED)

    def count_marks(self, kind: str) -> int:
        return sum(1 for m in self.marks if m[1] == kind)

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "lanes": self.lanes,
            "phases": list(PHASES),
            "types": self.types,
            "typePhase": [PHASES.index(phase_of(t)) for t in self.types],
            "reasons": self.reasons,
            "msgs": self.msgs,
            "marks": self.marks,
            "tEnd": self.t_end,
            "periods": self.periods,
            "slots": self.slots,
            "stages": list(STAGES),
            "views": {
                "installed": self.views.installed,
                "installedViews": self.views.installed_views,
                "installs": self.views.installs,
                "attempts": self.views.attempts,
                "highest": self.views.highest,
            },
            "warnings": self.warnings,
        }


# ------------------------------------------------------------------ reading


def read_trace(path: str | Path, warnings: list[str] | None = None) -> list[dict[str, Any]]:
    """The events of a JSON-lines trace; a broken line is an InputError naming it.

    With ``warnings`` given, a cut-off last line (a run killed while writing)
    is left out and explained there instead, so what was written can be drawn.
    """
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{source}: cannot read trace: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if warnings is None:
            raise InputError(f"{source}: cannot read trace: not UTF-8 ({exc.reason})") from None
        # A kill can cut a multi-byte character in half; the cut line is dropped below.
        text = raw.decode("utf-8", errors="replace")
    return parse_trace(text.splitlines(), source, warnings)


def parse_trace(
    lines: Iterable[str], source: str = "<trace>", warnings: list[str] | None = None
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    for position, (number, line) in enumerate(numbered):
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            if warnings is not None and position == len(numbered) - 1 and events:
                warnings.append(
                    f"{source}:{number}: last line is cut off (was the run killed?); "
                    f"drawing the {len(events)} events before it"
                )
                break
            raise InputError(f"{source}:{number}: expected a JSON object, {exc.msg}") from None
        except RecursionError:
            where = f"{source}:{number}"
            raise InputError(f"{where}: expected a JSON object, nested too deeply") from None
        if not isinstance(event, dict) or not isinstance(event.get("ev"), str):
            raise InputError(f'{source}:{number}: expected an object with an "ev" field')
        events.append(event)
    if not events:
        raise InputError(f"{source}: expected a trace (JSON lines), found no events")
    return events


class _Fields:
    """Typed access to one event's fields, failing with the line's position."""

    def __init__(self, source: str, index: int, event: Mapping[str, Any]) -> None:
        self.where = f"{source}: event {index + 1} ({event.get('ev')})"
        self.event = event

    def num(self, name: str) -> float:
        value = self.event.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{self.where}: {name}: expected a number, got {value!r}")
        return float(value)

    def integer(self, name: str) -> int:
        value = self.event.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{self.where}: {name}: expected an integer, got {value!r}")
        return value

    def opt_int(self, name: str) -> int | None:
        return None if self.event.get(name) is None else self.integer(name)

    def text(self, name: str, default: str = "") -> str:
        value = self.event.get(name, default)
        return value if isinstance(value, str) else str(value)


def build_model(events: list[dict[str, Any]], source: str = "<trace>") -> TraceModel:
    """Pair sends with their fates, collect marks and lanes. Unknown event kinds are skipped."""
    meta: dict[str, Any] = {}
    sends: dict[int, _Send] = {}
    order: list[int] = []
    marks: list[list[Any]] = []
    byzantine: set[int] = set()
    principals: set[int] = set()
    t_end = 0.0
    for index, event in enumerate(events):
        kind = event["ev"]
        f = _Fields(source, index, event)
        if kind == "meta":
            n = event.get("n")
            if n is not None and (
                isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= MAX_REPLICAS
            ):
                raise InputError(f"{f.where}: n: expected an integer 1..{MAX_REPLICAS}, got {n!r}")
            meta = dict(event)
            continue
        if kind not in ("send", "deliver", "drop", "commit", "view_change", "new_view", "fault"):
            continue
        t = f.num("t")
        t_end = max(t_end, t)
        if kind == "send":
            msg_id = f.integer("id")
            src, dst = f.integer("from"), f.integer("to")
            principals.update((src, dst))
            sends[msg_id] = _Send(
                t=t,
                src=src,
                dst=dst,
                type=f.text("type", "?"),
                view=f.opt_int("view"),
                seq=f.opt_int("seq"),
                size=0 if event.get("bytes") is None else f.integer("bytes"),
                digest=event["digest"] if isinstance(event.get("digest"), str) else None,
            )
            order.append(msg_id)
        elif kind in ("deliver", "drop"):
            msg_id = f.integer("id")
            sent = sends.get(msg_id)
            if sent is None:  # a fate without its send (trace cut at the start): draw it alone
                src, dst = f.integer("from"), f.integer("to")
                principals.update((src, dst))
                sent = _Send(t, src, dst, f.text("type", "?"), None, None, 0)
                sends[msg_id] = sent
                order.append(msg_id)
            status = DELIVERED if kind == "deliver" else DROPPED
            sent.outcomes.append((t, status, f.text("reason") if kind == "drop" else ""))
        elif kind == "commit":
            seq, view = f.integer("seq"), f.integer("view")
            txs = event.get("txs")
            label = f"commit seq {seq} (view {view}" + (f", {txs} txs)" if txs is not None else ")")
            marks.append([t, "commit", f.integer("replica"), label, view, seq])
        elif kind == "view_change":
            view = f.integer("view")
            marks.append(
                [t, "view_change", f.integer("replica"), f"asks for view {view}", view, -1]
            )
        elif kind == "new_view":
            view = f.integer("view")
            marks.append([t, "new_view", f.integer("replica"), f"installed view {view}", view, -1])
        else:
            fault_replica = f.opt_int("replica")
            fault_kind = f.text("kind", "fault")
            if fault_kind == "byzantine" and fault_replica is not None:
                byzantine.add(fault_replica)
            detail = f.text("detail")
            label = detail if detail.startswith(fault_kind) else f"{fault_kind}: {detail}"
            label = label if detail else fault_kind
            marks.append([t, "fault", fault_replica, label, -1, -1])
    types: list[str] = []
    reasons: list[str] = []
    msgs: list[list[Any]] = []
    for msg_id in order:
        sent = sends[msg_id]
        if sent.type not in types:
            types.append(sent.type)
        outcomes = sent.outcomes or [(t_end, IN_FLIGHT, "")]
        for t_out, status, reason in outcomes:
            if reason and reason not in reasons:
                reasons.append(reason)
            msgs.append(
                [
                    sent.t,
                    max(t_out, sent.t),
                    sent.src,
                    sent.dst,
                    types.index(sent.type),
                    -1 if sent.view is None else sent.view,
                    -1 if sent.seq is None else sent.seq,
                    status,
                    sent.size,
                    reasons.index(reason) if reason else -1,
                    sent.digest or "",
                ]
            )
    msgs.sort(key=lambda m: (m[0], m[1]))
    marks.sort(key=lambda m: m[0])
    return TraceModel(
        meta=meta,
        lanes=_lanes(meta, principals, marks, byzantine),
        types=types,
        reasons=reasons,
        msgs=msgs,
        marks=marks,
        t_end=t_end,
        periods=periods(events, t_end),
        slots=slots(events, meta),
        views=view_figures(events, meta, byzantine),
        sent=dict(Counter(sends[i].type for i in order)),
    )


def _lanes(
    meta: Mapping[str, Any], seen: set[int], marks: list[list[Any]], byzantine: set[int]
) -> list[dict[str, Any]]:
    """Clients on top, then replicas in id order, as in the PBFT paper's figure."""
    n = meta["n"] if isinstance(meta.get("n"), int) else 0
    listed = meta.get("clients")
    clients = {c for c in listed if isinstance(c, int)} if isinstance(listed, list) else set()
    replicas = set(range(n)) | {m[2] for m in marks if isinstance(m[2], int)}
    replicas |= {p for p in seen if p not in clients and (n == 0 or p < n)}
    clients |= seen - replicas
    lanes = [{"id": c, "label": f"client {c}", "kind": "client"} for c in sorted(clients)]
    for r in sorted(replicas):
        label = f"replica {r}" + (" (byzantine)" if r in byzantine else "")
        lanes.append({"id": r, "label": label, "kind": "replica", "byzantine": r in byzantine})
    return lanes


# ------------------------------------------------------------------ page


def _asset(name: str) -> str:
    return resources.files("sim.trace").joinpath("assets", name).read_text(encoding="utf-8")


def _script_json(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``</script>`` or ``<!--`` can appear in it."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(model: TraceModel, title: str = "ledgersim trace") -> str:
    """The whole page: template with style, scripts and the model inlined."""
    page = _asset("trace.html")
    parts = {
        "@@TITLE@@": escape(title),
        "@@CSS@@": _asset("trace.css"),
        "@@ERRORS_JS@@": _asset("trace-errors.js"),
        "@@LABELS_JS@@": _asset("trace-labels.js"),
        "@@LAYERS_JS@@": _asset("trace-layers.js"),
        "@@SLOTS_JS@@": _asset("trace-slots.js"),
        "@@HEADER_JS@@": _asset("trace-header.js"),
        "@@JS@@": _asset("trace.js"),
        "@@DATA@@": _script_json(model.to_json()),
    }
    # One pass, so text inserted for one placeholder is never searched for another.
    return re.sub("@@[A-Z_]+@@", lambda m: parts.get(m.group(0), m.group(0)), page)


def load_model(trace_path: str | Path) -> TraceModel:
    """A trace file's model; a cut-off last line is left out with a warning in the model."""
    warnings: list[str] = []
    model = build_model(read_trace(trace_path, warnings), str(trace_path))
    model.warnings = warnings
    return model


def write_html(trace_path: str | Path, out_path: str | Path) -> TraceModel:
    """Read a trace file, write its picture; returns the model (counts for the CLI)."""
    model = load_model(trace_path)
    write_model(model, trace_path, out_path)
    return model


def write_model(model: TraceModel, trace_path: str | Path, out_path: str | Path) -> None:
    meta = model.meta
    title = f"ledgersim trace: {meta.get('scenario', Path(trace_path).stem)}"
    if "seed" in meta:
        title += f" (seed {meta['seed']})"
    try:
        Path(out_path).write_text(render_html(model, title), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{out_path}: cannot write HTML: {exc.strerror or exc}") from None
