"""The gateway's work on a network: authenticate, prepare, endorse, submit, read.

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
ordering (Fabric's *evaluate*). How the network is reached (a simulated
directory or live nodes over MQTT) is a :class:`sim.http.backend.Backend`'s
business; nothing here depends on which.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaincode.shim import ContractError
from ledger.block import Block, ValidationCode, code_name
from ledger.codec import encode
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
from msp.errors import MSPError
from msp.identity import Identity
from sim.errors import InputError
from sim.fabric.app import unwrap_request
from sim.fabric.distribution import DownloadFailed, FileRef
from sim.fabric.gateway import CHAINCODE, Refused
from sim.fabric.proof import ProofRejected
from sim.fabric.sdk import DEFAULT_CHANNEL, EndorsementFailed, proposal_header, transaction_payload
from sim.fabric.simnet import is_sim_network
from sim.http.activity import MAX_SECONDS
from sim.http.backend import Backend, Chain, NotOrdered, status_of
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
    evaluate: bool = False
    """Prepared only to be endorsed (a read, or a check before placing a file): its
    endorsement is the answer, and it is forgotten then rather than held for a submit."""


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def open_backend(directory: Path) -> Backend:
    """The backend for a network directory: simulated (``simnet.json``) or live."""
    if is_sim_network(directory):
        from sim.http.simbackend import SimBackend

        return SimBackend(directory)
    if (directory / "network.json").is_file():
        from sim.http.livebackend import LiveBackend

        return LiveBackend(directory)
    raise InputError(
        f"{directory}: not a network directory (expected simnet.json from "
        "'ledgersim net init --sim' or network.json from 'ledgersim net up')"
    )


class NetworkService:
    """One network, served to authenticated members."""

    def __init__(
        self,
        directory: str | Path | None = None,
        clock: Callable[[], int] = wall_ms,
        *,
        backend: Backend | None = None,
    ) -> None:
        if backend is None:
            if directory is None:
                raise ValueError("a network directory or a backend is needed")
            backend = open_backend(Path(directory))
        self.backend = backend
        self.clock = clock
        self.nonces = NonceBook()
        self.pending: dict[str, Pending] = {}
        self._book = threading.Lock()  # guards ``pending``: steps run on worker threads
        members = load_members(backend.crypto_dir, backend.msps)
        members.pop(backend.own_identity or "", None)  # the gateway is never its own caller
        self.members = members

    def close(self) -> None:
        self.backend.close()

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

    def prepare(
        self, member: Member, function: str, args: Sequence[str], evaluate: bool = False
    ) -> dict[str, Any]:
        """Step 1: the proposal bytes ``member`` is to sign.

        With ``evaluate`` the transaction is only endorsed, never submitted: its
        endorsement answers as the signer. That is how a caller reads as
        themselves where the gateway cannot (a live network's ``sign-to-read``),
        and how it learns the peers would refuse a write before doing anything
        irreversible. Reads can only be evaluated.
        """
        if function not in WRITES and function not in READS:
            known = ", ".join(WRITES + tuple(r for r in READS if r not in WRITES))
            raise ApiError(400, f"unknown function {function!r} (one of {known})")
        evaluate = evaluate or function not in WRITES
        now = self.backend.proposal_time()
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
            self.pending[header.tx_id] = Pending(
                member.name, header, time.monotonic(), evaluate=evaluate
            )
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
        """Refuse to order an upload whose file is not on the peers: devices could not fetch it.

        The file is then placed again: the peers' sweep (:mod:`sim.fabric.filegc`)
        counts its grace period from placement, and a caller may submit just under
        that period after placing (endorse, place, then think it over), while the
        ordering itself can take a view change or two. Without this a live peer
        could remove the file between this check and the upload's commit.
        """
        try:
            manifest = json.loads(args[0])
            sha256, size = manifest["file"]["sha256"], int(manifest["file"]["size"])
        except (IndexError, KeyError, TypeError, ValueError):
            raise ApiError(
                400,
                "upload: the first argument must be a manifest naming file.sha256 and file.size",
            ) from None
        try:
            data, _served_by = self.fetch(str(sha256), size)
        except ApiError:
            raise ApiError(
                409, "upload: the manifest's file is not on the peers; POST it to /api/files first"
            ) from None
        try:
            self.backend.publish(data)
        except InputError as exc:  # the live network did not answer in time
            raise ApiError(503, f"upload: placing the file again: {exc}") from None

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
        try:
            endorsed = self.backend.endorse(signed, pending.header)
        except EndorsementFailed as failed:
            self._forget(tx_id)
            raise ApiError(409, f"{pending.header.function}: {failed}", kind=failed.kind) from None
        except InputError as exc:  # the live network did not answer in time
            raise ApiError(503, f"{pending.header.function}: {exc}") from None
        response = _json_or_text(endorsed.result.response.payload)
        if pending.evaluate:
            self._forget(tx_id)
            return {"tx_id": tx_id, "endorsers": endorsed.endorsers, "response": response}
        pending.signed, pending.result = signed, endorsed.result
        pending.endorsements = endorsed.endorsements
        pending.payload = transaction_payload(
            pending.header, endorsed.result, endorsed.endorsements
        )
        return {
            "tx_id": tx_id,
            "sign": "transaction",
            "bytes": pending.payload.hex(),
            "sha256": hashlib.sha256(pending.payload).hexdigest(),
            "endorsers": endorsed.endorsers,
            "response": response,
            "next": f"/api/tx/{tx_id}/submit",
        }

    def submit(self, member: Member, tx_id: str, signature_hex: str) -> dict[str, Any]:
        """Step 3: seal the envelope with the caller's signature, order it, report the outcome."""
        pending = self._pending(member, tx_id)
        if pending.payload is None or pending.result is None:
            raise ApiError(409, f"transaction {tx_id} is not endorsed yet (POST .../endorse first)")
        function = pending.header.function
        self._check(member, pending.payload, signature_hex, "transaction")
        if function == "upload":
            # Checked here, not when prepared: a caller endorses first (the peers may
            # refuse the upload), places the file, then submits.
            self._file_is_placed(pending.header.args)
        envelope = encode(Envelope(pending.payload, signature_bytes(signature_hex, member.ecdsa)))
        if not self._forget(tx_id):
            raise ApiError(409, f"transaction {tx_id} was already submitted")
        try:
            ordered = self.backend.order(envelope, member, pending.header)
        except NotOrdered as exc:
            raise ApiError(409, str(exc), tx_id=tx_id, validation_code=exc.code) from None
        except InputError as exc:  # no f+1 replies in time: the outcome is unknown
            raise ApiError(503, str(exc), tx_id=tx_id, validation_code="UNKNOWN") from None
        return {
            "tx_id": tx_id,
            "validation_code": ordered.code,
            "view": ordered.view,
            "endorsers": ordered.endorsers,
            "response": _json_or_text(pending.result.response.payload),
        }

    # ------------------------------------------------------------------ reads

    def query(self, member: Member, function: str, args: Sequence[str]) -> Any:
        """Run a read-only contract function as ``member`` on a reachable peer's state."""
        if function not in READS:
            raise ApiError(400, f"unknown query {function!r} (one of {', '.join(READS)})")
        try:
            payload = self.backend.query(member, function, args)
        except ContractError as exc:
            raise ApiError(status_of(str(exc)), str(exc)) from None
        except InputError as exc:
            raise ApiError(503, f"{function}: {exc}") from None
        return _json_or_text(payload)

    # ------------------------------------------------------------------ files

    def publish(self, member: Member, data: bytes) -> dict[str, Any]:
        """Place a file on the peers: an administrator's act (the upload it is for is theirs)."""
        if member.role != "admin":
            raise ApiError(403, f"{member.name} may not place files: only administrators upload")
        holders = self.backend.publish(data)
        return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "peers": holders}

    def fetch(self, sha256: str, size: int) -> tuple[bytes, str]:
        """The file from any peer that serves it intact (its ``sha256`` and ``size`` checked)."""
        try:
            fetched = self.backend.fetch(FileRef(sha256, size))
        except DownloadFailed as exc:
            raise ApiError(404, str(exc)) from None
        return fetched.data, fetched.served_by

    # ------------------------------------------------------------------ ledger and network

    def _chain(self) -> Any:
        try:
            return self.backend.chain()
        except InputError as exc:
            raise ApiError(503, str(exc)) from None

    def block(self, number: int) -> dict[str, Any]:
        with self._chain() as chain:
            if not 0 <= number < chain.height:
                raise ApiError(404, f"no block {number} (height {chain.height} on {chain.peer})")
            block = chain.block(number)
            meta = block.metadata
            return {
                "peer": chain.peer,
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
        with self._chain() as chain:
            found = chain.locate(tx_id)
            if found is None:
                raise ApiError(404, f"no committed transaction {tx_id!r} on {chain.peer}")
            block, index = found
        return {
            **_describe_item(block.data[index]),
            "block": block.header.number,
            "index": index,
            "validation_code": code_name(block.metadata.validation_codes[index]),
        }

    def proof(self, member: Member, name: str, version: str, tx_id: str = "") -> dict[str, Any]:
        """The release proof of a ``metadata`` transaction ``member`` signed and had committed.

        The gateway cannot submit one itself (it would have to sign as the
        caller), so the caller orders ``metadata`` through the write flow first;
        without ``tx_id`` the proof is of its latest VALID one asking exactly this.
        """
        asked = (name, version) if version else (name,)
        with self._chain() as chain:
            if tx_id and _metadata_args(chain, tx_id) != asked:
                raise ApiError(
                    409, f"transaction {tx_id[:12]} is not a metadata call for {' '.join(asked)}"
                )
            tx_id = tx_id or _latest_metadata(chain, member, asked) or ""
        if not tx_id:
            wanted = " ".join(asked)
            raise ApiError(
                404,
                f"{member.name} has no committed metadata transaction for {wanted}: "
                "order one first (POST /api/tx {function: metadata}, endorse, submit)",
            )
        try:
            return self.backend.proof_of(tx_id, name, version)
        except Refused as exc:
            raise ApiError(404, str(exc)) from None
        except ProofRejected as exc:
            raise ApiError(409, f"transaction {tx_id[:12]} proves no release: {exc}") from None

    def activity_figures(self, seconds: int) -> dict[str, Any]:
        if not 1 <= seconds <= MAX_SECONDS:
            raise ApiError(400, f"seconds must be 1 to {MAX_SECONDS}, got {seconds}")
        try:
            return self.backend.activity(seconds)
        except InputError as exc:
            raise ApiError(503, str(exc)) from None

    def nodes(self) -> dict[str, Any]:
        return self.backend.nodes()


def _metadata_args(chain: Chain, tx_id: str) -> tuple[str, ...] | None:
    """The arguments of committed transaction ``tx_id`` if it is a ``metadata`` call."""
    found = chain.locate(tx_id)
    if found is None:
        return None
    block, index = found
    _code, _envelope, payload = parse_item(block.data[index], unwrap_request)
    if payload is None or payload.header.function != "metadata":
        return None
    return tuple(payload.header.args)


def _latest_metadata(chain: Chain, member: Member, asked: tuple[str, ...]) -> str | None:
    """The id of ``member``'s latest VALID ``metadata`` transaction with exactly ``asked``."""
    for number in range(chain.height - 1, -1, -1):
        block: Block = chain.block(number)
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
