"""``network.json``: everything a live node or client needs to know about its network.

Written once by ``ledgersim net up`` (or by hand for a multi-host deployment)
and read by every node and client; a node refuses to start when its id, its
identity or its protocol parameters do not match this file, with one clear
line (:class:`sim.errors.InputError`), never a traceback.

Layout of a network directory::

    DIR/network.json             this file
    DIR/crypto/                  the cryptogen-style identity tree (msp)
    DIR/broker/                  generated mosquitto config, passwd, ACL, log, pid
    DIR/broker-b/                a second broker bridged to the first (bridged networks)
    DIR/replica-<i>/             node i: PBFT records, ledger, status.json, node.log, pid
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pbft.api import CLIENT_ID_BASE, PBFTConfig
from sim.errors import InputError

FORMAT = "ledgersim-live-network/1"
CONFIG_FILE = "network.json"
CLIENT_SLOTS = 1000
"""PBFT client ids per user identity: user k owns ids ``1000 + 1000 k + slot``."""


@dataclass(frozen=True, slots=True)
class Member:
    """One identity of the network: its cryptogen name and MSP id."""

    name: str
    mspid: str


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    net: str
    """Short network name; part of every topic (several networks can share a broker)."""
    pbft: PBFTConfig
    orgs: int
    replicas: tuple[Member, ...]
    users: tuple[Member, ...]
    crypto: str = "ecdsa-p256"
    chaincode: str = "patchset"
    endorsement_policy: str = "AND('Org1.member','Org2.member')"
    broker_url: str = ""
    managed_broker: bool = False
    crypto_dir: str = "crypto"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.pbft.n

    def user_index(self, name: str) -> int:
        for index, member in enumerate(self.users):
            if member.name == name:
                return index
        known = ", ".join(m.name for m in self.users)
        raise InputError(f"no identity {name!r} in this network (known: {known})")

    def client_id(self, user: str, slot: int) -> int:
        if not 0 <= slot < CLIENT_SLOTS:
            raise ValueError(f"client slot {slot} out of range")
        return CLIENT_ID_BASE + CLIENT_SLOTS * self.user_index(user) + slot

    def user_of_client(self, client_id: int) -> Member | None:
        index = (client_id - CLIENT_ID_BASE) // CLIENT_SLOTS
        if client_id < CLIENT_ID_BASE or index >= len(self.users):
            return None
        return self.users[index]

    def may_upload(self, client_id: int) -> bool:
        """Whether a client may store patch files on the peers: administrators' clients only.

        Uploading is an administrator's act in the patch workflow (the chaincode
        takes the upload transaction from admins only); anyone else storing
        files would only be filling the peers' disks.
        """
        member = self.user_of_client(client_id)
        if member is None:
            return False
        # The HTTP gateway places files for the administrators it authenticated.
        gateway = self.extra.get("gateway")
        return member.name.startswith("Admin@") or (
            isinstance(gateway, dict) and gateway.get("name") == member.name
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "net": self.net,
            "orgs": self.orgs,
            "pbft": asdict(self.pbft),
            "crypto": self.crypto,
            "chaincode": self.chaincode,
            "endorsement_policy": self.endorsement_policy,
            "crypto_dir": self.crypto_dir,
            "replicas": [asdict(m) for m in self.replicas],
            "users": [asdict(m) for m in self.users],
            "broker": {"url": self.broker_url, "managed": self.managed_broker},
            **self.extra,
        }

    def save(self, directory: Path) -> Path:
        path = directory / CONFIG_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)
        return path


def config_path(location: Path) -> Path:
    """Accept either the network directory or its ``network.json``."""
    return location / CONFIG_FILE if location.is_dir() else location


def load_config(location: Path) -> NetworkConfig:
    path = config_path(location)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no live network here (run `ledgersim net up` first)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON network file ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: not a readable JSON network file (nested too deeply)") from None
    return parse_config(raw, str(path))


def parse_config(raw: Any, source: str) -> NetworkConfig:
    def need(obj: Any, key: str, kind: type, where: str = "") -> Any:
        value = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise InputError(f"{source}: {where}{key}: expected {kind.__name__}, got {value!r}")
        return value

    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise InputError(f"{source}: format: expected {FORMAT!r}")
    pbft_raw = need(raw, "pbft", dict)
    try:
        pbft = PBFTConfig(**pbft_raw)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: pbft: {exc}") from None

    def members(key: str) -> tuple[Member, ...]:
        items = need(raw, key, list)
        return tuple(
            Member(need(m, "name", str, f"{key}[{i}]."), need(m, "mspid", str, f"{key}[{i}]."))
            for i, m in enumerate(items)
        )

    replicas = members("replicas")
    if len(replicas) != pbft.n:
        raise InputError(f"{source}: replicas: expected {pbft.n} entries, got {len(replicas)}")
    broker = raw.get("broker", {})
    known = {
        "format", "net", "orgs", "pbft", "crypto", "chaincode",
        "endorsement_policy", "crypto_dir", "replicas", "users", "broker",
    }  # fmt: skip
    return NetworkConfig(
        net=need(raw, "net", str),
        pbft=pbft,
        orgs=need(raw, "orgs", int),
        replicas=replicas,
        users=members("users"),
        crypto=need(raw, "crypto", str),
        chaincode=need(raw, "chaincode", str),
        endorsement_policy=need(raw, "endorsement_policy", str),
        broker_url=broker.get("url", "") if isinstance(broker, dict) else "",
        managed_broker=bool(broker.get("managed", False)) if isinstance(broker, dict) else False,
        crypto_dir=need(raw, "crypto_dir", str),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def node_dir(network_dir: Path, replica_id: int) -> Path:
    return network_dir / f"replica-{replica_id}"


BRIDGE_KEY = "bridge"
"""Optional ``network.json`` section: ``{"url": ..., "replicas": [...]}``.

Replicas listed there, and every client, attach to that second broker (bridged
to ``broker.url``) instead of the main one; the other replicas stay on the main
broker. Older readers keep the section untouched in ``extra``.
"""


def bridged_replicas(config: NetworkConfig) -> frozenset[int]:
    section = config.extra.get(BRIDGE_KEY)
    if not isinstance(section, dict):
        return frozenset()
    ids = section.get("replicas", [])
    return frozenset(i for i in ids if isinstance(i, int)) if isinstance(ids, list) else frozenset()


def broker_url_for(config: NetworkConfig, replica_id: int | None) -> str:
    """The broker a replica (or, for ``None``, a client) connects to."""
    section = config.extra.get(BRIDGE_KEY)
    url = section.get("url") if isinstance(section, dict) else None
    if not isinstance(url, str) or (
        replica_id is not None and replica_id not in bridged_replicas(config)
    ):
        return config.broker_url
    return url
