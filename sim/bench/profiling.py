"""cProfile summaries small enough to print in a report and keep in JSON."""

from __future__ import annotations

import cProfile
import os
import pstats
from typing import Any

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _where(filename: str, line: int, name: str) -> str:
    if filename.startswith(_ROOT + os.sep):
        filename = os.path.relpath(filename, _ROOT)
    elif os.sep in filename:
        parts = filename.split(os.sep)
        filename = os.sep.join(parts[-2:])
    return f"{filename}:{line}({name})" if line else f"{filename}({name})"


def hotspots(profile: cProfile.Profile, top: int) -> list[dict[str, Any]]:
    """The ``top`` functions by own time, with call counts and cumulative time."""
    stats = pstats.Stats(profile)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values()) or 1.0
    rows = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return [
        {
            "function": _where(*key),
            "ncalls": entry[1],
            "tottime_s": round(entry[2], 4),
            "cumtime_s": round(entry[3], 4),
            "share": round(entry[2] / total, 4),
        }
        for key, entry in rows
    ]
