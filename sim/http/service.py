"""The gateway's work on a simulated network: prepare, endorse, submit, read.

A write takes three calls, and the gateway signs none of them for the caller:

1. ``prepare``: the gateway builds the proposal from the caller's certificate
   and returns its exact bytes;
2. ``endorse``: the caller's signature over those bytes is checked, the peers
   endorse, and the gateway returns the transaction payload to sign;
3. ``submit``: the caller's signature over the payload seals the envelope,
   which is ordered and committed; the answer carries the validation code.

A refusal at any step writes nothing: nothing reaches the ledger before
``submit``, and a proposal the peers refuse is never ordered. Reads run the
contract on one peer's committed state as the authenticated caller, without
ordering (Fabric's *evaluate*). All work on the directory is serialised by one
lock, since each step opens the network's files.

It runs past 500 lines because the three write steps share the table of
prepared transactions and its bounds (per caller, in all, expiry): splitting
them would split the one invariant that a prepared transaction is submitted at
most once, by the member who prepared it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaincode.endorser import Endorser
from chaincode.shim import ContractError, Creator
from chaincode.simulation import SimulationStub
from ledger.block import Block, ValidationCode, code_name
from ledger.codec import encode
from ledger.peer import PeerLedger
from ledger.transaction import (
    NONCE_SIZE,
    Endorsement,
    Envelope,
    ProposalResult,
    SerializedIdentity,
    SignedProposal,
    TxHeader,
)
from ledger.validator import parse as parse_item
from msp import names
from msp.errors import MSPError
from msp.identity import Identity
from msp.msp import at_virtual_ms
from sim.errors import InputError
from sim.fabric.app import open_ledger_dir, unwrap_request
from sim.fabric.distribution import DownloadFailed, FileRef
from sim.fabric.gateway import CHAINCODE, Refused
from sim.fabric.proof import ProofRejected
from sim.fabric.sdk import (
    DEFAULT_CHANNEL,
    EndorsementFailed,
    EndorsementPlanner,
    collect_endorsements,
    proposal_header,
    transaction_payload,
)
from sim.fabric.simnet import GAP_MS, SimGateway, is_sim_network
from sim.http.activity import MAX_SECONDS, SECOND_MS, ActivityLog, ledger_figures, session_figures
from sim.http.errors import ApiError
from sim.http.identities import Member, load_members
from sim.http.signing import (
    WINDOW_MS,
    NonceBook,
    NonceBookFull,
    SignatureFormError,
    request_digest,
    signature_bytes,
)

PENDING_TTL_S = 600.0
"""A prepared transaction not submitted within this many seconds is forgotten."""
MAX_PENDING = 1_000
"""Prepared transactions held at once; past it a prepare is refused (503), nothing is evicted."""
MAX_PENDING_PER_CALLER = 100
"""So that one member preparing in a loop cannot take every slot from the others."""
WRITES = ("upload", "approve", "withdraw", "register", "download", "report", "reassign", "metadata")
"""Writes the gateway prepares; ``metadata`` is ordered only to be proven (a release proof)."""
READS = ("catalog", "metadata", "history", "compliance")


@dataclass(slots=True)
class Pending:
    """A transaction between prepare and submit, bound to the member who prepared it."""

    caller: str
    header: TxHeader
    created_s: float
    signed: SignedProposal | None = None
    result: ProposalResult | None = None
    endorsements: list[Endorsement] = field(default_factory=list)
    payload: bytes | None = None


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class NetworkService:
    """One simulated network directory, served to authenticated members."""

    def __init__(self, directory: str | Path, clock: Callable[[], int] = wall_ms) -> None:
        self.root = Path(directory)
        if not is_sim_network(self.root):
            raise InputError(f"{self.root}: not a simulated network (ledgersim net init --sim)")
        self.clock = clock
        self.lock = threading.Lock()
        self.nonces = NonceBook()
        self.pending: dict[str, Pending] = {}
        self._book = threading.Lock()  # guards ``pending``: steps run on worker threads
        self.activity = ActivityLog(0)
        with self._network() as gateway:
            self.members = load_members(self.root / "crypto", gateway.config.msps)
            self.replicas = gateway.cfg.replicas
        self.activity.replicas = self.replicas

    @contextmanager
    def _network(self) -> Iterator[SimGateway]:
        with self.lock, SimGateway.open(self.root) as gateway:
            gateway.record_traces = True  # for the network view (sim.http.activity)
            try:
                yield gateway
            finally:  # a refused session still ran: its messages and view changes count
                self.activity.record(gateway.sessions)

    # ------------------------------------------------------------------ who is calling

    def member(self, name: str) -> Member:
        found = self.members.get(name)
        if found is None:
            raise ApiError(401, f"unknown identity {name!r}")
        return found

    def authenticate(
        self, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> Member:
        """The member who signed this request; 401 for anything short of a fresh signature."""
        name = headers.get("identity", "")
        if not name:
            raise ApiError(401, "missing X-Ledgersim-Identity (every /api request is signed)")
        member = self.member(name)
        try:
            timestamp = int(headers.get("timestamp", ""))
        except ValueError:
            raise ApiError(
                401, "X-Ledgersim-Timestamp must be milliseconds since the epoch"
            ) from None
        nonce = headers.get("nonce", "")
        if not 16 <= len(nonce) <= 128:
            raise ApiError(401, "X-Ledgersim-Nonce must be 16 to 128 characters")
        now = self.clock()
        if abs(now - timestamp) > WINDOW_MS:
            raise ApiError(
                401, f"request timestamp is more than {WINDOW_MS} ms from the gateway's clock"
            )
        digest = request_digest(method, target, body, timestamp, nonce)
        self._check(member, digest, headers.get("signature", ""), "request")
        try:
            fresh = self.nonces.fresh(member.name, nonce, now)
        except NonceBookFull as exc:
            raise ApiError(503, f"too many signed requests at once ({exc}); retry later") from None
        if not fresh:
            raise ApiError(401, "replayed request (this nonce was already used)")
        return member

    @staticmethod
    def _check(member: Member, data: bytes, signature_hex: str, what: str) -> None:
        try:
            signature = signature_bytes(signature_hex, member.ecdsa)
        except SignatureFormError as exc:
            raise ApiError(400 if what != "request" else 401, f"{what} signature: {exc}") from None
        verdict = member.identity.check(data, signature)
        if not verdict.ok:
            status = 401 if what == "request" else 403
            raise ApiError(
                status, f"{what} signature does not verify for {member.name}: {verdict.reason}"
            )

    # ------------------------------------------------------------------ writes

    def prepare(self, member: Member, function: str, args: Sequence[str]) -> dict[str, Any]:
        """Step 1: the proposal bytes ``member`` is to sign."""
        if function not in WRITES:
            raise ApiError(400, f"unknown write {function!r} (one of {', '.join(WRITES)})")
        with self._network() as gateway:
            now = gateway.cfg.clock_ms
            gateway.advance(GAP_MS)
        creator = SerializedIdentity(member.mspid, member.identity.cert_pem)
        header = proposal_header(
            creator, DEFAULT_CHANNEL, CHAINCODE, function, args, now, os.urandom(NONCE_SIZE)
        )
        with self._book:
            self._expire()
            mine = sum(1 for p in self.pending.values() if p.caller == member.name)
            if mine >= MAX_PENDING_PER_CALLER or len(self.pending) >= MAX_PENDING:
                raise ApiError(
                    503,
                    f"too many prepared transactions waiting ({mine} of {member.name}, "
                    f"{len(self.pending)} in all); submit them or retry later",
                )
            self.pending[header.tx_id] = Pending(member.name, header, time.monotonic())
        raw = encode(header)
        return {
            "tx_id": header.tx_id,
            "function": function,
            "args": list(args),
            "sign": "proposal",
            "bytes": raw.hex(),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "next": f"/api/tx/{header.tx_id}/endorse",
        }

    def _file_is_placed(self, args: Sequence[str]) -> None:
        """Refuse to order an upload whose file is not on the peers: devices could not fetch it."""
        try:
            manifest = json.loads(args[0])
            sha256, size = manifest["file"]["sha256"], int(manifest["file"]["size"])
        except (IndexError, KeyError, TypeError, ValueError):
            raise ApiError(
                400,
                "upload: the first argument must be a manifest naming file.sha256 and file.size",
            ) from None
        try:
            self.fetch(str(sha256), size)
        except ApiError:
            raise ApiError(
                409, "upload: the manifest's file is not on the peers; POST it to /api/files first"
            ) from None

    def _pending(self, member: Member, tx_id: str) -> Pending:
        with self._book:
            self._expire()
            pending = self.pending.get(tx_id)
        if pending is None or pending.caller != member.name:
            raise ApiError(404, f"no prepared transaction {tx_id!r} of {member.name}")
        return pending

    def _forget(self, tx_id: str) -> bool:
        """Drop a prepared transaction; False if it was gone already (a concurrent submit)."""
        with self._book:
            return self.pending.pop(tx_id, None) is not None

    def _expire(self) -> None:
        horizon = time.monotonic() - PENDING_TTL_S
        for tx_id in [t for t, p in self.pending.items() if p.created_s < horizon]:
            del self.pending[tx_id]

    def endorse(self, member: Member, tx_id: str, signature_hex: str) -> dict[str, Any]:
        """Step 2: check the proposal signature, collect endorsements, return the payload."""
        pending = self._pending(member, tx_id)
        raw = encode(pending.header)
        self._check(member, raw, signature_hex, "proposal")
        signed = SignedProposal(raw, signature_bytes(signature_hex, member.ecdsa))
        with self._network() as gateway, ExitStack() as stack:
            endorsers = [
                Endorser(gateway.crypto.signer(peer), ledger, gateway.config.msps, DEFAULT_CHANNEL)
                for peer, ledger in self._ledgers(gateway, stack)
            ]
            planner = EndorsementPlanner(gateway.policy)
            try:
                result, endorsements, identities = collect_endorsements(
                    signed,
                    planner.plan(endorsers),
                    planner,
                    gateway.config.msps,
                    pending.header.timestamp_ms,
                )
            except EndorsementFailed as failed:
                self._forget(tx_id)
                raise ApiError(
                    409, f"{pending.header.function}: {failed}", kind=failed.kind
                ) from None
        pending.signed, pending.result = signed, result
        pending.endorsements = endorsements
        pending.payload = transaction_payload(pending.header, result, endorsements)
        return {
            "tx_id": tx_id,
            "sign": "transaction",
            "bytes": pending.payload.hex(),
            "sha256": hashlib.sha256(pending.payload).hexdigest(),
            "endorsers": [i.name for i in identities],
            "response": _json_or_text(result.response.payload),
            "next": f"/api/tx/{tx_id}/submit",
        }

    def submit(self, member: Member, tx_id: str, signature_hex: str) -> dict[str, Any]:
        """Step 3: seal the envelope with the caller's signature, order it, report the outcome."""
        pending = self._pending(member, tx_id)
        if pending.payload is None:
            raise ApiError(409, f"transaction {tx_id} is not endorsed yet (POST .../endorse first)")
        self._check(member, pending.payload, signature_hex, "transaction")
        if pending.header.function == "upload":
            # Checked here, not when prepared: a caller endorses first (the peers may
            # refuse the upload), places the file, then submits.
            self._file_is_placed(pending.header.args)
        envelope = encode(Envelope(pending.payload, signature_bytes(signature_hex, member.ecdsa)))
        if not self._forget(tx_id):
            raise ApiError(409, f"transaction {tx_id} was already submitted")
        with self._network() as gateway:
            try:
                reply = gateway.submit_envelope(envelope, member.name, pending.header.function)
            except Refused as exc:
                code = gateway.sessions[-1].code if gateway.sessions else "NOT_SUBMITTED"
                raise ApiError(409, str(exc), tx_id=tx_id, validation_code=code) from None
            session = gateway.sessions[-1]
        return {
            "tx_id": tx_id,
            "validation_code": session.code,
            "view": session.view,
            "endorsers": list(session.endorsers),
            "response": _json_or_text(reply),
        }

    # ------------------------------------------------------------------ reads

    def query(self, member: Member, function: str, args: Sequence[str]) -> Any:
        """Run a read-only contract function as ``member`` on a reachable peer's state."""
        if function not in READS:
            raise ApiError(400, f"unknown query {function!r} (one of {', '.join(READS)})")
        with self._network() as gateway, ExitStack() as stack:
            now = gateway.cfg.clock_ms
            verdict = gateway.config.msps.validate(member.identity, at_virtual_ms(now))
            if not verdict.ok:
                raise ApiError(403, f"{member.name} is not a valid member: {verdict.reason}")
            creator = SerializedIdentity(member.mspid, member.identity.cert_pem)
            header = proposal_header(
                creator, DEFAULT_CHANNEL, CHAINCODE, function, args, now, os.urandom(NONCE_SIZE)
            )
            peer, ledger = next(self._ledgers(gateway, stack))
            endorser = Endorser(
                gateway.crypto.signer(peer), ledger, gateway.config.msps, DEFAULT_CHANNEL
            )
            contract = endorser.contract(CHAINCODE)
            assert contract is not None
            who = Creator(member.mspid, member.role, member.name, member.identity.cert_pem)
            try:
                payload = contract.invoke(SimulationStub(ledger, header, who))
            except ContractError as exc:
                raise ApiError(_status_of(str(exc)), str(exc)) from None
        return _json_or_text(payload)

    def _ledgers(self, gateway: SimGateway, stack: ExitStack) -> Iterator[tuple[str, PeerLedger]]:
        """Each reachable peer's ledger, opened for this call and closed with ``stack``."""
        for replica in range(gateway.cfg.replicas):
            if replica in gateway.down:
                continue
            ledger = open_ledger_dir(self.root / f"replica-{replica}" / "ledger", gateway.config)
            stack.callback(ledger.close)
            yield names.replica_peer_name(replica, gateway.cfg.orgs), ledger

    # ------------------------------------------------------------------ files

    def publish(self, data: bytes) -> dict[str, Any]:
        with self._network() as gateway:
            holders = gateway.publish_file(data)
        return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "peers": holders}

    def fetch(self, sha256: str, size: int) -> tuple[bytes, str]:
        """The file from any peer that serves it intact (its ``sha256`` and ``size`` checked)."""
        with self._network() as gateway:
            try:
                fetched = gateway.fetch_file(FileRef(sha256, size))
            except DownloadFailed as exc:
                raise ApiError(404, str(exc)) from None
        return fetched.data, fetched.served_by

    # ------------------------------------------------------------------ ledger and network

    def block(self, number: int) -> dict[str, Any]:
        with self._network() as gateway, ExitStack() as stack:
            peer, ledger = next(self._ledgers(gateway, stack))
            if not 0 <= number < ledger.height:
                raise ApiError(404, f"no block {number} (height {ledger.height} on {peer})")
            block = ledger.block(number)
            meta = block.metadata
            return {
                "peer": peer,
                "header": {
                    "number": block.header.number,
                    "previous_hash": block.header.previous_hash.hex(),
                    "data_hash": block.header.data_hash.hex(),
                    "hash": block.hash.hex(),
                },
                "data": [_describe_item(item) for item in block.data],
                "metadata": {
                    "validation_codes": [code_name(c) for c in meta.validation_codes],
                    "timestamp_ms": meta.timestamp_ms,
                    "view": meta.view,
                    "seq": meta.seq,
                    "commit_certificate": len(meta.certificate),
                },
            }

    def transaction(self, tx_id: str) -> dict[str, Any]:
        with self._network() as gateway, ExitStack() as stack:
            peer, ledger = next(self._ledgers(gateway, stack))
            status = ledger.tx_status(tx_id)
            where = ledger.tx_location(tx_id)
            if status is None or where is None:
                raise ApiError(404, f"no committed transaction {tx_id!r} on {peer}")
            item = _describe_item(ledger.block(where.block).data[where.tx])
        return {
            **item,
            "block": where.block,
            "index": where.tx,
            "validation_code": code_name(status.code),
        }

    def proof(self, member: Member, name: str, version: str, tx_id: str = "") -> dict[str, Any]:
        """The release proof of a ``metadata`` transaction ``member`` signed and had committed.

        The gateway cannot submit one itself (it would have to sign as the
        caller), so the caller orders ``metadata`` through the write flow first;
        without ``tx_id`` the proof is of its latest VALID one asking exactly this.
        """
        asked = (name, version) if version else (name,)
        with self._network() as gateway, ExitStack() as stack:
            _peer, ledger = next(self._ledgers(gateway, stack))
            if tx_id and _metadata_args(ledger, tx_id) != asked:
                raise ApiError(
                    409, f"transaction {tx_id[:12]} is not a metadata call for {' '.join(asked)}"
                )
            tx_id = tx_id or _latest_metadata(ledger, member, asked) or ""
            if not tx_id:
                wanted = " ".join(asked)
                raise ApiError(
                    404,
                    f"{member.name} has no committed metadata transaction for {wanted}: "
                    "order one first (POST /api/tx {function: metadata}, endorse, submit)",
                )
            try:
                proof = gateway.proof_of(tx_id, name, version)
            except Refused as exc:
                raise ApiError(404, str(exc)) from None
            except ProofRejected as exc:
                raise ApiError(409, f"transaction {tx_id[:12]} proves no release: {exc}") from None
        return proof

    def activity_figures(self, seconds: int) -> dict[str, Any]:
        """Throughput, message rate, view changes and faults over the last ``seconds``.

        Each figure says where it comes from (:mod:`sim.http.activity`): the
        ledger, the sessions this gateway ran, or the network's configuration.
        """
        if not 1 <= seconds <= MAX_SECONDS:
            raise ApiError(400, f"seconds must be 1 to {MAX_SECONDS}, got {seconds}")
        with self._network() as gateway, ExitStack() as stack:
            until = gateway.cfg.clock_ms
            since = max(0, until - seconds * SECOND_MS + 1)
            _peer, ledger = next(self._ledgers(gateway, stack))
            blocks: list[Block] = []
            for number in range(ledger.height - 1, -1, -1):
                blocks.append(ledger.block(number))
                if blocks[-1].metadata.timestamp_ms < since:
                    break  # one block before the window: did the first one change view?
            byzantine = dict(gateway.cfg.byzantine)
        blocks.reverse()
        summaries = self.activity.snapshot()
        # Down only as observed: a replica configured ``silent`` is reported as Byzantine
        # (``byzantine``) until a session shows it sending nothing.
        down: dict[str, str] = {}
        if summaries:
            latest = summaries[-1]
            for replica in latest.silent:
                down[str(replica)] = f"sent nothing during the last session ({latest.function})"
        return {
            "clock": "the simulated network's virtual milliseconds",
            "since_ms": since,
            "until_ms": until,
            "window_s": seconds,
            "ledger": ledger_figures(blocks, since, until),
            "gateway_sessions": session_figures(summaries, since, until),
            "down": down,
            "byzantine": byzantine,
        }

    def nodes(self) -> dict[str, Any]:
        with self._network() as gateway, ExitStack() as stack:
            view = gateway.cfg.client_view
            rows = []
            opened = dict(self._ledgers(gateway, stack))
            for replica in range(gateway.cfg.replicas):
                peer = names.replica_peer_name(replica, gateway.cfg.orgs)
                ledger = opened.get(peer)
                rows.append(
                    {
                        "replica": replica,
                        "peer": peer,
                        "up": ledger is not None,
                        "role": "primary" if replica == view % gateway.cfg.replicas else "backup",
                        "byzantine": gateway.cfg.byzantine.get(str(replica)),
                        "view": view,
                        "height": ledger.height if ledger else None,
                        "head": ledger.head_hash.hex() if ledger else None,
                    }
                )
            return {
                "kind": "simulated",
                "clock_ms": gateway.cfg.clock_ms,
                "commands": gateway.cfg.commands,
                "nodes": rows,
            }


def _metadata_args(ledger: PeerLedger, tx_id: str) -> tuple[str, ...] | None:
    """The arguments of committed transaction ``tx_id`` if it is a ``metadata`` call."""
    where = ledger.tx_location(tx_id)
    if where is None:
        return None
    _code, _envelope, payload = parse_item(ledger.block(where.block).data[where.tx], unwrap_request)
    if payload is None or payload.header.function != "metadata":
        return None
    return tuple(payload.header.args)


def _latest_metadata(ledger: PeerLedger, member: Member, asked: tuple[str, ...]) -> str | None:
    """The id of ``member``'s latest VALID ``metadata`` transaction with exactly ``asked``."""
    for number in range(ledger.height - 1, -1, -1):
        block = ledger.block(number)
        for index in range(len(block.data) - 1, -1, -1):
            if block.metadata.validation_codes[index] != ValidationCode.VALID:
                continue
            _code, _envelope, payload = parse_item(block.data[index], unwrap_request)
            if payload is None:
                continue
            header = payload.header
            if (
                header.function == "metadata"
                and tuple(header.args) == asked
                and header.creator.cert_pem == member.identity.cert_pem
            ):
                return header.tx_id
    return None


def _describe_item(item: bytes) -> dict[str, Any]:
    """One block data item as a person reads it: who invoked what."""
    _code, _envelope, payload = parse_item(item, unwrap_request)
    if payload is None:
        return {"tx_id": None, "readable": False}
    header = payload.header
    try:
        creator = Identity.from_pem(header.creator.mspid, header.creator.cert_pem).name
    except MSPError:
        creator = header.creator.mspid
    return {
        "tx_id": header.tx_id,
        "creator": creator,
        "function": header.function,
        "args": [a if len(a) <= 200 else a[:200] + "…" for a in header.args],
        "timestamp_ms": header.timestamp_ms,
        "endorsements": len(payload.endorsements),
    }


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")


def _status_of(message: str) -> int:
    """A contract refusal as an HTTP status: 404 when it names something missing, else 409."""
    missing = ("no patch set", "has no released", "no enrolled", "no version")
    return 404 if any(m in message for m in missing) else 409
