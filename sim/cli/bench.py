"""``ledgersim bench [--quick] [--json] [--only SECTION] [--profile N]``: the benchmark suite."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sim.bench import SECTIONS, Options, run_suite
from sim.bench.report import markdown, render


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure crypto limits, simulator and live throughput",
        description="Measure primitive limits, the simulator with real and modelled crypto, "
        "and a live network, in one run; see BENCHMARKS.md.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute (CI)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--markdown", action="store_true", help="print the headline table as Markdown"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="add a cProfile run of each simulator section and show its top N functions",
    )
    parser.set_defaults(handler=run)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    options = Options(
        quick=args.quick,
        only=tuple(args.only or ()),
        profile_top=max(0, args.profile),
        progress=_progress if sys.stderr.isatty() else (lambda _m: None),
    )
    result = run_suite(options)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    elif args.markdown:
        print(markdown(result))
    else:
        print(render(result))
    failed = [name for name, s in result["sections"].items() if s["status"] == "failed"]
    return 1 if failed else 0
