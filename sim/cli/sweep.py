"""``ledgersim sweep SCENARIO.toml --seeds A..B``: many seeds, and every failing one replayable.

The table (or ``--json``) sums the runs up; each failing seed is printed with
the exact ``ledgersim run`` command that replays it, and the sweep exits 1 if
any seed failed, so CI can run a shard of seeds per machine with ``--shard``.
Ctrl-C prints the summary of the seeds done so far and exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sim.errors import InputError, RunFailed
from sim.explore.sweep import SweepReport, load_replica_class, parse_seeds, parse_shard, sweep
from sim.progress import ProgressBar
from sim.scenario.reader import load_scenario


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a scenario over many seeds in parallel",
        description="Run a scenario for every seed in A..B (inclusive) and report failing seeds.",
    )
    parser.add_argument("scenario", metavar="SCENARIO.toml", help="scenario file (TOML)")
    parser.add_argument("--seeds", required=True, metavar="A..B", help="seed range, inclusive")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPUs)")
    parser.add_argument(
        "--shard", metavar="i/k", help="only seeds number i, i+k, i+2k, ... of the range (0-based)"
    )
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the seeds as tasks on this Dask scheduler (e.g. tcp://head:8786) instead of "
        "local processes",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--replica", metavar="MODULE:CLASS", help=argparse.SUPPRESS)
    parser.set_defaults(handler=sweep_command)


def sweep_command(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    seeds = parse_seeds(args.seeds)
    shard = parse_shard(args.shard) if args.shard else None
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    if args.dask is not None and args.jobs is not None:
        raise InputError("--dask and --jobs: choose one (--jobs is for local processes)")
    if args.replica:
        load_replica_class(args.replica)  # fail here, once, rather than in every worker
    bar = ProgressBar(
        f"{scenario.name} sweep",
        unit="seeds",
        enabled=False if args.json else None,
        show_failures=True,
        show_eta=True,
        plain_every=0.1,  # off a terminal: a line per 10% of the seeds
    )
    with bar:
        report = sweep(
            scenario,
            seeds,
            jobs=args.jobs,
            replica_spec=args.replica,
            shard=shard,
            progress=bar,
            dask=args.dask,
        )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_sweep(report))
    if report.interrupted:
        print(
            f"ledgersim: interrupted: {len(report.outcomes)} of {report.planned} seeds done",
            file=sys.stderr,
        )
        return 130
    if report.failed:
        first = report.failed[0]
        raise RunFailed(
            f"{len(report.failed)} of {len(report.outcomes)} seeds failed; "
            f"first: {report.command(first.seed)}"
        )
    return 0


def format_sweep(report: SweepReport) -> str:
    data = report.to_json()
    shard = f", shard {data['shard']}" if data["shard"] else ""
    lines = [
        f"scenario      {report.scenario}  ({report.source})",
        f"seeds         {data['seeds'][0]}..{data['seeds'][-1]}{shard}"
        if report.seeds
        else "seeds  none",
        f"runs          {data['runs']}  passed {data['passed']}  failed {data['failures']}"
        f"  (wall {data['wall_s']:.1f} s)",
    ]
    if report.interrupted:
        lines.append(f"interrupted   after {data['runs']} of {data['planned']} seeds")
    rows = [
        ("view changes", data["view_changes"]),
        ("committed", data["committed"]),
        ("latency p50 ms", data["latency_ms"]["p50"]),
        ("latency p99 ms", data["latency_ms"]["p99"]),
    ]
    lines += ["", f"{'over seeds':<16}{'min':>10}{'p50':>10}{'p90':>10}{'max':>10}{'mean':>10}"]
    for label, dist in rows:
        if dist is None:
            continue
        cells = "".join(f"{_num(dist[k]):>10}" for k in ("min", "p50", "p90", "max", "mean"))
        lines.append(f"{label:<16}{cells}")
    if report.failed:
        lines += ["", "failing seeds (each line replays one exactly):"]
        for outcome in report.failed:
            lines.append(f"  seed {outcome.seed}: {'; '.join(outcome.failures)}")
            lines.append(f"    {report.command(outcome.seed)}")
    return "\n".join(lines)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
