"""Faults struck on a live network, as a line-per-event file the gateway's network view reads.

``ledgersim nemesis`` and ``ledgersim net node kill|stop|start|restart`` append
one JSON line to ``DIR/faults.jsonl`` when they strike or heal; the HTTP
gateway (another process, started whenever) reads the lines in its window to
mark them on the console's activity strip. Wall-clock milliseconds, like the
live network's block timestamps; the file is only a record, so a line that
cannot be written (a read-only directory) is skipped rather than failing the
fault itself.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

FAULT_LOG = "faults.jsonl"
MAX_READ_BYTES = 1 << 20
"""Only the file's last MiB is read: a long nemesis history must not slow the view."""


def record(directory: Path, kind: str, replicas: list[int], phase: str, source: str) -> None:
    """Append one event: ``phase`` is ``strike`` or ``heal``; ``source`` who did it."""
    event = {
        "t_ms": time.time_ns() // 1_000_000,
        "kind": kind,
        "replicas": replicas,
        "phase": phase,
        "source": source,
    }
    with contextlib.suppress(OSError), (directory / FAULT_LOG).open("a") as out:
        out.write(json.dumps(event, sort_keys=True) + "\n")


def read(directory: Path, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
    """The events in ``[since_ms, until_ms]``, oldest first; unreadable lines are skipped."""
    path = directory / FAULT_LOG
    if not path.is_file():  # a pipe or device in its place would block or never end
        return []
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - MAX_READ_BYTES))
            raw = log.read(MAX_READ_BYTES)  # a file still growing is read up to the bound
    except OSError:
        return []
    found = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: a line of deeply nested brackets
            continue
        t = event.get("t_ms") if isinstance(event, dict) else None
        if isinstance(t, int) and since_ms <= t <= until_ms:
            found.append(event)
    return found
