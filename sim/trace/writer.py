"""JSON-lines traces of a simulated run, in the schema of docs/contracts.md.

One JSON object per line, times in virtual milliseconds. The first line is
``meta``; then ``send``/``deliver``/``drop`` per message hop (``id`` ties a
send to its delivery or drop), ``commit`` per batch executed by a replica,
``view_change`` when a replica's view grows (it may be a view change that
never completes), ``new_view`` when a correct replica installs a view and
starts working in it (what "view changes" counts), and ``fault`` for each
scheduled fault as it takes effect. PRE-PREPARE, PREPARE and COMMIT sends carry
the batch digest's first 16 hex digits, so rival proposals for one sequence
number can be told apart. ``sim.cli.trace`` renders this as a picture, so the
field names are a contract; extra fields may be added, none removed.

The writer is only created when a trace was asked for: the simulator's hot
loop checks ``trace is not None`` rather than calling into a no-op object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from sim.closing import Closing
from sim.trace.derive import installs_view


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False)


class TraceWriter(Closing):
    """Writes trace events to a path (owned and closed here) or a text stream."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, (str, Path)):
            self._out: IO[str] = open(target, "w", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._out = target
            self._owned = False
        self.events = 0

    def write(self, event: dict[str, Any]) -> None:
        self._out.write(_dump(event))
        self._out.write("\n")
        self.events += 1

    def meta(self, scenario: str, seed: int, n: int, f: int, clients: list[int]) -> None:
        self.write(
            {
                "ev": "meta",
                "scenario": scenario,
                "seed": seed,
                "n": n,
                "f": f,
                "clients": clients,
            }
        )

    def send(
        self,
        t: float,
        msg_id: int,
        src: int,
        dst: int,
        kind: str,
        view: int | None,
        seq: int | None,
        size: int,
        digest: bytes | None = None,
    ) -> None:
        event: dict[str, Any] = {
            "ev": "send",
            "t": _t(t),
            "id": msg_id,
            "from": src,
            "to": dst,
            "type": kind,
            "view": view,
            "seq": seq,
            "bytes": size,
        }
        if isinstance(digest, bytes):
            event["digest"] = short_digest(digest)
        self.write(event)

    def deliver(self, t: float, msg_id: int, src: int, dst: int, kind: str) -> None:
        self.write(
            {"ev": "deliver", "t": _t(t), "id": msg_id, "from": src, "to": dst, "type": kind}
        )

    def drop(self, t: float, msg_id: int, src: int, dst: int, kind: str, reason: str) -> None:
        self.write(
            {
                "ev": "drop",
                "t": _t(t),
                "id": msg_id,
                "from": src,
                "to": dst,
                "type": kind,
                "reason": reason,
            }
        )

    def commit(self, t: float, replica: int, seq: int, view: int, digest: bytes, txs: int) -> None:
        self.write(
            {
                "ev": "commit",
                "t": _t(t),
                "replica": replica,
                "seq": seq,
                "view": view,
                "digest": short_digest(digest),
                "txs": txs,
            }
        )

    def view_change(self, t: float, replica: int, view: int) -> None:
        self.write({"ev": "view_change", "t": _t(t), "replica": replica, "view": view})

    def view_installed(
        self, t: float, replica: int, before: tuple[int, bool] | None, after: tuple[int, bool]
    ) -> None:
        """A ``new_view`` event when a step left the replica working in a view above 0
        that it was not working in before (via NEW-VIEW, or catching up to one)."""
        if installs_view(before, after):
            self.write({"ev": "new_view", "t": _t(t), "replica": replica, "view": after[0]})

    def fault(self, t: float, kind: str, replica: int | None, detail: str) -> None:
        event: dict[str, Any] = {"ev": "fault", "t": _t(t), "kind": kind}
        if replica is not None:
            event["replica"] = replica
        event["detail"] = detail
        self.write(event)

    def close(self) -> None:
        if self._owned:
            self._out.close()
        else:
            self._out.flush()


def view_state(replica: Any) -> tuple[int, bool]:
    """``(view, in a view change)`` of a replica, compared before and after each step."""
    return int(replica.view), bool(getattr(replica, "in_view_change", False))


def short_digest(digest: bytes) -> str:
    """Enough of a digest to tell batches apart on a picture (and match commits to proposals)."""
    return digest.hex()[:16]


def _t(t: float) -> float | int:
    """Times print as integers when whole, else rounded to a microsecond."""
    r = round(t, 3)
    return int(r) if r == int(r) else r
