"""What must hold in every run, checked against what the simulator observed.

The simulator fills a :class:`History` as the run goes (cheap appends, no
checks in the hot loop); each check below reads it and returns a list of
violation strings, empty when the property holds. They are public so property
tests and researchers' own harnesses can call them one by one.

Safety (must hold under *any* schedule inside the fault model):

* :func:`agreement` — no two correct replicas execute different batches at
  one sequence number, and none executes two different batches at one
  sequence number across its restarts; the chained head digests agree too
  (catches an application that diverges on equal batches);
* :func:`validity` — a correct replica executes only requests some client
  submitted (same operation), and each (client, timestamp) at most once;
* :func:`monotonic_views` — a correct replica's view never goes back within
  one incarnation (a restart may legitimately resume from an older view);
* :func:`stable_checkpoints` — a replica's stable checkpoint never goes back
  within an incarnation, and when it carries a digest, that digest is what
  correct replicas computed at that sequence number;
* :func:`bounded_log` — a replica's protocol log (sampled through
  ``memory_footprint()["slots"]`` when the replica offers it) stays within
  twice the watermark window.

Liveness (promised only inside the fault model once the network heals):

* :func:`liveness` — every submitted request completes within ``bound_ms``
  after ``max(submitted, GST)``.

"Correct" excludes every replica that is Byzantine at any time in the run;
crashed-and-recovered replicas stay correct (crash faults keep their state).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.trace.derive import ViewFigures

RequestKey = tuple[int, int]
"""(client id, client timestamp): PBFT's identity of a request."""

MAX_REPORTED = 20
"""Listing every violation of a badly broken run helps no one; the count is kept."""


@dataclass(slots=True)
class History:
    """Facts a run produced, as plain data (the simulator appends to it)."""

    n: int
    byzantine: frozenset[int] = frozenset()
    submitted: dict[RequestKey, tuple[bytes, float]] = field(default_factory=dict)
    """Request -> (operation, virtual time it was submitted)."""
    completed: dict[RequestKey, float] = field(default_factory=dict)
    """Request -> virtual time its client accepted the result."""
    executed: dict[int, dict[int, bytes]] = field(default_factory=dict)
    """Replica -> seq -> batch digest, for every batch it executed."""
    conflicts: list[tuple[int, str]] = field(default_factory=list)
    """(replica, message): same replica, same seq, different digest (seen while recording)."""
    heads: dict[int, dict[int, bytes]] = field(default_factory=dict)
    """Replica -> seq -> chained head digest after executing seq."""
    requests: dict[int, list[tuple[int, Sequence[tuple[int, int, bytes]]]]] = field(
        default_factory=dict
    )
    """Replica -> per executed batch, (seq, its executed requests as (client, timestamp,
    operation)). Kept as given: replicas executing one batch share one sequence."""
    views: dict[int, list[list[int]]] = field(default_factory=dict)
    """Replica -> per incarnation, the successive views it reported."""
    stable: dict[int, list[list[tuple[int, bytes | None]]]] = field(default_factory=dict)
    """Replica -> per incarnation, successive stable checkpoints (seq, digest if known)."""
    log_slots: dict[int, int] = field(default_factory=dict)
    """Replica -> the most protocol-log slots it was seen holding (sampled)."""
    view_figures: ViewFigures = field(default_factory=ViewFigures)
    """Correct replicas' view-change attempts and installs: the run's ``view_changes``,
    ``highest_view`` and ``view_change_attempts``, defined once for runs and traces."""

    @property
    def correct(self) -> list[int]:
        return [r for r in range(self.n) if r not in self.byzantine]

    # -------------------------------------------------------------- recording

    def record_execution(
        self,
        replica: int,
        seq: int,
        digest: bytes,
        head: bytes | None,
        requests: Iterable[tuple[int, int, bytes]],
    ) -> None:
        """``requests`` are the ones it ran (not stale ones); a tuple is kept as it is."""
        # get-then-create rather than setdefault, which builds a default on every call.
        seen = self.executed.get(replica)
        if seen is None:
            seen = self.executed[replica] = {}
        before = seen.get(seq)
        if before is not None and before != digest:
            self.conflicts.append(
                (
                    replica,
                    f"agreement: replica {replica} executed seq {seq} twice with different "
                    f"batches {before.hex()[:12]} and {digest.hex()[:12]}",
                )
            )
        seen[seq] = digest
        if head is not None:
            heads = self.heads.get(replica)
            if heads is None:
                heads = self.heads[replica] = {}
            heads[seq] = head
        executed = requests if type(requests) is tuple else tuple(requests)
        ran = self.requests.get(replica)
        if ran is None:
            ran = self.requests[replica] = []
        ran.append((seq, executed))

    def new_incarnation(self, replica: int) -> None:
        self.views.setdefault(replica, []).append([])
        self.stable.setdefault(replica, []).append([])

    def record_view(self, replica: int, view: int) -> None:
        lives = self.views.setdefault(replica, [[]])
        lives[-1].append(view)

    def record_view_attempt(self, replica: int, view: int) -> None:
        """``replica`` moved up to ``view``; only correct replicas' moves are counted."""
        if replica not in self.byzantine:
            self.view_figures.attempt(view)

    def record_view_install(self, replica: int, view: int) -> None:
        """``replica`` started working in ``view`` (``sim.trace.derive.installs_view``)."""
        if replica not in self.byzantine:
            self.view_figures.install(view)

    def record_log_size(self, replica: int, slots: int) -> None:
        if slots > self.log_slots.get(replica, 0):
            self.log_slots[replica] = slots

    def record_stable(self, replica: int, seq: int, digest: bytes | None) -> None:
        lives = self.stable.setdefault(replica, [[]])
        lives[-1].append((seq, digest))


# ----------------------------------------------------------------- the checks


def _capped(violations: list[str]) -> list[str]:
    if len(violations) <= MAX_REPORTED:
        return violations
    extra = len(violations) - MAX_REPORTED
    return [*violations[:MAX_REPORTED], f"... and {extra} more"]


def _first_disagreement(
    history: History, table: dict[int, dict[int, bytes]], what: str
) -> list[str]:
    out: list[str] = []
    decided: dict[int, tuple[int, bytes]] = {}
    for replica in history.correct:
        for seq, digest in sorted(table.get(replica, {}).items()):
            first = decided.get(seq)
            if first is None:
                decided[seq] = (replica, digest)
            elif first[1] != digest:
                out.append(
                    f"agreement: seq {seq}: replica {first[0]} {what} {first[1].hex()[:12]}, "
                    f"replica {replica} {what} {digest.hex()[:12]}"
                )
    return out


def agreement(history: History) -> list[str]:
    out = [text for replica, text in history.conflicts if replica not in history.byzantine]
    out += _first_disagreement(history, history.executed, "executed batch")
    if not out:
        out += _first_disagreement(history, history.heads, "reached head")
    return _capped(out)


def validity(history: History) -> list[str]:
    out: list[str] = []
    submitted = history.submitted
    # Replicas executing one batch share its tuple (``History.requests``): whether every
    # request in it was submitted as it is, is worked out once per tuple.
    keys_of: dict[int, tuple[RequestKey, ...] | None] = {}
    # The verdict on a replica depends on its (seq, requests) list alone, and correct
    # replicas usually ran the same one: a list equal to one found clean is clean too.
    clean: list[list[tuple[int, Sequence[tuple[int, int, bytes]]]]] = []
    for replica in history.correct:
        ran = history.requests.get(replica, [])
        if ran in clean:
            continue
        found = len(out)
        seen: dict[RequestKey, int] = {}
        for seq, executed in ran:
            ident = id(executed)  # unique: the history holds every tuple
            if ident in keys_of:
                keys = keys_of[ident]
            else:
                keys = keys_of[ident] = _submitted_keys(executed, submitted)
            if keys is not None and seen.keys().isdisjoint(keys):
                seen.update(dict.fromkeys(keys, seq))
                continue
            judge_requests(replica, seq, executed, submitted, seen, out)
        if len(out) == found:
            clean.append(ran)
    return _capped(out)


def judge_requests(
    replica: int,
    seq: int,
    executed: Sequence[tuple[int, int, bytes]],
    submitted: dict[RequestKey, tuple[bytes, float]],
    seen: dict[RequestKey, int],
    out: list[str],
) -> None:
    """Validity of one executed batch, request by request, for one replica.

    ``seen`` maps each request the replica executed earlier to its sequence
    number (a repeat is a violation); the batch's requests are added to it.
    """
    for client, timestamp, operation in executed:
        key = (client, timestamp)
        known = submitted.get(key)
        if known is None:
            out.append(
                f"validity: replica {replica} executed request {key} at seq {seq} "
                "that no client submitted"
            )
        elif known[0] != operation:
            out.append(
                f"validity: replica {replica} executed request {key} at seq {seq} "
                "with an operation its client did not submit"
            )
        if key in seen:
            out.append(
                f"validity: replica {replica} executed request {key} twice "
                f"(seq {seen[key]} and {seq})"
            )
        else:
            seen[key] = seq


def _submitted_keys(
    executed: Sequence[tuple[int, int, bytes]], submitted: dict[RequestKey, tuple[bytes, float]]
) -> tuple[RequestKey, ...] | None:
    """The (client, timestamp) of each request, if each was submitted with its operation
    and none repeats; None if any of that fails (``validity`` then reports request by request).
    """
    keys = tuple([(client, timestamp) for client, timestamp, _ in executed])
    if len(set(keys)) != len(keys):
        return None
    for (_client, _timestamp, operation), key in zip(executed, keys, strict=True):
        known = submitted.get(key)
        if known is None or known[0] != operation:
            return None
    return keys


def monotonic_views(history: History) -> list[str]:
    out: list[str] = []
    for replica in history.correct:
        for life, views in enumerate(history.views.get(replica, [])):
            for before, after in itertools.pairwise(views):
                if after < before:
                    out.append(
                        f"views: replica {replica} went from view {before} back to {after} "
                        f"(incarnation {life})"
                    )
    return _capped(out)


def stable_checkpoints(history: History) -> list[str]:
    out: list[str] = []
    for replica in history.correct:
        for life, points in enumerate(history.stable.get(replica, [])):
            for (s1, _), (s2, _) in itertools.pairwise(points):
                if s2 < s1:
                    out.append(
                        f"checkpoints: replica {replica}'s stable checkpoint went back "
                        f"from {s1} to {s2} (incarnation {life})"
                    )
            for seq, digest in points:
                if digest is None or seq == 0:
                    continue
                for other in history.correct:
                    head = history.heads.get(other, {}).get(seq)
                    if head is not None and head != digest:
                        out.append(
                            f"checkpoints: replica {replica} holds stable checkpoint {seq} "
                            f"with digest {digest.hex()[:12]} but replica {other} reached "
                            f"{head.hex()[:12]} there"
                        )
                        break
    return _capped(out)


def bounded_log(history: History, watermark_window: int) -> list[str]:
    """A correct replica's log never outgrows its watermarks (with slack for one window).

    The watermarks exist to bound memory and stop a faulty primary from
    exhausting sequence numbers (OSDI'99 4.2); a log far longer than the window
    means some message outside it was accepted.
    """
    limit = 2 * watermark_window
    return _capped(
        [
            f"memory: replica {replica} held {slots} log slots, more than 2L = {limit}"
            for replica, slots in sorted(history.log_slots.items())
            if replica not in history.byzantine and slots > limit
        ]
    )


def safety(history: History, watermark_window: int | None = None) -> list[str]:
    """Every safety check; empty means the run was safe."""
    found = agreement(history) + validity(history) + monotonic_views(history)
    found += stable_checkpoints(history)
    if watermark_window is not None:
        found += bounded_log(history, watermark_window)
    return found


def liveness(history: History, gst_ms: float, bound_ms: float, end_ms: float) -> list[str]:
    """Requests unanswered when ``max(submitted, gst) + bound`` passed (before ``end_ms``)."""
    out: list[str] = []
    for key, (_op, submitted_at) in sorted(history.submitted.items()):
        deadline = max(submitted_at, gst_ms) + bound_ms
        if deadline > end_ms:
            continue
        done = history.completed.get(key)
        if done is None:
            out.append(
                f"liveness: request {key} submitted at {submitted_at:.0f} ms never completed "
                f"(deadline {deadline:.0f} ms)"
            )
        elif done > deadline:
            out.append(
                f"liveness: request {key} completed at {done:.0f} ms, after its deadline "
                f"{deadline:.0f} ms"
            )
    return _capped(out)


def liveness_bound_ms(view_change_timeout_ms: int, f: int, max_latency_ms: float) -> float:
    """A generous bound: f+1 successive view changes with doubling timeouts, plus slack."""
    return float(view_change_timeout_ms) * (2 ** (f + 2)) + 200.0 * max_latency_ms + 1000.0


def summary(violations: list[str]) -> dict[str, Any]:
    return {"ok": not violations, "violations": violations}
