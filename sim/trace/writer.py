"""JSON-lines traces of a simulated run, in the schema of docs/contracts.md.

One JSON object per line, times in virtual milliseconds. The first line is
``meta``; then ``send``/``deliver``/``drop`` per message hop (``id`` ties a
send to its delivery or drop), ``commit`` per batch executed by a replica,
``view_change`` when a replica's view grows, and ``fault`` for each scheduled
fault as it takes effect. ``sim.cli.trace`` renders this as a picture, so the
field names are a contract; extra fields may be added, none removed.

The writer is only created when a trace was asked for: the simulator's hot
loop checks ``trace is not None`` rather than calling into a no-op object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from sim.closing import Closing


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
            {"ev": "meta", "scenario": scenario, "seed": seed, "n": n, "f": f, "clients": clients}
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
    ) -> None:
        self.write(
            {
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
        )

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
                "digest": digest.hex()[:16],
                "txs": txs,
            }
        )

    def view_change(self, t: float, replica: int, view: int) -> None:
        self.write({"ev": "view_change", "t": _t(t), "replica": replica, "view": view})

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


def _t(t: float) -> float | int:
    """Times print as integers when whole, else rounded to a microsecond."""
    r = round(t, 3)
    return int(r) if r == int(r) else r
