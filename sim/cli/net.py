"""``ledgersim net up|down|status|init`` and ``ledgersim node``: the live network's commands.

``net up`` builds a network directory (identities, broker config, network
file) and runs one OS process per node; ``node`` is what each of those
processes runs, and what an operator runs by hand on other hosts.
``net init --sim DIR`` creates a *simulated* network directory instead
(``sim.fabric.simnet``), for the patch commands run one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.fabric import simnet
from sim.scenario.reader import parse_byzantine_flag
from sim.world.auth import network_crypto


def register(subparsers: Any) -> None:
    net = subparsers.add_parser("net", help="live nodes as OS processes over MQTT")
    sub = net.add_subparsers(dest="net_command", required=True, metavar="SUBCOMMAND")

    up = sub.add_parser("up", help="create (if needed) and start a local live network")
    up.add_argument("directory", type=Path, nargs="?", help="network directory")
    up.add_argument("--data-dir", type=Path, help="the same as DIRECTORY (older spelling)")
    up.add_argument("--replicas", type=int, default=4, help="n >= 4 (default 4)")
    up.add_argument("--orgs", type=int, default=2, help="organisations (default 2)")
    up.add_argument("--users", type=int, default=2, help="client users per org (default 2)")
    up.add_argument("--broker", help="use this broker (mqtt://HOST:PORT) instead of starting one")
    up.add_argument(
        "--bridged",
        action="store_true",
        help="start two local brokers joined by a mosquitto bridge, half the nodes on each",
    )
    up.add_argument(
        "--chaincode", choices=("patchset", "kv", "none"), default="patchset", help="contract"
    )
    up.add_argument("--crypto", choices=("ecdsa-p256", "ed25519"), default="ecdsa-p256")
    up.add_argument("--policy", help="endorsement policy (default: every org when <= 2)")
    up.add_argument("--batch-size", type=int, default=None)
    up.add_argument("--view-change-timeout-ms", type=int, default=None)
    up.add_argument("--json", action="store_true", help="machine-readable output")
    up.set_defaults(handler=_up)

    down = sub.add_parser("down", help="stop a network's nodes and the broker it started")
    down.add_argument("directory", type=Path)
    down.set_defaults(handler=_down)

    status = sub.add_parser("status", help="each node's view, height and head hash")
    status.add_argument("directory", type=Path)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    one = sub.add_parser("node", help="start, stop, kill -9 or restart one node")
    one.add_argument("action", choices=("start", "stop", "kill", "restart"))
    one.add_argument("directory", type=Path, help="network directory")
    one.add_argument("id", type=int, help="replica id")
    one.set_defaults(handler=_node_action)

    init = sub.add_parser("init", help="a simulated network kept in a directory (--sim DIR)")
    _add_init_arguments(init)
    init.set_defaults(handler=_init)

    node = subparsers.add_parser("node", help="run one live node (what `net up` starts)")
    node.add_argument("--id", type=int, required=True, help="replica id")
    node.add_argument("--config", type=Path, required=True, help="the network's network.json")
    node.add_argument("--broker", required=True, help="mqtt://[USER:PASSWORD@]HOST:PORT")
    node.add_argument("--data-dir", type=Path, required=True, help="this node's directory")
    node.set_defaults(handler=_node)


def _add_init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sim", type=Path, required=True, metavar="DIR", help="new directory")
    parser.add_argument("--seed", type=int, default=1, help="identities and runs derive from it")
    parser.add_argument("--replicas", type=int, default=4, help="n >= 4 (default 4)")
    parser.add_argument("--orgs", type=int, default=2, help="organisations (default 2)")
    parser.add_argument("--users", type=int, default=2, help="client users per org (default 2)")
    parser.add_argument("--crypto", choices=("ecdsa-p256", "ed25519"), default="ecdsa-p256")
    parser.add_argument(
        "--byzantine",
        action="append",
        default=[],
        metavar="ID:BEHAVIOUR",
        help="make replica ID Byzantine in every session, e.g. 3:equivocate (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _init(args: argparse.Namespace) -> int:
    byzantine: dict[int, str] = {}
    for spec in args.byzantine:
        replica, behaviour = parse_byzantine_flag(spec, args.replicas)
        byzantine[replica] = behaviour
    cfg = simnet.init_sim_network(
        args.sim,
        seed=args.seed,
        replicas=args.replicas,
        orgs=args.orgs,
        users=args.users,
        crypto=args.crypto,
        byzantine=byzantine,
    )
    crypto = network_crypto(cfg.scenario())
    identities = [{"name": n, "mspid": m, "role": r} for n, m, r in crypto.identities()]
    if args.json:
        print(json.dumps({"directory": str(args.sim), **asdict(cfg), "identities": identities}))
        return 0
    print(f"simulated network in {args.sim}: {cfg.replicas} replicas, {cfg.orgs} orgs")
    for ident in identities:
        if ident["role"] in ("admin", "client"):
            print(f"  {ident['role']:6}  {ident['name']}")
    print(f"next: ledgersim patch upload --network {args.sim} --as Admin@org1.example.com ...")
    return 0


def _up(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sim.live import cluster

    pbft = replace(cluster.DEFAULT_PBFT, n=args.replicas)
    if args.batch_size is not None:
        pbft = replace(pbft, batch_size=args.batch_size)
    if args.view_change_timeout_ms is not None:
        pbft = replace(pbft, view_change_timeout_ms=args.view_change_timeout_ms)
    options = cluster.UpOptions(
        replicas=args.replicas,
        orgs=args.orgs,
        users=args.users,
        broker=args.broker,
        bridged=args.bridged,
        chaincode=args.chaincode,
        crypto=args.crypto,
        endorsement_policy=args.policy,
        pbft=pbft,
    )
    where = _up_directory(args)
    failed: dict[int, str] = {}
    try:
        config = cluster.up(where, options)
    except cluster.NodesFailed as exc:
        config, failed = cluster.load_config(where), exc.failed
    report = cluster.status(where)
    if args.json:
        report["failed"] = {str(i): why for i, why in failed.items()}
        print(json.dumps(report, indent=2))
        return 1 if failed else 0
    print(f"network {config.net}: {config.n} nodes (f={config.pbft.f}) via {config.broker_url}")
    for node in report["nodes"]:
        pid = node["pid"] or "-- not running"
        print(f"  node {node['id']}  {node['name']:<24} pid {pid}")
    print(f"status:  ledgersim net status {where}")
    print(f"patch:   ledgersim patch ... --network {where} --as {config.users[0].name}")
    print(f"load:    ledgersim load --network {where} --rate 50 --duration 10")
    print(f"stop:    ledgersim net down {where}")
    for i, why in sorted(failed.items()):
        print(f"node {i} {why} (the others keep running; see {where}/replica-{i}/node.log)")
    return 1 if failed else 0


def _up_directory(args: argparse.Namespace) -> Path:
    """``net up DIR`` like ``status``/``down``, or the older ``--data-dir DIR``."""
    given = {p for p in (args.directory, args.data_dir) if p is not None}
    if len(given) != 1:
        raise InputError("net up: give the network directory once (DIRECTORY or --data-dir)")
    return given.pop()


def _node_action(args: argparse.Namespace) -> int:
    from sim.live import cluster

    print(cluster.node_action(args.directory, args.id, args.action))
    return 0


def _down(args: argparse.Namespace) -> int:
    from sim.live import cluster

    stopped = cluster.down(args.directory)
    print("stopped " + ", ".join(stopped) if stopped else "nothing was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from sim.live import cluster

    report = cluster.status(args.directory)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    broker = report["broker"]
    state = "" if broker["running"] is None else (" up" if broker["running"] else " DOWN")
    print(
        f"network {report['net']}  n={report['n']} f={report['f']}  broker {broker['url']}{state}"
    )
    print(f"{'id':>3} {'state':<8} {'view':>5} {'height':>7}  head")
    for node in report["nodes"]:
        state = "running" if node["running"] else "down"
        head = (node["head_hash"] or "-")[:16]
        view = "-" if node["view"] is None else str(node["view"])
        height = "-" if node["height"] is None else str(node["height"])
        print(f"{node['id']:>3} {state:<8} {view:>5} {height:>7}  {head}")
    return 0


def _node(args: argparse.Namespace) -> int:
    from sim.live.broker import replica_user
    from sim.live.cluster import PASSWORD_FILE, WATCH_ENV
    from sim.live.host import serve
    from sim.live.node import open_node
    from sim.live.transport import BrokerURL

    broker = BrokerURL.parse(args.broker)
    secret = args.data_dir / PASSWORD_FILE
    if broker.password is None and secret.exists():
        broker = broker.with_credentials(replica_user(args.id), secret.read_text().strip())
    parts = open_node(args.config, args.id, args.data_dir)
    if parts.repaired:
        print(f"node {args.id}: {parts.repaired}", file=sys.stderr, flush=True)
    watch = os.environ.get(WATCH_ENV)
    asyncio.run(serve(parts, broker, int(watch) if watch and watch.isdigit() else None))
    return 0
