"""Striking and healing a nemesis run's faults on a live network's real processes.

The schedule (``sim.live.schedule``) names roles; :meth:`Nemesis.targets`
resolves them to replica ids at the moment a fault strikes.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from pathlib import Path

from ledger.blockstore import DATA_FILE
from sim.fabric.app import LEDGER_DIR
from sim.live import broker as brokers
from sim.live import cluster
from sim.live.host import read_status
from sim.live.netconfig import NetworkConfig, node_dir
from sim.live.schedule import Fault

CUT_CONFIG = "mosquitto-cut.conf"
"""The second broker's configuration without its bridge, while a ``bridge-cut`` lasts."""


def current_primary(directory: Path, config: NetworkConfig) -> int:
    """The primary of the highest view a running node reports."""
    views = [
        (report or {}).get("view") or 0
        for report in (read_status(node_dir(directory, i)) for i in range(config.n))
    ]
    return max(views) % config.n


class Nemesis:
    """Strikes and heals faults on one network directory; remembers what it did."""

    def __init__(self, directory: Path, config: NetworkConfig) -> None:
        self.directory = directory
        self.config = config
        self.paused: set[int] = set()
        self.down: set[int] = set()
        self.broker_down = False
        self.bridge_cut = False

    def targets(self, fault: Fault) -> list[int]:
        n = self.config.n
        primary = current_primary(self.directory, self.config)
        if fault.kind == "kill-primary":
            return [primary]
        backups = sorted(i for i in range(n) if i != primary)
        if fault.kind in ("broker-restart", "bridge-cut"):
            return []
        if fault.kind == "pause":
            return [fault.pick % n]
        first = backups[fault.pick % len(backups)]
        if fault.kind == "kill-two":
            return [first, backups[(fault.pick + 1) % len(backups)]]
        return [first]

    def strike(self, fault: Fault, targets: list[int]) -> None:
        if fault.kind == "broker-restart":
            pid = broker_pid(self.directory)
            if pid is not None:
                cluster.kill_process(pid)
            self.broker_down = True
            return
        if fault.kind == "bridge-cut":
            cut_bridge(self.directory)
            self.bridge_cut = True
            return
        for i in targets:
            pid = cluster.node_pid(self.directory, i)
            if pid is None or not brokers.pid_alive(pid):
                continue
            if fault.kind == "pause":
                os.kill(pid, signal.SIGSTOP)
                self.paused.add(i)
            else:
                cluster.kill_process(pid)
                self.down.add(i)
        if fault.kind == "torn-tail":
            for i in targets:
                tear(node_dir(self.directory, i) / LEDGER_DIR / DATA_FILE, fault.cut_bytes)

    def heal(self) -> list[str]:
        """Undo every fault in force; what could not be undone (a node failing to start)."""
        problems: list[str] = []
        if self.broker_down:
            cluster.start_broker(self.directory, self.config)
            self.broker_down = False
        if self.bridge_cut:
            pid = broker_pid(self.directory, cluster.BRIDGE_DIR)
            if pid is not None:
                cluster.kill_process(pid)
            cluster.start_broker(self.directory, self.config, bridge=True)
            self.bridge_cut = False
        for i in sorted(self.paused):
            pid = cluster.node_pid(self.directory, i)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        self.paused.clear()
        restarting = sorted(self.down)
        for i in restarting:
            cluster.start_node(self.directory, self.config, i)
        failed = cluster.wait_for_nodes(self.directory, restarting)
        problems += [f"node {i} {why}" for i, why in sorted(failed.items())]
        self.down.clear()
        return problems


def tear(path: Path, cut_bytes: int) -> None:
    """Cut the last ``cut_bytes`` bytes off a file, as a crash mid-write leaves it."""
    with contextlib.suppress(OSError):
        os.truncate(path, max(0, path.stat().st_size - cut_bytes))


def broker_pid(directory: Path, which: str = cluster.BROKER_DIR) -> int | None:
    try:
        return int((directory / which / cluster.PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def cut_bridge(directory: Path) -> None:
    """Partition the two sites of a bridged network: restart the second broker without its bridge.

    Mosquitto cannot drop one bridge connection on demand, so the second
    broker is restarted from a copy of its configuration that stops before
    the bridge section. Each site keeps a working broker (its nodes reconnect
    within a second, as after a broker restart), but nothing crosses between
    them until ``Nemesis.heal`` starts the broker with its bridge again.
    """
    bdir = directory / cluster.BRIDGE_DIR
    lines = (bdir / "mosquitto.conf").read_text().splitlines()
    kept = list(itertools.takewhile(lambda line: not line.startswith("connection "), lines))
    port = next(int(line.split()[1]) for line in kept if line.startswith("listener "))
    cut = bdir / CUT_CONFIG
    cut.write_text("\n".join([*kept, ""]))
    pid = broker_pid(directory, cluster.BRIDGE_DIR)
    if pid is not None:
        cluster.kill_process(pid)
    pid = brokers.start_broker(brokers.BrokerFiles(cut, port, {}), bdir / "mosquitto.log")
    (bdir / cluster.PID_FILE).write_text(f"{pid}\n")
