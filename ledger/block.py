"""Blocks: header, data and metadata, as Fabric lays them out.

The header is what the hash chain covers (docs/design.md, "Fixed formats"); the
metadata is not covered, as in Fabric, because part of it (validation codes)
is computed by each peer after ordering. What makes the metadata trustworthy
is the commit certificate it carries: 2f+1 signed COMMITs for the block's
view, sequence number and digest (= ``data_hash``), checkable with nothing but
the CA certificates.

Each data item is the canonical bytes of a PBFT ``Request`` whose
``operation`` is an :class:`~ledger.transaction.Envelope`; this package never
imports ``pbft``, so callers hand it an ``unwrap`` function instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from ledger import hashing
from ledger.codec import record

Unwrap = Callable[[bytes], bytes | None]
"""Turns a block data item into the transaction envelope bytes it carries, or None."""


class ValidationCode(IntEnum):
    """Fabric's ``TxValidationCode`` (protos/peer/transaction.proto), same names and numbers."""

    VALID = 0
    NIL_ENVELOPE = 1
    BAD_PAYLOAD = 2
    BAD_COMMON_HEADER = 3
    BAD_CREATOR_SIGNATURE = 4
    INVALID_ENDORSER_TRANSACTION = 5
    INVALID_CONFIG_TRANSACTION = 6
    UNSUPPORTED_TX_PAYLOAD = 7
    BAD_PROPOSAL_TXID = 8
    DUPLICATE_TXID = 9
    ENDORSEMENT_POLICY_FAILURE = 10
    MVCC_READ_CONFLICT = 11
    PHANTOM_READ_CONFLICT = 12
    UNKNOWN_TX_TYPE = 13
    TARGET_CHAIN_NOT_FOUND = 14
    MARSHAL_TX_ERROR = 15
    NIL_TXACTION = 16
    EXPIRED_CHAINCODE = 17
    CHAINCODE_VERSION_CONFLICT = 18
    BAD_HEADER_EXTENSION = 19
    BAD_CHANNEL_HEADER = 20
    BAD_RESPONSE_PAYLOAD = 21
    BAD_RWSET = 22
    ILLEGAL_WRITESET = 23
    INVALID_WRITESET = 24
    INVALID_CHAINCODEID = 25
    NOT_VALIDATED = 254
    INVALID_OTHER_REASON = 255


def code_name(code: int) -> str:
    """Fabric's name for a code, or ``UNKNOWN(<n>)`` for a number Fabric does not define."""
    try:
        return ValidationCode(code).name
    except ValueError:
        return f"UNKNOWN({code})"


@record(70)
@dataclass(frozen=True, slots=True)
class BlockHeader:
    number: int
    previous_hash: bytes
    data_hash: bytes

    def __post_init__(self) -> None:
        if self.number < 0:
            raise ValueError("block number must be >= 0")
        if len(self.previous_hash) != 32 or len(self.data_hash) != 32:
            raise ValueError("hashes must be 32 bytes")

    @property
    def hash(self) -> bytes:
        return hashing.header_hash(self.number, self.previous_hash, self.data_hash)


@record(71)
@dataclass(frozen=True, slots=True)
class BlockMetadata:
    """What ordering and validation add to a block, outside the hash chain."""

    certificate: tuple[bytes, ...]
    """Encoded PBFT COMMIT messages (2f+1 distinct replicas) for view, seq, data_hash."""
    validation_codes: tuple[int, ...]
    """One :class:`ValidationCode` per data item (Fabric's TRANSACTIONS_FILTER)."""
    timestamp_ms: int
    """The time agreed in the PRE-PREPARE; the validator's "now" for certificates."""
    view: int
    seq: int

    def __post_init__(self) -> None:
        if min(self.timestamp_ms, self.view, self.seq) < 0:
            raise ValueError("metadata numbers must be >= 0")
        if any(not 0 <= c <= 255 for c in self.validation_codes):
            raise ValueError("validation codes are bytes (0..255)")


@record(72)
@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    data: tuple[bytes, ...]
    metadata: BlockMetadata

    def __post_init__(self) -> None:
        if len(self.metadata.validation_codes) != len(self.data):
            raise ValueError("one validation code per data item")

    @property
    def number(self) -> int:
        return self.header.number

    @property
    def hash(self) -> bytes:
        return self.header.hash

    def data_hash_ok(self) -> bool:
        """Whether the header's ``data_hash`` matches the data actually carried."""
        return hashing.data_hash(self.data) == self.header.data_hash


GENESIS = Block(
    BlockHeader(0, hashing.ZERO_HASH, hashing.data_hash(())),
    (),
    BlockMetadata((), (), 0, 0, 0),
)
"""Block 0: empty, chained from 32 zero bytes; every ledger starts with it."""


def make_block(
    number: int,
    previous_hash: bytes,
    data: tuple[bytes, ...],
    metadata: BlockMetadata,
) -> Block:
    """A block whose header's ``data_hash`` is computed from ``data``."""
    return Block(BlockHeader(number, previous_hash, hashing.data_hash(data)), data, metadata)
