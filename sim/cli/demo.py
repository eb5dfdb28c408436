"""``ledgersim demo``: the paper's three experiments, narrated (see ``sim.fabric.demo``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sim.cli.args import seed
from sim.errors import RunFailed


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="the paper's three experiments on a 4-replica network with a Byzantine replica"
    )
    parser.add_argument("--seed", type=seed, default=7, help="one seed, one run (default 7)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from sim.fabric.demo import run_demo

    result = run_demo(args.seed)
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True))
    else:
        print("\n".join(result.lines))
    if not result.ok:
        raise RunFailed("demo: the ledger did not verify on every peer")
    return 0
