"""``ledgersim hunt SCENARIO.toml --minutes M``: new fault schedules until one breaks the claim.

Prints schedules tried and schedules per minute; on a violation it writes the
shrunk scenario (``--out``, default ``hunt-repro.toml``), prints the command
that replays it, and exits 1, so a night-long hunt in a batch job says plainly
whether it found something.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from sim.cli.args import seed as seed_arg
from sim.cli.wording import plural
from sim.errors import InputError, RunFailed
from sim.explore.hunt import HuntReport, hunt
from sim.explore.strategies import ALL_BEHAVIOURS, DEFAULT_BEHAVIOURS
from sim.explore.sweep import load_replica_class, reproduce_command
from sim.scenario.reader import load_scenario

MAX_MINUTES = 7 * 24 * 60.0
PROGRESS_EVERY_S = 10.0
"""A progress line on stderr at most this often (wall seconds), terminal or not."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hunt",
        help="draw new fault schedules until the time is up or one breaks PBFT's claim",
        description=(
            "Keep the scenario's network and workload, draw fault schedules from the public "
            "strategies, and stop at the first run that is unsafe or (inside the fault model) "
            "does not commit every request; that run is shrunk and written as a scenario file."
        ),
    )
    parser.add_argument("scenario", metavar="SCENARIO.toml", help="scenario file (TOML)")
    parser.add_argument("--minutes", type=_minutes, required=True, help="how long to hunt")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed of the hunt (default 0)")
    parser.add_argument(
        "--beyond-model",
        action="store_true",
        help="allow up to n-1 faulty replicas and cuts that never heal (only safety is claimed)",
    )
    parser.add_argument(
        "--behaviours",
        metavar="A,B",
        help="Byzantine behaviours to draw from, or 'all' to add the proof forgers "
        f"(default: {','.join(DEFAULT_BEHAVIOURS)})",
    )
    parser.add_argument("--out", metavar="FILE", default="hunt-repro.toml", help="repro file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--replica", metavar="MODULE:CLASS", help="hunt against this replica class (a mutant)"
    )
    parser.set_defaults(handler=hunt_command)


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--minutes: expected a number of minutes > 0, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_MINUTES):
        raise InputError(f"--minutes: expected a number > 0 and <= {MAX_MINUTES:g}, got {text}")
    return value


def _check_out(out: Path) -> None:
    """Refuse an unwritable --out before hunting: found after hours, the repro would be lost."""
    folder = out.parent
    if not folder.is_dir():
        raise InputError(f"--out: no such directory {folder}")
    if out.is_dir() or not os.access(folder, os.W_OK):
        raise InputError(f"--out: cannot write {out}")


def _behaviours(text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_BEHAVIOURS
    if text.strip() == "all":
        return ALL_BEHAVIOURS
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in ALL_BEHAVIOURS]
    if unknown or not chosen:
        raise InputError(
            f"--behaviours: unknown {', '.join(unknown) or '(none given)'}; "
            f"expected 'all' or some of {', '.join(ALL_BEHAVIOURS)}"
        )
    return chosen


def hunt_command(args: argparse.Namespace) -> int:
    base = load_scenario(args.scenario)
    behaviours = _behaviours(args.behaviours)
    _check_out(Path(args.out))
    replica_class = load_replica_class(args.replica) if args.replica else None

    last_line = [0.0]

    def on_round(report: HuntReport) -> None:
        if not args.json and report.wall_s - last_line[0] >= PROGRESS_EVERY_S:
            last_line[0] = report.wall_s
            print(
                f"hunt: {report.tried} schedules, {report.per_minute:g}/min, no violation yet",
                file=sys.stderr,
                flush=True,
            )

    report = hunt(
        base,
        minutes=args.minutes,
        seed=args.seed,
        beyond_model=args.beyond_model,
        behaviours=behaviours,
        replica_class=replica_class,
        on_round=on_round,
    )
    command = None
    if report.violation is not None:
        out = Path(args.out)
        try:
            out.write_text(report.violation.toml)
        except OSError as exc:
            raise InputError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
        command = reproduce_command(str(out), report.violation.result.seed, args.replica)
    if args.json:
        data = report.to_json()
        data["reproduce"] = command
        print(json.dumps(data, indent=2))
    else:
        print(format_hunt(report, command))
    if report.interrupted:
        print("ledgersim: hunt interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    if report.violation is not None:
        raise RunFailed(f"hunt found a violation; replay it with: {command}")
    return 0


def format_hunt(report: HuntReport, command: str | None) -> str:
    model = "beyond the fault model (safety)" if report.beyond_model else "inside the fault model"
    lines = [
        f"scenario        {report.scenario}  ({model})",
        f"schedules       {report.tried} in {report.wall_s:.1f} s  "
        f"({report.per_minute:g} per minute, {report.rounds} rounds)",
    ]
    if report.interrupted:
        lines.append("stopped         by Ctrl-C before the time was up")
    if report.violation is None:
        lines.append("violations      none")
        return "\n".join(lines)
    found = report.violation
    lines.append(f"violation       {'; '.join(found.reasons)}")
    faults = plural(len(found.scenario.faults), "fault")
    lines.append(f"shrunk to       {faults}, seed {found.result.seed}")
    lines.append(f"replay          {command}")
    return "\n".join(lines)
