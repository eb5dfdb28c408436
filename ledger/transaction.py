"""Transaction envelopes and read-write sets: what a client submits for ordering.

The shapes follow Fabric's protobufs, flattened into codec records (tags
50-69). Signatures always cover canonical bytes that are carried *as bytes*
(:class:`SignedProposal.proposal`, :class:`Envelope.payload`), so a verifier
checks exactly what was signed and a receiver can tell "undecodable" from
"badly signed" (Fabric's ``BAD_PAYLOAD`` versus ``BAD_CREATOR_SIGNATURE``).

The flow:

1. The client builds a :class:`TxHeader` (``tx_id`` = SHA-256 of nonce +
   creator bytes, as Fabric) and signs its encoding: a :class:`SignedProposal`.
2. Each endorser simulates the chaincode and signs the encoding of a
   :class:`ProposalResult` (proposal hash + read-write set + response): an
   :class:`Endorsement`. Endorsers that agree sign identical bytes.
3. The client wraps header, result and endorsements in a :class:`TxPayload`
   and signs its encoding: the :class:`Envelope`, which becomes
   ``Request.operation`` in PBFT and a data item of a block.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ledger.codec import encode, record

STATUS_OK = 200
"""Chaincode response status of a successful simulation (Fabric's shim.OK)."""
STATUS_ERROR = 500
"""Chaincode response status when the contract refused or failed (Fabric's shim.ERROR)."""
STATUS_ERROR_THRESHOLD = 400
"""Responses at or above this status are failures (Fabric's shim.ERRORTHRESHOLD)."""
NONCE_SIZE = 24
"""Bytes of randomness in a proposal nonce (Fabric uses 24)."""


@record(50)
@dataclass(frozen=True, slots=True)
class SerializedIdentity:
    """Who signed: the MSP id and the PEM certificate (Fabric's ``SerializedIdentity``)."""

    mspid: str
    cert_pem: bytes


@record(51)
@dataclass(frozen=True, slots=True)
class TxHeader:
    """The proposal: what to invoke, for whom, on which channel, when."""

    tx_id: str
    channel: str
    chaincode: str
    function: str
    args: tuple[str, ...]
    timestamp_ms: int
    creator: SerializedIdentity
    nonce: bytes

    def __post_init__(self) -> None:
        if self.timestamp_ms < 0:
            raise ValueError("timestamp_ms must be >= 0")


@record(52)
@dataclass(frozen=True, slots=True)
class Version:
    """Height of the transaction that last wrote a key: (block number, index in block)."""

    block: int
    tx: int

    def __post_init__(self) -> None:
        if self.block < 0 or self.tx < 0:
            raise ValueError("version numbers must be >= 0")


@record(53)
@dataclass(frozen=True, slots=True)
class KVRead:
    """A key read during simulation and the version seen (``None``: it did not exist)."""

    key: str
    version: Version | None


@record(54)
@dataclass(frozen=True, slots=True)
class KVWrite:
    """A key written (or deleted) by the transaction."""

    key: str
    value: bytes
    is_delete: bool


@record(55)
@dataclass(frozen=True, slots=True)
class RangeRead:
    """A range query and what it returned, re-run at validation to catch phantoms.

    ``exhausted`` is False when the contract stopped iterating early; then only
    the first ``len(reads)`` results matter (Fabric's ``itr_exhausted``).
    """

    start: str
    end: str
    exhausted: bool
    reads: tuple[KVRead, ...]


@record(56)
@dataclass(frozen=True, slots=True)
class RWSet:
    """The read-write set of one transaction in one chaincode namespace."""

    namespace: str
    reads: tuple[KVRead, ...]
    range_reads: tuple[RangeRead, ...]
    writes: tuple[KVWrite, ...]


@record(57)
@dataclass(frozen=True, slots=True)
class ChaincodeEvent:
    """The event a contract set with ``Stub.set_event`` (at most one per tx, as Fabric)."""

    name: str
    payload: bytes


@record(58)
@dataclass(frozen=True, slots=True)
class Response:
    """The chaincode's answer: status (200 ok, 500 error), message, payload, event."""

    status: int
    message: str
    payload: bytes
    event: ChaincodeEvent | None


@record(59)
@dataclass(frozen=True, slots=True)
class ProposalResult:
    """What endorsers sign: the proposal's hash, the rwset and the response."""

    proposal_hash: bytes
    rwset: RWSet
    response: Response


@record(60)
@dataclass(frozen=True, slots=True)
class Endorsement:
    """An endorser's identity and its signature over ``encode(ProposalResult)``."""

    endorser: SerializedIdentity
    signature: bytes


@record(61)
@dataclass(frozen=True, slots=True)
class TxPayload:
    """Everything the creator signs in the envelope."""

    header: TxHeader
    result: ProposalResult
    endorsements: tuple[Endorsement, ...]


@record(62)
@dataclass(frozen=True, slots=True)
class Envelope:
    """The unit of ordering: an encoded :class:`TxPayload` and the creator's signature."""

    payload: bytes
    signature: bytes


@record(63)
@dataclass(frozen=True, slots=True)
class SignedProposal:
    """A proposal as sent to endorsers: an encoded :class:`TxHeader` and its signature."""

    proposal: bytes
    signature: bytes


@record(64)
@dataclass(frozen=True, slots=True)
class ProposalResponse:
    """An endorser's reply: the result it computed, and its endorsement when it succeeded."""

    result: ProposalResult | None
    endorsement: Endorsement | None
    status: int
    message: str


def compute_tx_id(nonce: bytes, creator: SerializedIdentity) -> str:
    """Fabric's rule: hex SHA-256 of the nonce followed by the serialized creator."""
    return hashlib.sha256(nonce + encode(creator)).hexdigest()


def proposal_hash(header: TxHeader) -> bytes:
    """SHA-256 of the header's canonical bytes: binds an endorsement to one proposal."""
    return hashlib.sha256(encode(header)).digest()
