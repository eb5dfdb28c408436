"""``ledgersim run SCENARIO.toml``: one scenario, one seed, judged against its ``[expect]``.

The human output is a summary, a per-replica table and one ✓/✗ line per
expectation; ``--json`` prints the simulator's ``RunResult.to_json()`` object
(docs/design.md, "The command line", fixes its keys) so scripts never parse the table. A failed
expectation exits 1 and names what failed on stderr, after the output, so
``--json`` consumers still get the whole result.

With ``--data-dir DIR`` the run leaves what ``ledgersim ledger verify`` needs:
each replica's node directory and the network's MSP tree in ``DIR/crypto``
(the identities the run used, so signatures and, when the replicas sign with
real keys, each block's commit certificate check against them); the human
output ends with the exact command.
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from sim.cli.args import seed
from sim.cli.wording import plural
from sim.errors import InputError, RunFailed
from sim.explore.sweep import failed_expectations, load_replica_class
from sim.fabric.channel import CHAINCODES
from sim.progress import ProgressBar
from sim.scenario.model import Scenario
from sim.scenario.reader import load_scenario, show


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one scenario in the deterministic simulator",
        description="Run a scenario file in the deterministic simulator and check its [expect].",
    )
    parser.add_argument("scenario", metavar="SCENARIO.toml", nargs="?", help="scenario file (TOML)")
    parser.add_argument("--seed", type=seed, default=None, help="override the file's seed")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--trace", metavar="FILE", help="write a JSON-lines trace of every message")
    parser.add_argument("--data-dir", metavar="DIR", help="keep each replica's node directory here")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar and no table; only failures"
    )
    parser.add_argument(
        "--replica",
        metavar="MODULE:CLASS",
        help="run this replica class instead of pbft.replica.Replica (a mutant, an experiment)",
    )
    parser.add_argument(
        "--list-behaviours",
        action="store_true",
        help="list the Byzantine behaviours, their options and the attack each mounts; then exit",
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    if args.list_behaviours:
        print(behaviour_listing())
        return 0
    if args.scenario is None:
        raise InputError("run: a SCENARIO.toml is required (or --list-behaviours)")
    scenario = load_scenario(args.scenario)
    if (
        args.data_dir is not None
        and Path(args.data_dir).exists()
        and not Path(args.data_dir).is_dir()
    ):
        raise InputError(f"--data-dir: {args.data_dir}: expected a directory")
    kwargs: dict[str, Any] = {}
    if args.replica:
        kwargs["replica_class"] = load_replica_class(args.replica)
    if args.data_dir is not None:
        kwargs["data_dir"] = args.data_dir

    from sim.world.results import check_expectations
    from sim.world.simulation import run_scenario

    seed = scenario.seed if args.seed is None else args.seed
    bar = ProgressBar(
        f"{scenario.name} seed {seed}",
        scenario.duration_ms,
        unit="ms",
        enabled=False if args.quiet or args.json else None,
    )
    with ExitStack() as stack:
        if args.trace is not None:
            kwargs["trace"] = stack.enter_context(_open_trace(args.trace))
        with bar:
            result = run_scenario(scenario, seed, progress=bar, **kwargs)
    checks = check_expectations(scenario.expect, result)
    failures = failed_expectations(checks)
    summary = result.to_json()
    verify = None if args.data_dir is None else _leave_msp(scenario, Path(args.data_dir))
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=False))
    elif not args.quiet:
        print(format_run(scenario, summary, checks))
        if verify is not None:
            print(f"\nverify a replica's ledger:  {verify}")
    if failures:
        raise RunFailed(
            f"{scenario.source}: seed {seed}: expectation failed: " + "; ".join(failures)
        )
    return 0


def _leave_msp(scenario: Scenario, data_dir: Path) -> str | None:
    """Write the MSP tree next to the node directories; return the ``ledger verify`` command.

    None when the run kept no ledger (the ``none`` workload). With modelled
    crypto the transactions are still signed with the tree's keys, but the
    replicas' COMMITs carry HMACs no certificate vouches for, so the command
    skips commit certificates.
    """
    from sim.world.auth import network_crypto

    if scenario.workload.chaincode not in CHAINCODES:
        return None
    msp = data_dir / "crypto"
    network_crypto(scenario).write(msp)
    replica = shlex.quote(str(data_dir / "replica-0"))
    command = f"ledgersim ledger verify {replica} --msp {shlex.quote(str(msp))}"
    return command + (" --no-certificates" if scenario.network.crypto == "modelled" else "")


def _open_trace(path: str) -> TextIO:
    """Opened here, before the run, so an unwritable path is bad input, not a traceback."""
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--trace: {path}: cannot write: {exc.strerror or exc}") from None


# ------------------------------------------------------------------ table


def behaviour_listing() -> str:
    """Each behaviour: its name, the attack (its docstring's first line), its options."""
    from sim.scenario.reader import behaviour_options
    from sim.world.byzantine import BEHAVIOURS

    lines: list[str] = []
    for name, options in sorted(behaviour_options().items()):
        doc = (BEHAVIOURS[name].__doc__ or "").strip()
        attack = " ".join(doc.split("\n\n")[0].split())
        lines.append(f"{name}\n    {attack}")
        lines += [f"    - {option.describe()}" for option in options.values()]
        if not options:
            lines.append("    (no options)")
    return "\n".join(lines)


def format_run(
    scenario: Scenario, summary: dict[str, Any], checks: Mapping[str, Mapping[str, Any]]
) -> str:
    """The human report: summary lines, a replica table, then expectations."""
    latency = summary.get("latency_ms") or {}
    safety = summary.get("safety") or {}
    violations = safety.get("violations") or []
    lines = [
        f"scenario   {summary.get('scenario', scenario.name)}  ({scenario.source})",
        f"seed       {summary.get('seed')}    n = {summary.get('n')}, f = {summary.get('f')}"
        f"    virtual {summary.get('virtual_ms', scenario.duration_ms)} ms,"
        f" wall {summary.get('wall_s', 0):.2f} s",
        f"requests   {_requests(summary)}    {_views(summary)}",
        f"latency    p50 {_ms(latency.get('p50'))}, p99 {_ms(latency.get('p99'))}"
        f"    throughput {summary.get('throughput_tps', 0):.1f} tx/s (virtual)",
        "safety     " + ("ok" if safety.get("ok") else f"VIOLATED ({len(violations)})"),
    ]
    lines += [f"           - {v}" for v in violations[:5]]
    model = summary.get("fault_model") or {}
    if model:
        lines.append(_fault_model_line(model))
    messages = summary.get("messages") or {}
    if messages:
        lines.append("messages   " + ", ".join(f"{k} {v}" for k, v in sorted(messages.items())))
    drops = summary.get("network_drops") or {}
    if drops:
        lines.append("dropped    " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items())))
    lines += ["", *_replica_table(summary.get("replicas") or [])]
    lines += ["", "expectations", *expectation_lines(checks)]
    return "\n".join(lines)


def _fault_model_line(model: Mapping[str, Any]) -> str:
    """Say plainly when a run went beyond f faulty replicas: its guarantees do not apply."""
    faulty = model.get("max_faulty", 0)
    f = model.get("f", 0)
    if model.get("within", True):
        return f"faults     within the fault model (at most {faulty} of f = {f} faulty at once)"
    return (
        f"faults     BEYOND the fault model: {faulty} faulty at once, f = {f}"
        " (PBFT promises neither safety nor liveness here)"
    )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _requests(summary: Mapping[str, Any]) -> str:
    """Requested, submitted and committed: a run too short to submit them all says so."""
    requested, submitted = summary.get("requested"), summary.get("submitted")
    text = f"{submitted} submitted, {summary.get('committed')} committed"
    if requested is not None and requested != submitted:
        text = f"{requested} requested, " + text
    return text


def _views(summary: Mapping[str, Any]) -> str:
    """Installed view changes first; the highest view and attempts say what did not complete."""
    installed = summary.get("view_changes")
    text = f"view changes {installed}"
    highest, attempts = summary.get("highest_view"), summary.get("view_change_attempts")
    if attempts:
        text += f" (highest view {highest}, {plural(attempts, 'attempt')})"
    return text


def _replica_table(replicas: Sequence[dict[str, Any]]) -> list[str]:
    header = ("replica", "view", "height", "head_hash", "byzantine", "note")
    rows = [
        (
            str(r.get("id")),
            str(r.get("view")),
            str(r.get("height")),
            str(r.get("head_hash", ""))[:16],
            "yes" if r.get("byzantine") else "",
            _note(r, replicas),
        )
        for r in replicas
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _note(replica: Mapping[str, Any], replicas: Sequence[Mapping[str, Any]]) -> str:
    """Why a head differs: crashed, or merely behind the tallest correct replica.

    A shorter ledger is not a disagreement (agreement is judged per sequence
    number by the safety check), so a lagging replica is labelled rather than
    left looking divergent.
    """
    if replica.get("crashed"):
        return "crashed"
    tallest = max((int(r.get("height", 0)) for r in replicas if not r.get("byzantine")), default=0)
    height = int(replica.get("height", 0))
    if not replica.get("byzantine") and height < tallest:
        return f"behind ({plural(tallest - height, 'block')})"
    return ""


def expectation_lines(checks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One ✓/✗ line per expectation the scenario set, with what the run actually gave."""
    lines = []
    for name, check in checks.items():
        mark = "✓" if check.get("ok") else "✗"
        expected, actual = show(check.get("expected")), show(check.get("actual"))
        lines.append(f"  {mark} {name} = {expected}  (got {actual})")
    return lines or ["  (none set in [expect])"]
