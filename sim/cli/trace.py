"""``ledgersim trace FILE --html OUT``: turn a run's JSON-lines trace into a picture.

The trace comes from ``ledgersim run SCENARIO --trace FILE``; the page is one
self-contained HTML file (see ``sim.trace.html``), so it can be opened offline
or attached to a bug report next to the scenario and seed. ``--json`` prints
the trace's figures instead (or as well). A trace cut off by a killed run is
drawn up to its last whole line, with a warning.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sim.cli.wording import plural
from sim.errors import InputError
from sim.trace.html import load_model, write_model
from sim.trace.summary import summary


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="draw a run's message trace as a self-contained HTML page",
        description="Render a JSON-lines trace (ledgersim run --trace FILE) as a "
        "message-sequence diagram: a lane per client and replica, an arrow per message.",
    )
    parser.add_argument("trace", metavar="FILE", help="JSON-lines trace written by `run --trace`")
    parser.add_argument("--html", metavar="OUT", help="HTML file to write")
    parser.add_argument(
        "--json", action="store_true", help="print a summary of the trace as JSON on stdout"
    )
    parser.set_defaults(handler=trace_command)


def trace_command(args: argparse.Namespace) -> int:
    if not args.html and not args.json:
        raise InputError("trace: expected --html OUT, --json or both")
    model = load_model(args.trace)
    for warning in model.warnings:
        print(f"ledgersim: warning: {warning}", file=sys.stderr)
    if args.html:
        write_model(model, args.trace, args.html)
        views = model.views
        line = (
            f"wrote {args.html}: {len(model.lanes)} lanes, {model.arrows} messages "
            f"({model.drops} dropped), {plural(views.installed, 'view change')} installed "
            f"(highest view {views.highest}), {plural(model.count_marks('fault'), 'fault')}"
        )
        print(line, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(summary(model), indent=2))
    return 0
