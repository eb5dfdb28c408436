"""``ledgersim trace FILE --html OUT``: turn a run's JSON-lines trace into a picture.

The trace comes from ``ledgersim run SCENARIO --trace FILE``; the page is one
self-contained HTML file (see ``sim.trace.html``), so it can be opened offline
or attached to a bug report next to the scenario and seed.
"""

from __future__ import annotations

import argparse
from typing import Any

from sim.trace.html import write_html


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="draw a run's message trace as a self-contained HTML page",
        description="Render a JSON-lines trace (ledgersim run --trace FILE) as a "
        "message-sequence diagram: a lane per client and replica, an arrow per message.",
    )
    parser.add_argument("trace", metavar="FILE", help="JSON-lines trace written by `run --trace`")
    parser.add_argument("--html", required=True, metavar="OUT", help="HTML file to write")
    parser.set_defaults(handler=trace_command)


def trace_command(args: argparse.Namespace) -> int:
    model = write_html(args.trace, args.html)
    print(
        f"wrote {args.html}: {len(model.lanes)} lanes, {model.arrows} messages "
        f"({model.drops} dropped), {model.count_marks('view_change')} view changes, "
        f"{model.count_marks('fault')} faults"
    )
    return 0
