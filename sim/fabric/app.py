"""The Fabric side of a node: the ledger as PBFT's application, and the Fabric workload.

:class:`LedgerApplication` turns each committed PBFT batch into one block
(``seq`` becomes the block number, each request's encoding a data item, the
commit certificate and agreed timestamp the metadata), validates and commits
it, and answers every request with the :class:`~ledger.peer.TxStatus` all
correct peers computed, so the PBFT client's f+1 matching replies *are* the
transaction's final validation code. Its ``head_digest`` is the block's header
hash, which is also PBFT's chained checkpoint digest (docs/contracts.md).

:class:`FabricWorkload` implements ``sim.world.workload.Workload``: each simulated
client is a Fabric user who gets an operation from an :class:`OperationSource`
(``kv`` here; ``patchset`` from ``sim.patchset_workload`` when present),
collects endorsements from live peers through :mod:`sim.fabric.sdk`, and submits the
signed envelope as its PBFT operation. A proposal that cannot gather enough
agreeing endorsements is still submitted with what it got, so the run shows
the validator rejecting it (``ENDORSEMENT_POLICY_FAILURE``) instead of a client
silently dropping work.

Where a node keeps its ledger: ``<node dir>/ledger/`` (block store files,
``state.sqlite`` and ``channel.json``) when the run has a data directory; otherwise the block store
lives in memory in ``NodeDisk.state`` (so it survives simulated crashes) and
the world state is rebuilt from it on recovery.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chaincode.endorser import Endorser
from ledger.block import Unwrap
from ledger.blockstore import BlockStore, MemoryFile
from ledger.codec import CodecError, decode, encode
from ledger.history import SqliteHistory
from ledger.peer import PeerLedger, TxStatus
from ledger.state import SqliteState
from ledger.transaction import (
    STATUS_ERROR,
    ProposalResult,
    Response,
    RWSet,
    proposal_hash,
)
from ledger.validator import ChannelConfig, EndorsementPolicy
from ledger.validator import parse as parse_item
from msp import names
from msp.ca import NetworkCrypto
from msp.msp import MSPManager
from msp.policy import PolicyError, parse
from pbft.messages import Commit, CommittedBatch, Request
from sim.errors import InputError
from sim.fabric.sdk import (
    DEFAULT_CHANNEL,
    EndorsementFailed,
    EndorsementPlanner,
    FabricClient,
    outcome,
)
from sim.scenario.model import Scenario
from sim.world.auth import client_user, network_crypto
from sim.world.disk import NodeDisk

LEDGER_DIR = "ledger"
"""Subdirectory of a node directory holding its ledger."""
STATE_FILE = "state.sqlite"
CHANNEL_FILE = "channel.json"
"""The channel configuration validation ran with, kept beside the block store."""
CHAINCODES = ("kv", "patchset")


def unwrap_request(item: bytes) -> bytes | None:
    """A block data item is an encoded PBFT request; its operation is the envelope."""
    try:
        return decode(item, Request).operation
    except CodecError:
        return None


class LedgerApplication:
    """``pbft.api.Application`` backed by a :class:`PeerLedger`."""

    def __init__(self, ledger: PeerLedger) -> None:
        self.ledger = ledger

    @property
    def last_executed(self) -> int:
        return self.ledger.height - 1

    @property
    def head_digest(self) -> bytes:
        return self.ledger.head_hash

    def execute(
        self, batch: CommittedBatch, fresh: Sequence[bool] | None = None
    ) -> Sequence[bytes]:
        data = tuple(encode(r) for r in batch.requests)
        if fresh is not None and len(fresh) != len(data):
            raise ValueError(f"fresh has {len(fresh)} entries for {len(data)} requests")
        stale = () if fresh is None else [i for i, new in enumerate(fresh) if not new]
        result = self.ledger.commit(
            batch.seq,
            data,
            certificate=tuple(encode(c) for c in batch.certificate),
            timestamp_ms=batch.timestamp_ms,
            view=batch.view,
            stale=stale,
        )
        return [encode(status) for status in result.statuses()]

    def results_at(self, seq: int) -> Sequence[bytes] | None:
        """What ``execute`` returned for block ``seq``: each transaction's id and stored code."""
        if not 1 <= seq < self.ledger.height:
            return None
        block = self.ledger.block(seq)
        results = []
        for item, code in zip(block.data, block.metadata.validation_codes, strict=True):
            payload = parse_item(item, self.ledger.unwrap)[2]
            tx_id = "" if payload is None else payload.header.tx_id
            results.append(encode(TxStatus(tx_id, int(code))))
        return results

    def batch_at(self, seq: int) -> CommittedBatch | None:
        if not 1 <= seq < self.ledger.height:
            return None
        block = self.ledger.block(seq)
        meta = block.metadata
        return CommittedBatch(
            seq,
            meta.view,
            meta.timestamp_ms,
            tuple(decode(item, Request) for item in block.data),
            tuple(decode(c, Commit) for c in meta.certificate),
        )

    def close(self) -> None:
        self.ledger.close()


def open_ledger(disk: NodeDisk, config: ChannelConfig, *, sync: bool = False) -> PeerLedger:
    """The ledger of the node whose disk is ``disk``, as its durable state left it."""
    if disk.path is None:
        files = disk.state.setdefault("ledger.blockstore", (MemoryFile(), MemoryFile()))
        return PeerLedger(config, unwrap_request, BlockStore(files[0], files[1], sync=False))
    return open_ledger_dir(disk.path / LEDGER_DIR, config, sync=sync)


def open_ledger_dir(
    directory: Path, config: ChannelConfig, *, sync: bool = True, unwrap: Unwrap = unwrap_request
) -> PeerLedger:
    """A ledger kept in ``directory`` (block store files and an SQLite state database).

    A new ledger also records its channel configuration (:data:`CHANNEL_FILE`),
    so ``ledger verify`` can replay validation later with the same policies.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / CHANNEL_FILE).exists():
        save_channel(directory, config, sync=sync)
    blocks = BlockStore.open(directory, sync=sync)
    connection = sqlite3.connect(directory / STATE_FILE)
    # The block store is the durable record; world state and history are derived
    # from it, and PeerLedger replays whatever blocks they lag behind on reopen.
    # So SQLite need not fsync every commit: write-ahead logging with
    # synchronous=NORMAL stays consistent after a crash or power loss (it may
    # only lose the newest commits, which the replay restores), and saves two
    # fsyncs per block on live nodes.
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = " + ("NORMAL" if sync else "OFF"))
    return PeerLedger(config, unwrap, blocks, SqliteState(connection), SqliteHistory(connection))


def parse_policy(scenario: Scenario) -> EndorsementPolicy:
    where = f"{scenario.source}: network.endorsement_policy"
    return _parse_policy_text(scenario.network.endorsement_policy, where)


def channel_config(crypto: NetworkCrypto, policy: EndorsementPolicy) -> ChannelConfig:
    return ChannelConfig(DEFAULT_CHANNEL, crypto.msps(), {name: policy for name in CHAINCODES})


def channel_record(config: ChannelConfig) -> dict[str, Any]:
    """The durable part of a channel configuration: names and policy texts (MSPs by id only).

    Certificates stay in the MSP tree, which a verifier brings itself; a
    policy is kept as the text it parses back from.
    """
    default = config.default_policy
    return {
        "channel": config.channel,
        "msp_ids": list(config.msps.mspids),
        "policies": {name: str(policy) for name, policy in sorted(config.policies.items())},
        "default_policy": None if default is None else str(default),
    }


def save_channel(directory: Path, config: ChannelConfig, *, sync: bool = True) -> None:
    """Write :data:`CHANNEL_FILE` atomically (a crash leaves the old file or the new one)."""
    text = json.dumps(channel_record(config), indent=2, sort_keys=True) + "\n"
    scratch = directory / (CHANNEL_FILE + ".tmp")
    with open(scratch, "w", encoding="utf-8") as handle:
        handle.write(text)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(scratch, directory / CHANNEL_FILE)


def load_channel(
    directory: Path, msps: MSPManager, policy_text: str | None = None
) -> ChannelConfig:
    """The channel configuration recorded in ``directory``, with ``msps`` as its MSPs.

    ``policy_text`` replaces every recorded policy (and, without a record, the
    channel is the default one with the shipped chaincodes). Raises
    :class:`InputError` naming the file and what is wrong.
    """
    path = directory / CHANNEL_FILE
    override = None if policy_text is None else _parse_policy_text(policy_text, "--policy")
    if not path.exists():
        if override is None:
            raise InputError(
                f"{path}: no channel configuration (ledgers made before it was recorded:"
                " pass --policy TEXT)"
            )
        return ChannelConfig(DEFAULT_CHANNEL, msps, {name: override for name in CHAINCODES})
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable channel configuration: {exc}") from None
    channel = record.get("channel") if isinstance(record, dict) else None
    policies = record.get("policies") if isinstance(record, dict) else None
    if not isinstance(channel, str) or not isinstance(policies, dict):
        raise InputError(f"{path}: expected an object with 'channel' (text) and 'policies'")
    missing = sorted(set(record.get("msp_ids") or ()) - set(msps.mspids))
    if missing:
        raise InputError(
            f"{path}: msp_ids: the channel has {', '.join(missing)}, which the MSP tree lacks"
        )
    default_text = record.get("default_policy")

    def policy(text: Any, key: str) -> EndorsementPolicy:
        return override if override is not None else _parse_policy_text(text, f"{path}: {key}")

    return ChannelConfig(
        channel,
        msps,
        {str(name): policy(text, f"policies.{name}") for name, text in policies.items()},
        None if default_text is None else policy(default_text, "default_policy"),
    )


def _parse_policy_text(text: Any, where: str) -> EndorsementPolicy:
    if not isinstance(text, str):
        raise InputError(f"{where}: expected a policy text, got {type(text).__name__}")
    try:
        return parse(text)
    except PolicyError as exc:
        raise InputError(
            f"{where}: expected a policy such as AND('Org1.member','Org2.member'): {exc}"
        ) from None


# ------------------------------------------------------------------ workload


@dataclass(frozen=True, slots=True)
class Call:
    """One chaincode invocation a simulated client wants to make."""

    chaincode: str
    function: str
    args: tuple[str, ...]
    signer: str | None = None
    """Identity to sign as (e.g. an admin); None: the client's own user."""


class OperationSource(Protocol):
    """Decides what each simulated client invokes next (one per chaincode workload)."""

    def next_call(self, client_index: int, now_ms: int) -> Call:
        """What to invoke next; a source may also define ``on_outcome(client, call, valid)``."""
        ...


class KVOperations:
    """Puts (blind writes) and adds (read-modify-writes) over ``workload.keys`` keys.

    Adds on a small key space collide, which is the point: MVCC conflicts show up
    in the summary as ``MVCC_READ_CONFLICT``.
    """

    def __init__(self, scenario: Scenario, crypto: NetworkCrypto, rng: random.Random) -> None:
        self._keys = max(1, scenario.workload.keys)
        self._rng = rng

    def next_call(self, client_index: int, now_ms: int) -> Call:
        key = f"k{self._rng.randrange(self._keys)}"
        if self._rng.random() < 0.5:
            return Call("kv", "put", (key, str(self._rng.randrange(1000))))
        return Call("kv", "add", (key, str(self._rng.randrange(1, 10))))


class PatchsetOperations:
    """The paper's three experiments as a load: upload + approve, register/download/report.

    Administrators (``Admin@org1`` uploads and signs, ``Admin@org2`` approves)
    release version after version of one patch; every client enrolls its
    device, downloads the newest release it has not fetched and reports the
    install. Choices follow what has *committed* (:meth:`on_outcome`), so a
    client never asks for a version that is not released yet; with nothing
    useful to do a client reads the catalog.
    """

    PATCH = "security-fix"

    def __init__(self, scenario: Scenario, crypto: NetworkCrypto, rng: random.Random) -> None:
        self._rng = rng
        self._crypto = crypto
        orgs = len(crypto.orgs)
        self._deployer = names.admin_name(1, names.org_domain(1))
        self._approver = names.admin_name(1, names.org_domain(2)) if orgs > 1 else None
        self._version = 0  # last version uploaded (committed)
        self._released = 0
        self._busy: set[str] = set()  # admin steps in flight
        self._registered: set[int] = set()
        self._downloaded: dict[int, int] = {}
        self._reported: dict[int, int] = {}

    def _upload(self) -> Call:
        from chaincode.patchset import PatchManifest, manifest_to_json, sign_manifest
        from chaincode.patchset.manifest import canonical_json

        version = self._version + 1
        content = f"{self.PATCH} {version}".encode()
        manifest = PatchManifest(
            self.PATCH,
            f"1.{version}",
            f"{self.PATCH}-1.{version}.bin",
            hashlib.sha256(content).hexdigest(),
            len(content),
            "mandatory",
            "write",
            "unrebooting",
            (),
            (),
            None,
            f"release {version}",
        )
        signature = sign_manifest(self._crypto.signer(self._deployer), manifest)
        text = canonical_json(manifest_to_json(manifest)).decode()
        return Call("patchset", "upload", (text, signature), self._deployer)

    def next_call(self, client_index: int, now_ms: int) -> Call:
        idle = self._version == self._released and "upload" not in self._busy
        if idle and (self._version == 0 or self._rng.random() < 0.1):
            self._busy.add("upload")
            return self._upload()
        if self._released < self._version and self._approver and "approve" not in self._busy:
            self._busy.add("approve")
            return Call("patchset", "approve", (self.PATCH, f"1.{self._version}"), self._approver)
        if client_index not in self._registered:
            return Call("patchset", "register", ('{"groups":["lab"],"os":"ubuntu-22.04"}',))
        if self._released and self._downloaded.get(client_index, 0) < self._released:
            content = f"{self.PATCH} {self._released}".encode()  # what _upload published
            verified = hashlib.sha256(content).hexdigest()
            return Call("patchset", "download", (self.PATCH, f"1.{self._released}", verified))
        fetched = self._downloaded.get(client_index, 0)
        if fetched and self._reported.get(client_index, 0) < fetched:
            return Call("patchset", "report", (self.PATCH, f"1.{fetched}", "installed", "false"))
        return Call("patchset", "catalog", ())

    def on_outcome(self, client_index: int, call: Call, valid: bool) -> None:
        if call.function in ("upload", "approve"):
            self._busy.discard(call.function)
        if not valid:
            return
        versioned = call.function in ("approve", "download", "report")
        version = int(call.args[1].split(".")[1]) if versioned else 0
        if call.function == "upload":
            self._version += 1
        elif call.function == "approve":
            self._released = max(self._released, version)
        elif call.function == "register":
            self._registered.add(client_index)
        elif call.function == "download":
            self._downloaded[client_index] = max(self._downloaded.get(client_index, 0), version)
        elif call.function == "report":
            self._reported[client_index] = max(self._reported.get(client_index, 0), version)


SourceFactory = Any
"""``(scenario, crypto, rng) -> OperationSource``."""

OPERATION_SOURCES: dict[str, SourceFactory] = {"kv": KVOperations, "patchset": PatchsetOperations}
SOURCE_MODULES = {"patchset": "sim.patchset_workload"}
"""Modules providing ``operation_source(scenario, crypto, rng)`` for other chaincodes."""


def operation_source(scenario: Scenario, crypto: NetworkCrypto, rng: random.Random) -> Any:
    name = scenario.workload.chaincode
    factory = OPERATION_SOURCES.get(name)
    if factory is None and name in SOURCE_MODULES:
        try:
            module = importlib.import_module(SOURCE_MODULES[name])
        except ModuleNotFoundError as exc:
            if exc.name != SOURCE_MODULES[name]:
                raise
            raise InputError(
                f"{scenario.source}: workload.chaincode: the {name!r} workload is not available"
            ) from None
        factory = module.operation_source
    if factory is None:
        raise InputError(
            f"{scenario.source}: workload.chaincode: expected one of {CHAINCODES}, got {name!r}"
        )
    return factory(scenario, crypto, rng)


class FabricWorkload:
    """``sim.world.workload.Workload`` for chaincode workloads: Fabric clients over PBFT."""

    def __init__(
        self,
        scenario: Scenario,
        crypto: NetworkCrypto,
        rng: random.Random,
        source: OperationSource | None = None,
    ) -> None:
        self.scenario = scenario
        self.crypto = crypto
        self.rng = rng
        self.policy = parse_policy(scenario)
        self.config = channel_config(crypto, self.policy)
        self.planner = EndorsementPlanner(self.policy)
        self.source: OperationSource = source or operation_source(scenario, crypto, rng)
        self.apps: dict[int, LedgerApplication] = {}
        self.endorsers: dict[int, Endorser] = {}
        self._clients: dict[str, FabricClient] = {}
        self._calls: dict[int, Call] = {}
        """Each client's outstanding call (PBFT allows one per client)."""
        self.submitted = 0
        self.endorsement_failures: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()

    def make_application(self, replica_id: int, disk: NodeDisk) -> LedgerApplication:
        old = self.apps.pop(replica_id, None)
        if old is not None and disk.path is not None:
            old.close()
        ledger = open_ledger(disk, self.config)
        app = LedgerApplication(ledger)
        self.apps[replica_id] = app
        signer = self.crypto.signer(names.replica_peer_name(replica_id, len(self.crypto.orgs)))
        self.endorsers[replica_id] = Endorser(signer, ledger, self.config.msps, DEFAULT_CHANNEL)
        return app

    def _client(self, client_index: int, signer: str | None) -> FabricClient:
        if signer is None:
            org, user = client_user(client_index, len(self.crypto.orgs))
            signer = names.user_name(user, names.org_domain(org))
        client = self._clients.get(signer)
        if client is None:
            client = FabricClient(self.crypto.signer(signer), self.config.msps, self.rng)
            self._clients[signer] = client
        return client

    def next_operation(self, client_index: int, now_ms: int, live_replicas: Sequence[int]) -> bytes:
        call = self.source.next_call(client_index, now_ms)
        self._calls[client_index] = call
        client = self._client(client_index, call.signer)
        proposal = client.propose(call.chaincode, call.function, call.args, now_ms)
        order = [r for r in sorted(live_replicas) if r in self.endorsers]
        self.rng.shuffle(order)
        self.submitted += 1
        plan = self.planner.plan([self.endorsers[r] for r in order])
        try:
            tx = client.endorse(proposal, plan, self.planner, now_ms)
            return tx.envelope
        except EndorsementFailed as failed:
            self.endorsement_failures[failed.kind] += 1
            if failed.result is not None:
                return client.envelope(proposal, failed.result, failed.endorsements)
            empty = RWSet(call.chaincode, (), (), ())
            response = Response(STATUS_ERROR, str(failed), b"", None)
            result = ProposalResult(proposal_hash(proposal.header), empty, response)
            return client.envelope(proposal, result, ())

    def on_result(self, client_index: int, operation: bytes, result: bytes, now_ms: int) -> None:
        found = outcome(result)
        self.codes["UNREADABLE" if found is None else found.name] += 1
        call = self._calls.pop(client_index, None)
        listener = getattr(self.source, "on_outcome", None)
        if call is not None and listener is not None:
            listener(client_index, call, found is not None and found.valid)

    def summary(self) -> dict[str, Any]:
        return {
            "chaincode": self.scenario.workload.chaincode,
            "submitted": self.submitted,
            "results": sum(self.codes.values()),
            "valid": self.codes.get("VALID", 0),
            "validation_codes": dict(sorted(self.codes.items())),
            "endorsement_failures": dict(sorted(self.endorsement_failures.items())),
        }


def make_workload(scenario: Scenario, crypto: Any, rng: random.Random) -> FabricWorkload:
    """Entry point used by ``sim.world.workload.workload_for``."""
    if crypto is None:
        crypto = network_crypto(scenario)
    return FabricWorkload(scenario, crypto, rng)


def ledgers(workload: Any) -> Mapping[int, PeerLedger]:
    """Each replica's ledger, for invariants and results (empty for other workloads)."""
    apps = getattr(workload, "apps", {})
    return {i: app.ledger for i, app in apps.items() if isinstance(app, LedgerApplication)}
