"""``ledgersim load``: offered load against a live network, with commit-latency percentiles."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    load = subparsers.add_parser("load", help="open-loop load generator for a live network")
    load.add_argument("--network", type=Path, required=True, help="live network directory")
    load.add_argument("--rate", type=float, required=True, help="requests per second")
    load.add_argument("--duration", type=float, required=True, help="seconds of load")
    load.add_argument("--as", dest="user", help="client identity (default: User1 of Org1)")
    load.add_argument(
        "--clients", type=int, help="requests in flight at most (default: about rate/2)"
    )
    load.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    load.add_argument("--json", action="store_true", help="machine-readable output")
    load.set_defaults(handler=_load)


def quiet_mqtt() -> None:
    """The MQTT library's per-publish warnings say nothing the report does not."""
    logging.getLogger("mqtt").setLevel(logging.CRITICAL)


def _load(args: argparse.Namespace) -> int:
    from sim.errors import InputError
    from sim.live.load import run_load
    from sim.progress import ProgressBar

    if args.clients is not None and not 1 <= args.clients <= 1000:
        raise InputError(f"--clients: expected 1..1000, got {args.clients}")
    quiet_mqtt()
    with ProgressBar("load", unit="tx") as bar:
        report = asyncio.run(
            run_load(
                args.network,
                args.rate,
                args.duration,
                user=args.user,
                progress=bar,
                timeout_s=args.timeout,
                clients=args.clients,
            )
        )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    lat = report["latency_ms"]
    print(
        f"network {report['network']} ({report['chaincode']}): offered {report['submitted']} "
        f"at {report['rate']:g}/s for {report['duration_s']:g} s, at most {report['clients']} "
        "in flight"
    )
    print(
        f"committed {report['committed']}  invalid {report['invalid']}  refused (busy) "
        f"{report['refused']}  timed out {report['timed_out']}  errors {report['error']}"
        f"  in {report['elapsed_s']} s  =  {report['committed_tps']} tx/s"
    )
    print(
        f"commit latency ms: p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}"
    )
    return 0
