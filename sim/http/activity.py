"""What the network view shows of a simulated network's activity, and where each figure comes from.

Two sources, kept apart because they do not know the same things:

* **The ledger** (any peer's committed blocks), which every command leaves
  behind, whoever ran it: committed transactions and blocks per second of the
  network's clock (each block's agreed time), and a view change wherever a
  block was committed in a higher view than the one before it.
* **The sessions this gateway ran** (a submitted write is one simulated PBFT
  session, traced in memory): messages sent per second, the replicas that
  installed a new view and when, the fault events the simulator recorded,
  and replicas that sent nothing at all in the session (down, as far as the
  others can tell). Commands run outside the gateway (``ledgersim patch``
  without ``--gateway``) leave no messages here: the ledger shows their blocks
  only.

Times are the network's virtual milliseconds (``simnet.json``'s clock), not
wall time: a simulated network has no wall clock between commands.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.block import Block, ValidationCode
from sim.fabric.simnet import Session

SECOND_MS = 1_000
MAX_SECONDS = 300
"""The longest window a caller may ask for (blocks read per request grow with it)."""
KEPT_SESSIONS = 200
"""Sessions whose summaries the gateway remembers (oldest forgotten first)."""


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """What one traced session showed, reduced to what the network view draws."""

    tx_id: str
    function: str
    start_ms: int
    end_ms: int
    messages: dict[int, int]
    """Second (virtual ms // 1000) -> messages sent by replicas and clients in it."""
    events: list[dict[str, Any]]
    silent: list[int]
    """Replicas that sent no message at all during the session."""


def summarise(session: Session, replicas: int) -> SessionSummary:
    """Reduce a session's trace events to per-second message counts and marked events."""
    messages: Counter[int] = Counter()
    senders: set[int] = set()
    events: list[dict[str, Any]] = []
    installed: set[tuple[int, int]] = set()
    end_ms = session.timestamp_ms
    for event in session.trace:
        kind, t = event.get("ev"), event.get("t")
        if not isinstance(t, int | float):
            continue
        end_ms = max(end_ms, int(t))
        if kind == "send":
            messages[int(t) // SECOND_MS] += 1
            senders.add(int(event["from"]))
        elif kind == "new_view" and (event["replica"], event["view"]) not in installed:
            installed.add((event["replica"], event["view"]))
            events.append(_event(t, "view_change", "session", event["replica"], event["view"]))
        elif kind == "fault":
            detail = str(event.get("detail") or event.get("kind"))
            events.append(_event(t, "fault", "session", event.get("replica"), None, detail))
    silent = [r for r in range(replicas) if r not in senders] if session.trace else []
    for replica in silent:
        events.append(
            _event(
                end_ms, "down", "session", replica, None, f"sent nothing during {session.function}"
            )
        )
    return SessionSummary(
        session.tx_id,
        session.function,
        session.timestamp_ms,
        end_ms,
        dict(messages),
        events,
        silent,
    )


def _event(
    t: float,
    kind: str,
    source: str,
    replica: int | None,
    view: int | None,
    detail: str = "",
) -> dict[str, Any]:
    return {
        "t_ms": int(t),
        "kind": kind,
        "source": source,
        "replica": replica,
        "view": view,
        "detail": detail,
    }


@dataclass(slots=True)
class ActivityLog:
    """The summaries of the sessions this gateway ran, newest last (thread-safe)."""

    replicas: int
    sessions: deque[SessionSummary] = field(default_factory=lambda: deque(maxlen=KEPT_SESSIONS))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, sessions: Iterable[Session]) -> None:
        summaries = [summarise(s, self.replicas) for s in sessions]
        with self._lock:
            self.sessions.extend(summaries)

    def snapshot(self) -> list[SessionSummary]:
        with self._lock:
            return list(self.sessions)


def ledger_figures(blocks: Sequence[Block], since_ms: int, until_ms: int) -> dict[str, Any]:
    """Per-second committed transactions and blocks in [since, until], and view changes seen.

    ``blocks`` are consecutive, oldest first, and may start before ``since_ms``
    (the block before the window tells whether its first block changed view).
    """
    first = since_ms // SECOND_MS
    seconds = range(first, until_ms // SECOND_MS + 1)
    txs = dict.fromkeys(seconds, 0)
    count = dict.fromkeys(seconds, 0)
    events: list[dict[str, Any]] = []
    previous: Block | None = None
    for block in blocks:
        meta = block.metadata
        second = meta.timestamp_ms // SECOND_MS
        if second in txs:
            count[second] += 1
            txs[second] += sum(1 for c in meta.validation_codes if c == ValidationCode.VALID)
            if previous is not None and meta.view > previous.metadata.view:
                detail = f"block {block.number} committed in view {meta.view}"
                detail += f" (block {previous.number} in view {previous.metadata.view})"
                events.append(
                    _event(meta.timestamp_ms, "view_change", "ledger", None, meta.view, detail)
                )
        previous = block
    window_s = len(seconds)
    return {
        "per_second": [{"second": s, "transactions": txs[s], "blocks": count[s]} for s in seconds],
        "seconds": window_s,
        "tx_per_s": sum(txs.values()) / window_s,
        "events": events,
    }


def session_figures(
    summaries: Sequence[SessionSummary], since_ms: int, until_ms: int
) -> dict[str, Any]:
    """Messages per second and the marked events of the gateway's sessions in the window."""
    seconds = range(since_ms // SECOND_MS, until_ms // SECOND_MS + 1)
    messages = dict.fromkeys(seconds, 0)
    events: list[dict[str, Any]] = []
    for summary in summaries:
        for second, sent in summary.messages.items():
            if second in messages:
                messages[second] += sent
        events.extend(e for e in summary.events if since_ms <= e["t_ms"] <= until_ms)
    return {
        "per_second": [{"second": s, "messages": messages[s]} for s in seconds],
        "events": _first_of_each(events),
        "sessions": len(summaries),
    }


def _first_of_each(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop a fault or down event that repeats an earlier one: every session re-applies the
    network's Byzantine configuration, and a silent replica stays silent."""
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for event in events:
        key = (event["kind"], event["replica"], event["detail"])
        if event["kind"] in ("fault", "down"):
            if key in seen:
                continue
            seen.add(key)
        kept.append(event)
    return kept
