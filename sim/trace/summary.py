"""``ledgersim trace FILE --json``: a trace's figures, for scripts and for checking a run.

The same model the picture draws is summed up here, so the page's header and
this summary cannot disagree about what happened.
"""

from __future__ import annotations

from typing import Any

from sim.trace.html import DROPPED, TraceModel


def summary(model: TraceModel) -> dict[str, Any]:
    """Messages by type, view figures, faults, commits and the virtual time spanned."""
    meta = model.meta
    times = [m[0] for m in model.msgs] + [m[0] for m in model.marks]
    faults = [{"t": m[0], "replica": m[2], "what": m[3]} for m in model.marks if m[1] == "fault"]
    views = model.views
    return {
        "scenario": meta.get("scenario"),
        "seed": meta.get("seed"),
        "n": meta.get("n"),
        "f": meta.get("f"),
        "messages": {
            "sent": sum(model.sent.values()),
            "dropped": sum(1 for m in model.msgs if m[7] == DROPPED),
            "by_type": dict(sorted(model.sent.items())),
        },
        "view_changes": views.installed,
        "views_installed": views.installed_views,
        "highest_view": views.highest,
        "view_change_attempts": views.attempts,
        "faults": faults,
        "commits": model.count_marks("commit"),
        "sequence_numbers_executed": len(
            {m[5] for m in model.marks if m[1] == "commit" and m[5] >= 0}
        ),
        "contested_sequence_numbers": [
            s["seq"] for s in model.slots if len({p[2] for p in s["proposals"]}) > 1
        ],
        "time_ms": {"first": min(times) if times else None, "last": model.t_end},
        "cut_off": bool(model.warnings),
        "warnings": model.warnings,
    }
