"""Assembling one node from its network file and data directory, with clear errors.

Everything that can be wrong before the node says a word is checked here and
reported as one line (:class:`InputError`): a missing or malformed network
file, an id outside the replica set, a missing identity, a data directory that
belongs to another network or replica.
"""

from __future__ import annotations

import json
from pathlib import Path

from msp.identity import SigningIdentity
from pbft.api import Application
from sim.errors import InputError
from sim.live.host import Endorser, NodeParts
from sim.live.identity import Directory, load_signer
from sim.live.netconfig import NetworkConfig, config_path, load_config
from sim.world.auth import MspAuthenticator

NODE_FILE = "node.json"
"""Stamp in a data directory: which network and replica it belongs to."""


def crypto_root(config: NetworkConfig, location: Path) -> Path:
    return config_path(location).resolve().parent / config.crypto_dir


def check_data_dir(config: NetworkConfig, replica_id: int, data_dir: Path) -> None:
    """Refuse a data directory stamped for another network or replica; stamp a fresh one."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stamp = data_dir / NODE_FILE
    mine = {"net": config.net, "replica": replica_id}
    if stamp.exists():
        try:
            found = json.loads(stamp.read_text())
        except ValueError:
            raise InputError(f"{stamp}: unreadable node stamp") from None
        if found != mine:
            raise InputError(
                f"{data_dir}: belongs to network {found.get('net')!r} replica "
                f"{found.get('replica')!r}, not network {config.net!r} replica {replica_id}"
            )
    else:
        stamp.write_text(json.dumps(mine) + "\n")


def open_application(
    config: NetworkConfig, signer: SigningIdentity, directory: Directory, data_dir: Path
) -> tuple[Application, Endorser | None, str]:
    """The replicated state machine (the ledger, durable in ``data_dir``, or a plain log).

    The third item is the one-line account of a disk repair made on opening, or ``""``.
    """
    if config.chaincode == "none":
        from pbft.memapp import MemoryApplication

        return MemoryApplication(), None, ""
    from sim.live.ledgerapp import open_ledger_application

    return open_ledger_application(config, signer, directory, data_dir)


def open_node(location: Path, replica_id: int, data_dir: Path) -> NodeParts:
    config = load_config(location)
    if not 0 <= replica_id < config.n:
        raise InputError(
            f"{config_path(location)}: --id {replica_id} is not a replica of this network "
            f"(expected 0..{config.n - 1})"
        )
    check_data_dir(config, replica_id, data_dir)
    root = crypto_root(config, location)
    signer = load_signer(root, config.replicas[replica_id])
    directory = Directory(config, root)
    app, endorser, repaired = open_application(config, signer, directory, data_dir)
    return NodeParts(
        replica_id, config, data_dir, MspAuthenticator(signer, directory), app, endorser, repaired
    )
