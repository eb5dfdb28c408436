"""A simulated network kept in a directory, for commands run one after another.

``ledgersim net init --sim DIR`` writes the configuration and the identities;
each ``ledgersim patch ... --network DIR`` then opens the directory, runs one
deterministic simulation in which its transaction is endorsed, ordered by the
PBFT replicas and committed by every peer, and leaves the ledgers on disk.

Layout (the node directories of docs/design.md, "Fixed formats", so
``ledger dump DIR/replica-0`` works):

* ``simnet.json`` — seed, shape, faults, the virtual clock and a command counter;
* ``crypto/peerOrganizations/...`` — the cryptogen tree (regenerated from the
  seed on every open, written once for people and ``ledger verify``);
* ``replica-<i>/ledger/`` — each peer's block store and state database;
* ``blobs/<peer name>/`` — each peer's patch files, and when each was placed
  (``placed.json``: files no release needs are swept, :mod:`sim.fabric.filegc`).

Each session continues the same network: the simulator resumes every
replica from the PBFT records the previous session left in its node
directory (as after a crash), so the view, stable checkpoint and each
client's last timestamp carry over -- a view change in one command is still
in force in the next -- and its virtual clock starts at the saved clock, so
ledger time (proposal timestamps, which deadlines are judged by, and the
agreed block timestamps, which backups require to grow) keeps running.
Each session's run seed is derived from the network seed and the command
counter, so nonces and transaction ids never repeat and a directory replays
exactly from the same commands.

The module runs a little past 500 lines because every command's steps
(transactions, proofs, files and their sweep) share one opened directory and
its clock, which :class:`SimGateway` is.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from chaincode.endorser import Endorser
from ledger.block import Block
from ledger.codec import decode
from ledger.transaction import STATUS_OK, Envelope, TxPayload
from msp import names
from msp.ca import NetworkCrypto
from msp.errors import MSPError
from msp.identity import SigningIdentity
from msp.layout import ORGS_DIR
from msp.msp import read_crls
from pbft.client import Client
from pbft.messages import Commit
from pbft.replica import Replica
from sim.errors import InputError
from sim.fabric.app import open_ledger_dir
from sim.fabric.blobs import DirectoryBlobStore
from sim.fabric.channel import channel_config, parse_policy
from sim.fabric.distribution import (
    Distribution,
    FetchResult,
    FileRef,
    PeerServer,
    ReleaseRequest,
    ServeMode,
)
from sim.fabric.filegc import GRACE_MS, FileSweeper, check_grace, sweep_peer
from sim.fabric.gateway import CHAINCODE, Refused
from sim.fabric.operations import Call
from sim.fabric.proof import make_proof
from sim.fabric.sdk import DEFAULT_CHANNEL, FabricClient
from sim.fabric.workload import FabricWorkload
from sim.scenario.model import Fault, NetworkSpec, Scenario, WorkloadSpec
from sim.trace.writer import TraceWriter
from sim.world.auth import network_crypto
from sim.world.results import RunResult
from sim.world.simulation import Simulation, derive_rng

__all__ = [
    "SIMNET_FILE",
    "Session",
    "SimGateway",
    "SimNetConfig",
    "init_sim_network",
    "is_sim_network",
]

SIMNET_FILE = "simnet.json"
SESSION_MS = 120_000  # a transaction that has not committed by then is reported as lost
GAP_MS = 1_000  # ledger time between two sessions


@dataclass(slots=True)
class SimNetConfig:
    """What ``simnet.json`` holds."""

    seed: int = 1
    replicas: int = 4
    orgs: int = 2
    users: int = 2
    crypto: str = "ecdsa-p256"
    byzantine: dict[str, str] = field(default_factory=dict)
    """Replica id (as text) -> behaviour, applied in every session."""
    clock_ms: int = 0
    """Virtual time at which the next command starts (past everything so far)."""
    commands: int = 0
    client_view: int = 0
    """The PBFT view the gateway's client last learned from replies: it addresses that
    view's primary first, as a long-running client would."""
    file_grace_ms: int = GRACE_MS
    """How long a placed file no pending or released version refers to stays on a peer
    (:mod:`sim.fabric.filegc`), in the network's virtual time."""

    def scenario(self) -> Scenario:
        faults = tuple(
            Fault("byzantine", at_ms=0, replica=int(r), behavior=b)
            for r, b in sorted(self.byzantine.items())
        )
        return Scenario(
            name="simnet",
            seed=self.seed,
            duration_ms=SESSION_MS,
            network=NetworkSpec(replicas=self.replicas, orgs=self.orgs, crypto=self.crypto),
            workload=WorkloadSpec(
                clients=self.users * self.orgs, requests=1, rate_per_s=0, chaincode="kv"
            ),
            faults=faults,
        )


def is_sim_network(directory: Path) -> bool:
    return (Path(directory) / SIMNET_FILE).is_file()


def _peer_names(cfg: SimNetConfig) -> list[str]:
    return [names.replica_peer_name(i, cfg.orgs) for i in range(cfg.replicas)]


def init_sim_network(
    directory: str | Path,
    *,
    seed: int = 1,
    replicas: int = 4,
    orgs: int = 2,
    users: int = 2,
    crypto: str = "ecdsa-p256",
    byzantine: dict[int, str] | None = None,
) -> SimNetConfig:
    """Create a simulated network in ``directory`` (which must be absent or empty)."""
    root = Path(directory)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InputError(f"{root}: already exists and is not an empty directory")
    if replicas < 4 or orgs < 1 or users < 1:
        raise InputError(f"{root}: need replicas >= 4, orgs >= 1, users >= 1")
    if crypto not in ("ecdsa-p256", "ed25519"):
        raise InputError(f"{root}: crypto must be ecdsa-p256 or ed25519, got {crypto!r}")
    cfg = SimNetConfig(
        seed=seed,
        replicas=replicas,
        orgs=orgs,
        users=users,
        crypto=crypto,
        byzantine={str(k): v for k, v in (byzantine or {}).items()},
    )
    root.mkdir(parents=True, exist_ok=True)
    network_crypto(cfg.scenario()).write(root / "crypto")
    _save(root, cfg)
    return cfg


def crypto_dir(root: Path) -> Path:
    """The network's cryptogen tree: what ``crypto revoke`` and ``verify-proof --msp`` use."""
    return root / "crypto" / ORGS_DIR


def _identities(root: Path, cfg: SimNetConfig) -> NetworkCrypto:
    """The keys (regenerated from the seed) with the CRLs now on disk.

    The seed gives back every key and certificate, but not what happened to
    them since: ``ledgersim crypto revoke`` writes a CRL into the tree, and
    an org's verifiers must honour it from the next command on.
    """
    crypto: NetworkCrypto = network_crypto(cfg.scenario())
    try:
        orgs = []
        for org in crypto.orgs:
            crls = tuple(read_crls(crypto_dir(root) / org.domain / "msp" / "crls"))
            revoking = replace(org, crls=crls)
            revoking.msp()  # refuses a CRL its CAs did not sign, here rather than mid-run
            orgs.append(revoking)
    except MSPError as exc:
        raise InputError(f"{crypto_dir(root)}: {exc}") from None
    return NetworkCrypto(tuple(orgs))


def _save(root: Path, cfg: SimNetConfig) -> None:
    tmp = root / (SIMNET_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(cfg), indent=2, sort_keys=True) + "\n")
    tmp.replace(root / SIMNET_FILE)


def _load(root: Path) -> SimNetConfig:
    path = root / SIMNET_FILE
    try:
        data = json.loads(path.read_text())
        cfg = SimNetConfig(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a simulated network configuration ({exc})") from None
    check_grace(cfg.file_grace_ms, str(path))
    return cfg


@dataclass(slots=True)
class Session:
    """What one transaction's simulation did: for the narration and ``--json``."""

    user: str
    function: str
    tx_id: str
    code: str
    result: RunResult
    endorsers: tuple[str, ...]
    timestamp_ms: int
    trace: list[dict[str, Any]] = field(default_factory=list)
    """The session's trace events (``sim.trace.writer`` schema) if the gateway recorded them."""

    @property
    def view(self) -> int:
        """The view correct replicas were in when the session ended."""
        return max((rep.view for rep in self.result.replicas if not rep.byzantine), default=0)

    def facts(self) -> dict[str, Any]:
        r = self.result
        return {
            "user": self.user,
            "function": self.function,
            "tx_id": self.tx_id,
            "validation_code": self.code,
            "timestamp_ms": self.timestamp_ms,
            "endorsers": list(self.endorsers),
            "messages": dict(sorted(r.messages.items())),
            "view_changes": r.view_changes,
            "view": self.view,
            "safety_ok": not r.safety_violations,
            "heights": [rep.height for rep in r.replicas],
            "dropped": {
                str(rep.id): dict(sorted(rep.dropped.items())) for rep in r.replicas if rep.dropped
            },
        }


class _Recorder(TraceWriter):
    """Keeps a session's trace events in memory instead of writing them out."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.log: list[dict[str, Any]] = []

    def write(self, event: dict[str, Any]) -> None:
        self.log.append(event)
        self.events += 1


class _OneCall:
    """The workload's operation source for a session: exactly one scripted call."""

    def __init__(self, call: Call) -> None:
        self.call = call

    def next_call(self, client_index: int, now_ms: int) -> Call:
        return self.call


class SimGateway:
    """``sim.fabric.gateway.Gateway`` over a simulated network directory."""

    def __init__(self, root: Path, cfg: SimNetConfig) -> None:
        self.root = root
        self.cfg = cfg
        scenario = cfg.scenario()
        self.crypto = _identities(root, cfg)
        self.policy = parse_policy(scenario)
        self.config = channel_config(self.crypto, self.policy)
        self.peer_names = _peer_names(cfg)
        stores = {p: DirectoryBlobStore(root / "blobs" / p) for p in self.peer_names}
        self.files = Distribution([PeerServer(p, stores[p]) for p in self.peer_names])
        self.sweepers = {p: FileSweeper(stores[p], cfg.file_grace_ms) for p in self.peer_names}
        for replica in cfg.byzantine:  # a Byzantine node lies about files too
            self.files.peers[int(replica)].mode = ServeMode.CORRUPT
        self.sessions: list[Session] = []
        self.down: set[int] = set()
        self.fetch_order: list[str] | None = None
        """Peers to try in this order (a demo's choice); default: a seeded shuffle."""
        self.record_traces = False
        """Keep each session's trace events in :attr:`Session.trace` (for a narration)."""

    @classmethod
    @contextlib.contextmanager
    def open(cls, directory: str | Path) -> Iterator[SimGateway]:
        root = Path(directory)
        gateway = cls(root, _load(root))
        try:
            yield gateway
            gateway.sweep_files()  # after a command that went through (a refused one: next time)
        finally:  # a refused command still advanced the clock and may have committed
            _save(root, gateway.cfg)

    # ------------------------------------------------------------------ identities

    def signer(self, name: str) -> SigningIdentity:
        try:
            return self.crypto.signer(name)
        except Exception:
            known = ", ".join(n for n, _m, _r in self.crypto.identities())
            raise InputError(f"no identity {name!r} in this network (known: {known})") from None

    def _next_seed(self) -> int:
        self.cfg.commands += 1
        digest = hashlib.sha256(f"simnet/{self.cfg.seed}/{self.cfg.commands}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    # ------------------------------------------------------------------ transactions

    def submit(self, user: str, function: str, args: Sequence[str]) -> bytes:
        # Endorse first, as a Fabric gateway does: a refusal is reported at once and
        # never ordered (the workload would submit it anyway, to be marked invalid).
        self.evaluate(user, function, args)
        return self._order(user, function, Call(CHAINCODE, function, tuple(args), signer=user))

    def submit_envelope(self, envelope: bytes, user: str, function: str) -> bytes:
        """Order and commit an envelope its creator already signed (the HTTP gateway's path).

        Nothing here signs for the user: the session's client carries the bytes as
        they are. Same outcome rules as :meth:`submit`; ``self.sessions[-1]`` has the code.
        """
        return self._order(user, function, envelope)

    def _order(self, user: str, function: str, operation: Call | bytes) -> bytes:
        seed = self._next_seed()
        scenario = self.cfg.scenario()
        started = time.perf_counter()
        recorder = _Recorder() if self.record_traces else None
        # Client request timestamps follow the clock, so they too exceed every earlier
        # session's (the replicas' exactly-once rule ignores anything not newer).
        simulation = Simulation(
            scenario,
            seed,
            trace=recorder,
            data_dir=self.root,
            replica_class=Replica,
            client_class=Client,
            progress=None,
            start_ms=self.cfg.clock_ms,
            resume=True,
            identities=self.crypto,
        )
        workload = simulation.workload
        assert isinstance(workload, FabricWorkload)
        if isinstance(operation, Call):
            workload.source = _OneCall(operation)
        else:  # the session's one request carries the given envelope as it is
            workload.presigned.append(operation)
        for slot in simulation.clients:
            slot.client.view = self.cfg.client_view
        try:
            simulation.run()
            result = simulation.result(time.perf_counter() - started)
        finally:
            for app in workload.apps.values():
                app.close()
        self.cfg.clock_ms = int(simulation.now) + GAP_MS
        self.cfg.client_view = max(slot.client.view for slot in simulation.clients)
        submitted = [operation for operation, _at in simulation.history.submitted.values()]
        if not submitted:
            raise Refused(f"{function}: the transaction was never submitted")
        payload = decode(decode(submitted[0], Envelope).payload, TxPayload)
        response = payload.result.response
        # The one request's validation code, as the client read it from f+1 matching replies.
        code = next(iter(workload.codes), "NOT_COMMITTED")
        self.sessions.append(
            Session(
                user,
                function,
                payload.header.tx_id,
                code,
                result,
                tuple(
                    sorted(
                        self.config.msps.identity(e.endorser.mspid, e.endorser.cert_pem).name
                        for e in payload.endorsements
                    )
                ),
                payload.header.timestamp_ms,
                recorder.log if recorder is not None else [],
            )
        )
        if response.status != STATUS_OK:
            raise Refused(response.message)
        if code != "VALID":
            raise Refused(f"{function}: transaction {payload.header.tx_id[:12]} is {code}")
        return response.payload

    def evaluate(self, user: str, function: str, args: Sequence[str]) -> bytes:
        """Ask one peer of each org; the answers must agree byte for byte."""
        signer = self.signer(user)
        seed = self._next_seed()
        client = FabricClient(signer, self.config.msps, derive_rng(seed, "evaluate"))
        now = self.cfg.clock_ms
        self.cfg.clock_ms += GAP_MS
        proposal = client.propose(CHAINCODE, function, tuple(args), now)
        answers: dict[bytes, list[str]] = {}
        problems: list[str] = []
        # Prefer peers not known to be Byzantine; never a peer that is down.
        reachable = [i for i in range(self.cfg.replicas) if i not in self.down]
        reachable.sort(key=lambda i: str(i) in self.cfg.byzantine)
        for org in range(1, self.cfg.orgs + 1):
            in_org = [
                i for i in reachable if names.replica_org_and_peer(i, self.cfg.orgs)[0] == org
            ]
            if not in_org:
                raise Refused(f"{function}: no peer of {names.org_mspid(org)} is reachable")
            replica = in_org[0]
            ledger = open_ledger_dir(self.root / f"replica-{replica}" / "ledger", self.config)
            try:
                peer = names.replica_peer_name(replica, self.cfg.orgs)
                endorser = Endorser(
                    self.crypto.signer(peer), ledger, self.config.msps, DEFAULT_CHANNEL
                )
                response = endorser.process(proposal.signed, now)
            finally:
                ledger.close()
            if response.status != STATUS_OK or response.result is None:
                problems.append(response.message)
                continue
            answers.setdefault(response.result.response.payload, []).append(peer)
        if problems:
            raise Refused(problems[0])
        if len(answers) != 1:
            raise Refused(f"{function}: peers disagree ({len(answers)} different answers)")
        return next(iter(answers))

    # ------------------------------------------------------------------ proofs

    def now_ms(self) -> int:
        """The network's virtual clock: a device's clock in this simulation."""
        return self.cfg.clock_ms

    def prove(self, user: str, name: str, version: str = "") -> dict[str, Any]:
        """Submit ``metadata`` as a transaction; the proof of the block that committed it."""
        self.submit(user, "metadata", (name, version) if version else (name,))
        return self.proof_of(self.sessions[-1].tx_id, name, version)

    def proof_of(self, tx_id: str, name: str, version: str = "") -> dict[str, Any]:
        """The proof of an already committed ``metadata`` transaction (a caller signed it)."""
        block, index = self._committed(tx_id)
        signers = {}
        for raw in block.metadata.certificate:
            replica = decode(raw, Commit).replica
            if 0 <= replica < self.cfg.replicas:
                signers[replica] = self.crypto.signer(self.peer_names[replica]).public()
        return make_proof(ReleaseRequest(name, version), block, index, signers)

    def _committed(self, tx_id: str) -> tuple[Block, int]:
        """The block (from a correct peer's ledger) holding ``tx_id``, and its index there."""
        for replica in range(self.cfg.replicas):
            if str(replica) in self.cfg.byzantine:
                continue
            ledger = open_ledger_dir(self.root / f"replica-{replica}" / "ledger", self.config)
            try:
                where = ledger.tx_location(tx_id)
                if where is not None:
                    return ledger.block(where.block), where.tx
            finally:
                ledger.close()
        raise Refused(f"transaction {tx_id[:12]} is in no correct peer's ledger")

    def advance(self, ms: int) -> None:
        """Let ``ms`` of quiet virtual time pass before the next command (e.g. to a deadline)."""
        if ms < 0:
            raise ValueError(f"time only moves forward, got {ms} ms")
        self.cfg.clock_ms += ms

    # ------------------------------------------------------------------ files

    def publish_file(self, data: bytes) -> list[str]:
        ref, holders = self.files.publish(data)
        for peer in holders:
            self.sweepers[peer].placed(ref.sha256, self.cfg.clock_ms)
        return holders

    def sweep_files(self) -> dict[str, list[str]]:
        """Remove, on each reachable peer, files past their grace period that no pending or
        released version in that peer's own state refers to; what each peer removed."""
        removed: dict[str, list[str]] = {}
        for replica, peer in enumerate(self.peer_names):
            ledger_dir = self.root / f"replica-{replica}" / "ledger"
            if replica not in self.down and ledger_dir.is_dir():
                opener = functools.partial(open_ledger_dir, ledger_dir, self.config)
                removed[peer] = sweep_peer(self.sweepers[peer], opener, self.cfg.clock_ms)
        return {peer: gone for peer, gone in removed.items() if gone}

    def fetch_file(self, ref: FileRef) -> FetchResult:
        if self.fetch_order is not None:
            return self.files.fetch(ref, order=self.fetch_order)
        return self.files.fetch(ref, rng=derive_rng(self._next_seed(), "fetch"))

    def set_down(self, replica: int, down: bool) -> None:
        """Take a peer's file service down (or back up) for what follows."""
        self.files.peers[replica].up = not down
        (self.down.add if down else self.down.discard)(replica)
