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


def _project(filename: str) -> bool:
    return filename.startswith(_ROOT + os.sep) and f"{os.sep}.venv{os.sep}" not in filename


def _row(key: Any, entry: Any, total: float) -> dict[str, Any]:
    return {
        "function": _where(*key),
        "ncalls": entry[1],
        "tottime_s": round(entry[2], 4),
        "cumtime_s": round(entry[3], 4),
        "share": round(entry[2] / total, 4),
        "cum_share": round(entry[3] / total, 4),
    }


def hotspots(profile: cProfile.Profile, top: int) -> dict[str, list[dict[str, Any]]]:
    """The ``top`` functions by own time, and the project's ``top`` by cumulative time.

    Own time finds the leaves that burn the CPU; cumulative time, restricted
    to the project's code and leaving out the drivers (anything holding most
    of the run), says which of our subsystems they are spent in.
    """
    stats = pstats.Stats(profile)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values()) or 1.0
    own = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
    ours = [
        item
        for item in table.items()
        if _project(item[0][0]) and item[1][3] < 0.9 * total and "bench" not in item[0][0]
    ]
    cumulative = sorted(ours, key=lambda item: item[1][3], reverse=True)[:top]
    return {
        "own": [_row(key, entry, total) for key, entry in own],
        "cumulative": [_row(key, entry, total) for key, entry in cumulative],
    }
