"""Bringing a whole live network up and down on this host (``ledgersim net up/down/status/node``).

Also the Python API the tests and the benchmark use: :func:`up` returns once
every node runs and has reported its status (a node that fails is reported
and the others keep running); :func:`node_action` starts, stops, kills or
restarts one node; :func:`down` stops the nodes and the broker this
directory started. ``UpOptions(bridged=True)`` starts a second managed broker
bridged to the first and attaches the upper half of the replicas and every
client to it (one host standing in for two sites). Process ids are recorded
in the directory so a later command (another shell, another test) can find
them.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from msp.errors import MSPError
from msp.names import admin_name, org_domain, org_mspid, replica_peer_name, user_name
from pbft.api import PBFTConfig
from sim.errors import InputError, RunFailed
from sim.live import broker as brokers
from sim.live import faultlog
from sim.live.gatewayid import GATEWAY_KEY, with_gateway_identity
from sim.live.host import read_status
from sim.live.netconfig import (
    BRIDGE_KEY,
    CONFIG_FILE,
    Member,
    NetworkConfig,
    broker_url_for,
    load_config,
    node_dir,
)
from sim.live.transport import BrokerURL

PID_FILE = "pid"
PASSWORD_FILE = "mqtt-password"
NODE_LOG = "node.log"
BROKER_DIR = "broker"
BRIDGE_DIR = "broker-b"
START_TIMEOUT_S = 60.0
WATCH_ENV = "LEDGERSIM_WATCH_PID"
"""Nodes started with this set to a pid stop when that process is gone (test harnesses)."""

DEFAULT_PBFT = PBFTConfig(
    n=4,
    batch_size=200,
    batch_timeout_ms=20,
    max_batches_in_flight=2,
    checkpoint_interval=10,
    watermark_window=40,
    view_change_timeout_ms=2000,
    client_retry_ms=1000,
    two_stage_request_timer=True,
)


@dataclass(frozen=True, slots=True)
class UpOptions:
    replicas: int = 4
    orgs: int = 2
    users: int = 2
    broker: str | None = None
    chaincode: str = "patchset"
    crypto: str = "ecdsa-p256"
    endorsement_policy: str | None = None
    pbft: PBFTConfig = DEFAULT_PBFT
    bridged: bool = False
    """Two managed brokers bridged together; replicas ``n//2..n-1`` and clients on the second."""


def _members(options: UpOptions) -> tuple[tuple[Member, ...], tuple[Member, ...]]:
    replicas = tuple(
        Member(replica_peer_name(i, options.orgs), org_mspid(i % options.orgs + 1))
        for i in range(options.replicas)
    )
    users = []
    for org in range(1, options.orgs + 1):
        domain = org_domain(org)
        users.append(Member(admin_name(1, domain), org_mspid(org)))
        users += [Member(user_name(u, domain), org_mspid(org)) for u in range(1, options.users + 1)]
    return replicas, tuple(users)


def default_policy(orgs: int) -> str:
    """Every organisation endorses when there are two; a majority beyond that."""
    members = ",".join(f"'{org_mspid(o)}.member'" for o in range(1, orgs + 1))
    return f"AND({members})" if orgs <= 2 else f"OutOf({orgs // 2 + 1},{members})"


def init(directory: Path, options: UpOptions) -> NetworkConfig:
    """Generate identities, broker files and ``network.json`` in a fresh directory."""
    from msp.ca import generate_network

    if (directory / CONFIG_FILE).exists():
        raise InputError(f"{directory}: already holds a network (use `ledgersim net down` first)")
    if options.replicas < 4:
        raise InputError(f"--replicas: expected an integer >= 4, got {options.replicas}")
    if not 1 <= options.orgs <= options.replicas:
        raise InputError(f"--orgs: expected 1..{options.replicas}, got {options.orgs}")
    directory.mkdir(parents=True, exist_ok=True)
    peers = math.ceil(options.replicas / options.orgs)
    try:
        crypto = generate_network(options.orgs, peers, options.users, options.crypto)
    except MSPError as exc:
        raise InputError(f"--crypto: {exc}") from None
    crypto, gateway = with_gateway_identity(crypto)  # the HTTP gateway's client (gatewayid.py)
    crypto.write(directory / "crypto")
    net = "n" + secrets.token_hex(4)
    replicas, users = _members(options)
    users += (gateway,)
    url = options.broker or ""
    managed = options.broker is None
    extra: dict[str, Any] = {GATEWAY_KEY: {"name": gateway.name}}
    if options.bridged and not managed:
        raise InputError("--bridged: starts its own two brokers; drop --broker")
    if managed:
        files = brokers.write_broker_files(
            directory / BROKER_DIR, net, options.replicas, len(users), bridge=options.bridged
        )
        url = f"mqtt://127.0.0.1:{files.port}"
        if options.bridged:
            second = brokers.write_bridge_files(directory / BRIDGE_DIR, net, files)
            far = list(range(options.replicas // 2, options.replicas))
            extra[BRIDGE_KEY] = {"url": f"mqtt://127.0.0.1:{second.port}", "replicas": far}
        for user, password in files.passwords.items():
            target = (
                node_dir(directory, int(user.rsplit("-", 1)[1])) / PASSWORD_FILE
                if user.startswith("replica-")
                else directory / BROKER_DIR / f"{user}-password"
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            brokers._write_private(target, password)
    else:
        BrokerURL.parse(url)
    config = NetworkConfig(
        net=net,
        pbft=replace(options.pbft, n=options.replicas),
        orgs=options.orgs,
        replicas=replicas,
        users=users,
        crypto=options.crypto,
        chaincode=options.chaincode,
        endorsement_policy=options.endorsement_policy or default_policy(options.orgs),
        broker_url=url,
        managed_broker=managed,
        extra=extra,
    )
    config.save(directory)
    return config


def credentials(directory: Path, account: str) -> str | None:
    """The broker password of a managed network's ``client-<k>``/``monitor`` account."""
    path = directory / BROKER_DIR / f"{account}-password"
    return path.read_text().strip() if path.exists() else None


def client_broker(directory: Path, config: NetworkConfig, user: str) -> BrokerURL:
    """The broker, logged in as the account of identity ``user`` (its clients only)."""
    url = BrokerURL.parse(broker_url_for(config, None))
    account = brokers.client_user(config.user_index(user))
    password = credentials(directory, account)
    return url.with_credentials(account, password) if password is not None else url


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def broker_dirs(directory: Path, config: NetworkConfig) -> list[Path]:
    """The managed brokers' directories, main broker first (empty if external)."""
    if not config.managed_broker:
        return []
    return [directory / BROKER_DIR] + (
        [directory / BRIDGE_DIR] if BRIDGE_KEY in config.extra else []
    )


def start_broker(directory: Path, config: NetworkConfig, bridge: bool = False) -> int | None:
    """(Re)start a managed broker if it is not running; its pid, or None if there is none.

    ``bridge`` picks the second broker of a bridged network instead of the main one.
    """
    dirs = broker_dirs(directory, config)
    if len(dirs) <= bridge:
        return None
    bdir = dirs[bridge]
    pid = _read_pid(bdir / PID_FILE)
    if pid is not None and brokers.pid_alive(pid):
        return pid
    port = BrokerURL.parse(broker_url_for(config, None) if bridge else config.broker_url).port
    files = brokers.BrokerFiles(bdir / "mosquitto.conf", port, {})
    pid = brokers.start_broker(files, bdir / "mosquitto.log")
    (bdir / PID_FILE).write_text(f"{pid}\n")
    return pid


def start_node(directory: Path, config: NetworkConfig, replica_id: int) -> int:
    """Launch node ``replica_id`` in the background (own session); its pid."""
    ndir = node_dir(directory, replica_id)
    ndir.mkdir(parents=True, exist_ok=True)
    url = BrokerURL.parse(broker_url_for(config, replica_id))
    secret = ndir / PASSWORD_FILE
    if secret.exists():
        url = url.with_credentials(brokers.replica_user(replica_id), secret.read_text().strip())
    broker_arg = f"mqtt://{url.host}:{url.port}"  # the password stays in the file, off argv
    args = [
        sys.executable,
        "-m",
        "sim",
        "node",
        "--id",
        str(replica_id),
        "--config",
        str((directory / CONFIG_FILE).resolve()),
        "--broker",
        broker_arg,
        "--data-dir",
        str(ndir.resolve()),
    ]
    (ndir / "status.json").unlink(missing_ok=True)
    with open(ndir / NODE_LOG, "ab") as log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    (ndir / PID_FILE).write_text(f"{proc.pid}\n")
    return proc.pid


def node_pid(directory: Path, replica_id: int) -> int | None:
    return _read_pid(node_dir(directory, replica_id) / PID_FILE)


def wait_for_nodes(
    directory: Path, ids: list[int], timeout_s: float = START_TIMEOUT_S
) -> dict[int, str]:
    """Until each node in ``ids`` has written its status or failed; why each failed one did."""
    deadline = time.monotonic() + timeout_s
    pending = set(ids)
    failed: dict[int, str] = {}
    while pending:
        for i in sorted(pending):
            ndir = node_dir(directory, i)
            if read_status(ndir) is not None:
                pending.discard(i)
                continue
            pid = node_pid(directory, i)
            if pid is None or not brokers.pid_alive(pid):
                failed[i] = f"exited at start: {last_line(ndir / NODE_LOG)}"
                pending.discard(i)
        if pending and time.monotonic() > deadline:
            failed.update({i: f"did not start within {timeout_s:.0f} s" for i in pending})
            break
        time.sleep(0.1)
    return failed


class NodesFailed(RunFailed):
    """Some nodes did not start; the others, and the broker, were left running."""

    def __init__(self, failed: dict[int, str]) -> None:
        super().__init__("; ".join(f"node {i} {why}" for i, why in sorted(failed.items())))
        self.failed = failed


def wait_started(directory: Path, config: NetworkConfig, ids: list[int], timeout_s: float) -> None:
    """Until each node in ``ids`` has written its status; a node that fails is an error."""
    failed = wait_for_nodes(directory, ids, timeout_s)
    if failed:
        raise NodesFailed(failed)


def last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def up(
    directory: Path, options: UpOptions | None = None, timeout_s: float = START_TIMEOUT_S
) -> NetworkConfig:
    """Create the network if needed, then start its broker and every node not running."""
    if (directory / CONFIG_FILE).exists():
        config = load_config(directory)
    else:
        config = init(directory, options or UpOptions())
    start_broker(directory, config)
    start_broker(directory, config, bridge=True)
    started = []
    for i in range(config.n):
        pid = node_pid(directory, i)
        if pid is None or not brokers.pid_alive(pid):
            start_node(directory, config, i)
            started.append(i)
    # A node that fails to start is reported, never a reason to stop the others:
    # they may be serving clients already (this is also how one node is restarted).
    wait_started(directory, config, started, timeout_s)
    return config


NODE_ACTIONS = ("start", "stop", "kill", "restart")


def node_action(
    directory: Path, replica_id: int, action: str, timeout_s: float = START_TIMEOUT_S
) -> str:
    """Start, stop (SIGTERM), kill (SIGKILL) or restart one node; what happened, in one line.

    Only that node is touched: a failure to start is raised (:class:`NodesFailed`)
    with the last line of its log, and every other process keeps running.
    """
    config = load_config(directory)
    if not 0 <= replica_id < config.n:
        raise InputError(f"node id: expected 0..{config.n - 1}, got {replica_id}")
    if action not in NODE_ACTIONS:
        raise InputError(f"node action: expected one of {', '.join(NODE_ACTIONS)}, got {action!r}")
    pid = node_pid(directory, replica_id)
    running = pid is not None and brokers.pid_alive(pid)
    said = []
    if action in ("stop", "kill", "restart"):
        if pid is None or not running:
            said.append(f"node {replica_id} was not running")
        elif action == "kill":
            kill_process(pid)
            said.append(f"killed node {replica_id} (pid {pid}, SIGKILL)")
        else:
            brokers.stop_process(pid)
            said.append(f"stopped node {replica_id} (pid {pid})")
        running = False
    if action in ("start", "restart"):
        if running:
            said.append(f"node {replica_id} already running (pid {pid})")
        else:
            new_pid = start_node(directory, config, replica_id)
            wait_started(directory, config, [replica_id], timeout_s)
            said.append(f"started node {replica_id} (pid {new_pid})")
    faultlog.record(directory, f"node-{action}", [replica_id], "operator", "net node")
    return "; ".join(said)


def kill_process(pid: int, timeout_s: float = 5.0) -> None:
    """SIGKILL ``pid`` and wait until it is gone (a crash, as the nemesis makes them)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while brokers.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def down(directory: Path) -> list[str]:
    """Stop every node, then the managed broker; what was stopped, for the user."""
    config = load_config(directory)
    stopped = []
    for i in range(config.n):
        pid_path = node_dir(directory, i) / PID_FILE
        pid = _read_pid(pid_path)
        if pid is not None and brokers.stop_process(pid):
            stopped.append(f"node {i} (pid {pid})")
        pid_path.unlink(missing_ok=True)
    for bdir in reversed(broker_dirs(directory, config) or [directory / BROKER_DIR]):
        bpid_path = bdir / PID_FILE
        bpid = _read_pid(bpid_path)
        if bpid is not None and brokers.stop_process(bpid):
            stopped.append(f"{'broker' if bdir.name == BROKER_DIR else bdir.name} (pid {bpid})")
        bpid_path.unlink(missing_ok=True)
    return stopped


def status(directory: Path) -> dict[str, Any]:
    config = load_config(directory)
    nodes = []
    for i in range(config.n):
        pid = node_pid(directory, i)
        running = pid is not None and brokers.pid_alive(pid)
        report = read_status(node_dir(directory, i)) or {}
        nodes.append(
            {
                "id": i,
                "name": config.replicas[i].name,
                "running": running,
                "pid": pid if running else None,
                "view": report.get("view"),
                "height": report.get("height"),
                "head_hash": report.get("head_hash"),
                "in_view_change": report.get("in_view_change"),
                "dropped": sum(report.get("dropped", {}).values()),
                "updated_age_s": round(time.time() - report["updated_at"], 1)
                if "updated_at" in report
                else None,
            }
        )
    bpid = _read_pid(directory / BROKER_DIR / PID_FILE)
    return {
        "net": config.net,
        "n": config.n,
        "f": config.pbft.f,
        "broker": {
            "url": config.broker_url,
            "managed": config.managed_broker,
            "running": bool(bpid and brokers.pid_alive(bpid)) if config.managed_broker else None,
        },
        "nodes": nodes,
    }
