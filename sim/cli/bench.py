"""``ledgersim bench [--quick] [--json] [--only SECTION] [--profile N] [--peer-bftsim DIR]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sim.bench import SECTIONS, Options, run_suite
from sim.bench.peer import check_directory
from sim.bench.report import markdown, render
from sim.cli.wording import plural
from sim.errors import InputError


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
    parser.add_argument(
        "--peer-bftsim",
        type=Path,
        metavar="DIR",
        help="a checkout of csienslab/BFT-Simulator (needs node): time its PBFT at n=16 "
        "right before and after ours and report the ratio",
    )
    parser.set_defaults(handler=run)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.peer_bftsim is not None:
        problem = check_directory(args.peer_bftsim)
        if problem is not None:
            raise InputError(f"--peer-bftsim: {problem}")
    options = Options(
        quick=args.quick,
        only=tuple(args.only or ()),
        profile_top=max(0, args.profile),
        peer_bftsim=args.peer_bftsim,
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
        explanation = missed_explanation(result["targets"], args.quick)
        if explanation:
            print("\n" + explanation)
    failed = [name for name, s in result["sections"].items() if s["status"] == "failed"]
    return 1 if failed else 0


def missed_explanation(targets: list[dict[str, Any]], quick: bool) -> str:
    """What a MISSED verdict means and what it does not, so the table does not end on it alone.

    Targets are goals for the full suite on an otherwise idle machine; a miss
    is reported, not failed (the exit status only reflects sections that
    could not run).
    """
    missed = [t for t in targets if t["met"] is False]
    if not missed:
        return ""
    lines = [f"{plural(len(missed), 'target')} MISSED:"]
    for t in missed:
        lines.append(
            f"  {t['name']}: measured {t['value']:.4g}, goal {t['comparison']} {t['threshold']:g}"
        )
    lines.append(
        "A miss means this machine, during this run, measured worse than the goal; it is"
        " not a failure (exit status 0)."
    )
    if quick:
        lines.append(
            "--quick runs small sizes, so fixed start-up costs weigh more: judge the targets"
            " with a full `ledgersim bench` on an idle machine (see BENCHMARKS.md)."
        )
    else:
        lines.append(
            "Other load on the machine lowers every figure: check the load average in the"
            " header and rerun when the machine is idle (see BENCHMARKS.md)."
        )
    return "\n".join(lines)
