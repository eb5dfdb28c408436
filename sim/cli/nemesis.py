"""``ledgersim nemesis --network DIR``: faults under load on a live network, then checks.

See ``sim.live.nemesis`` for what is done and checked. The table (or
``--json``) is printed on stdout, progress on stderr; the exit status is 1
when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sim.errors import InputError


def register(subparsers: Any) -> None:
    from sim.live.schedule import DEFAULT_KINDS, KINDS

    parser = subparsers.add_parser(
        "nemesis", help="faults under load on a live network, then safety and recovery checks"
    )
    parser.add_argument("--network", type=Path, required=True, help="live network directory")
    parser.add_argument("--seed", type=int, default=1, help="fixes the fault schedule")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of load")
    parser.add_argument("--rate", type=float, help="tx/s (default: 70%% of measured capacity)")
    parser.add_argument(
        "--faults",
        default=",".join(DEFAULT_KINDS),
        help=f"comma list of {', '.join(KINDS)} (default: all but kill-two and bridge-cut)",
    )
    parser.add_argument(
        "--recovery-limit", type=float, default=20.0, help="seconds for commits to resume"
    )
    parser.add_argument("--plot", type=Path, metavar="SVG", help="write the timeline picture")
    parser.add_argument("--json", action="store_true", help="machine-readable report")
    parser.set_defaults(handler=_nemesis)


def _nemesis(args: argparse.Namespace) -> int:
    from sim.cli.load import quiet_mqtt
    from sim.live.nemesis import run_nemesis
    from sim.live.plot import write_svg
    from sim.live.schedule import parse_kinds

    kinds = parse_kinds(args.faults)
    if args.duration < 10:
        raise InputError(f"--duration: expected at least 10 seconds, got {args.duration:g}")
    if args.rate is not None and args.rate <= 0:
        raise InputError(f"--rate: expected a positive number, got {args.rate:g}")
    quiet_mqtt()

    def say(text: str) -> None:
        print(f"nemesis: {text}", file=sys.stderr, flush=True)

    report = asyncio.run(
        run_nemesis(
            args.network,
            seed=args.seed,
            duration_s=args.duration,
            kinds=kinds,
            rate=args.rate,
            recovery_limit_s=args.recovery_limit,
            say=say,
        )
    )
    if args.plot is not None:
        write_svg(report, args.plot)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0 if report["ok"] else 1


def print_table(report: dict[str, Any]) -> None:
    load = report["load"]
    print(
        f"network {report['network']}  seed {report['seed']}  {report['rate']:g} tx/s for "
        f"{report['duration_s']:g} s: committed {load['committed']}, refused {load['refused']}, "
        f"timed out {load['timed_out']}, errors {load['error']}, p99 {load['latency_ms']['p99']} ms"
    )
    print(f"{'at s':>6} {'healed':>6}  fault")
    for fault in report["faults"]:
        print(f"{fault['struck_s']:>6} {fault['healed_s']:>6}  {fault['kind']} {fault['targets']}")
    nodes = "  ".join(
        f"{n['id']}: view {n['view']}{' (changing)' if n['in_view_change'] else ''} "
        f"height {n['height']}"
        for n in report["nodes"]
    )
    print(f"nodes at the end  {nodes}")
    print(f"{'check':<26} {'':<4}  detail")
    for check in report["checks"]:
        print(f"{check['name']:<26} {'ok' if check['ok'] else 'FAIL':<4}  {check['detail']}")
    print("all checks passed" if report["ok"] else "SOME CHECKS FAILED")
