"""Transaction validation, identical on every peer: one validation code per data item.

Each check depends only on the block (its data and agreed timestamp), the
channel configuration and the committed state, never on the local clock or on
what this peer happened to endorse, so every correct peer marks every
transaction with the same code. The checks run in Fabric's order, and the
first failure decides the code:

1. the data item is a request carrying an envelope (``NIL_ENVELOPE``), whose
   payload decodes (``BAD_PAYLOAD``) and names a channel (``BAD_COMMON_HEADER``),
   this one (``TARGET_CHAIN_NOT_FOUND``);
2. the creator is a valid member at the block's time, CRLs included, and
   signed the payload (``BAD_CREATOR_SIGNATURE``);
3. the transaction id is derived from nonce and creator (``BAD_PROPOSAL_TXID``)
   and is new to the ledger and to the block (``DUPLICATE_TXID``);
4. the chaincode is deployed (``INVALID_CHAINCODEID``), the result is bound to
   this proposal and namespace (``INVALID_ENDORSER_TRANSACTION``), the
   read-write set is well formed (``BAD_RWSET``) and the response succeeded
   (``BAD_RESPONSE_PAYLOAD``);
5. valid endorsements (valid member, good signature over the result) satisfy
   the chaincode's policy (``ENDORSEMENT_POLICY_FAILURE``);
6. every version read is still current, counting keys written by earlier valid
   transactions of the same block (``MVCC_READ_CONFLICT``), and every range
   read would return the same keys and versions (``PHANTOM_READ_CONFLICT``).

Invalid transactions stay in the block with their code; only valid ones
change state. A transaction id is remembered (so it cannot be replayed) once
step 3 has established it is the creator's: an envelope that fails MVCC
cannot be resubmitted as is, as in Fabric.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger.block import Unwrap, ValidationCode
from ledger.codec import CodecError, decode, encode
from ledger.history import HistoryEntry, KeyChange
from ledger.state import StateReader, UpdateBatch, VersionedValue
from ledger.transaction import (
    STATUS_ERROR_THRESHOLD,
    Envelope,
    KVRead,
    RangeRead,
    RWSet,
    TxPayload,
    Version,
    compute_tx_id,
    proposal_hash,
)
from msp.errors import MSPError
from msp.identity import Identity
from msp.msp import MSPManager, at_virtual_ms

V = ValidationCode

TX_ID_ESTABLISHED = frozenset(
    {
        V.VALID,
        V.INVALID_CHAINCODEID,
        V.INVALID_ENDORSER_TRANSACTION,
        V.BAD_RWSET,
        V.BAD_RESPONSE_PAYLOAD,
        V.ENDORSEMENT_POLICY_FAILURE,
        V.MVCC_READ_CONFLICT,
        V.PHANTOM_READ_CONFLICT,
    }
)
"""Codes given after the tx id was proven the creator's: such ids are indexed."""


POLICY_MEMO_SIZE = 1024
"""Distinct (chaincode, endorser principals) verdicts a channel config remembers."""


class EndorsementPolicy(Protocol):
    """What ``msp.policy.parse`` returns: satisfied or not by a set of identities."""

    def evaluate(self, identities: Iterable[Identity]) -> bool: ...


@dataclass(frozen=True)
class ChannelConfig:
    """What validation needs to know about the channel besides the state."""

    channel: str
    msps: MSPManager
    policies: Mapping[str, EndorsementPolicy] = field(default_factory=dict)
    """Endorsement policy per deployed chaincode."""
    default_policy: EndorsementPolicy | None = None
    """Policy of chaincodes not in ``policies``; None: only those are deployed."""

    _verdicts: dict[tuple[str, tuple[tuple[str, str], ...]], bool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Memo of :meth:`endorsed`, bounded by ``POLICY_MEMO_SIZE``."""

    def policy_for(self, chaincode: str) -> EndorsementPolicy | None:
        return self.policies.get(chaincode, self.default_policy)

    def endorsed(
        self, chaincode: str, policy: EndorsementPolicy, endorsers: Collection[Identity]
    ) -> bool:
        """Whether ``endorsers`` (distinct valid identities) satisfy ``chaincode``'s policy.

        A policy names principals (MSP id and role) only, so its verdict depends
        on nothing but the multiset of the endorsers' (MSP id, role) pairs:
        memoised on that, since nearly every transaction presents the same few
        combinations and evaluating a policy is a search.
        """
        key = (chaincode, tuple(sorted((i.mspid, i.role) for i in endorsers)))
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = policy.evaluate(endorsers)
            if len(self._verdicts) >= POLICY_MEMO_SIZE:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict


@dataclass(frozen=True, slots=True)
class BlockValidation:
    """The verdict on a block: codes, tx ids ("" when unknown) and the state changes."""

    codes: tuple[ValidationCode, ...]
    tx_ids: tuple[str, ...]
    updates: UpdateBatch
    changes: tuple[KeyChange, ...]


def parse(item: bytes, unwrap: Unwrap) -> tuple[ValidationCode, Envelope | None, TxPayload | None]:
    """Decode one data item: its envelope and transaction, or the code saying why not."""
    try:
        raw = unwrap(item)
    except Exception:  # an unwrap that chokes on peer bytes is the same as None
        raw = None
    if raw is None:
        return V.NIL_ENVELOPE, None, None
    try:
        envelope = decode(raw, Envelope)
        payload = decode(envelope.payload, TxPayload)
    except CodecError:
        return V.BAD_PAYLOAD, None, None
    header = payload.header
    if not header.channel or not header.chaincode or not header.tx_id:
        return V.BAD_COMMON_HEADER, envelope, payload
    return V.VALID, envelope, payload


def _valid_member(
    config: ChannelConfig, mspid: str, cert_pem: bytes, now_ms: int
) -> Identity | None:
    try:
        identity = config.msps.identity(mspid, cert_pem)
    except (MSPError, ValueError, TypeError):  # a peer's garbage certificate, however it fails
        return None
    return identity if config.msps.validate(identity, at_virtual_ms(now_ms)).ok else None


def _rwset_problem(rwset: RWSet) -> bool:
    keys = [w.key for w in rwset.writes]
    if len(set(keys)) != len(keys) or any(k == "" for k in keys):
        return True
    return any(w.is_delete and w.value for w in rwset.writes)


def check_creator(
    envelope: Envelope, payload: TxPayload, config: ChannelConfig, now_ms: int
) -> ValidationCode:
    """Steps 1-3 but duplicates: right channel, valid signed creator, honest tx id."""
    header = payload.header
    if header.channel != config.channel:
        return V.TARGET_CHAIN_NOT_FOUND
    creator = _valid_member(config, header.creator.mspid, header.creator.cert_pem, now_ms)
    if creator is None or not creator.verify(envelope.payload, envelope.signature):
        return V.BAD_CREATOR_SIGNATURE
    if compute_tx_id(header.nonce, header.creator) != header.tx_id:
        return V.BAD_PROPOSAL_TXID
    return V.VALID


def check_endorsed(payload: TxPayload, config: ChannelConfig, now_ms: int) -> ValidationCode:
    """Step 4 and 5: deployed chaincode, bound and well-formed result, policy satisfied."""
    header, result = payload.header, payload.result
    policy = config.policy_for(header.chaincode)
    if policy is None:
        return V.INVALID_CHAINCODEID
    if result.proposal_hash != proposal_hash(header) or result.rwset.namespace != header.chaincode:
        return V.INVALID_ENDORSER_TRANSACTION
    if _rwset_problem(result.rwset):
        return V.BAD_RWSET
    if not 0 <= result.response.status < STATUS_ERROR_THRESHOLD:
        return V.BAD_RESPONSE_PAYLOAD
    signed = encode(result)
    endorsers = set()
    for endorsement in payload.endorsements:
        who = endorsement.endorser
        identity = _valid_member(config, who.mspid, who.cert_pem, now_ms)
        if identity is not None and identity.verify(signed, endorsement.signature):
            endorsers.add(identity)
    if not config.endorsed(header.chaincode, policy, endorsers):
        return V.ENDORSEMENT_POLICY_FAILURE
    return V.VALID


class _BlockView:
    """Committed state overlaid with the writes of this block's earlier valid transactions."""

    def __init__(self, state: StateReader, updates: UpdateBatch) -> None:
        self.state = state
        self.updates = updates

    def read_conflicts(self, namespace: str, reads: Sequence[KVRead]) -> bool:
        for read in reads:
            if (namespace, read.key) in self.updates.writes:
                return True
            current = self.state.get(namespace, read.key)
            if (None if current is None else current.version) != read.version:
                return True
        return False

    def phantom(self, namespace: str, ranged: RangeRead) -> bool:
        found = dict(self.state.range(namespace, ranged.start, ranged.end))
        for (ns, key), value in self.updates.writes.items():
            if ns == namespace and key >= ranged.start and (ranged.end == "" or key < ranged.end):
                if value is None:
                    found.pop(key, None)
                else:
                    found[key] = value
        now = [KVRead(key, found[key].version) for key in sorted(found)]
        if not ranged.exhausted:
            now = now[: len(ranged.reads)]
        return tuple(now) != ranged.reads


def validate_block(
    number: int,
    data: Sequence[bytes],
    timestamp_ms: int,
    unwrap: Unwrap,
    config: ChannelConfig,
    state: StateReader,
    stale: Collection[int] = (),
) -> BlockValidation:
    """Validate every transaction of block ``number`` against ``state`` (before the block).

    ``stale`` lists the positions the ordering service refused to execute (PBFT's
    exactly-once rule: the client already had a request at that timestamp or
    later executed). Such a transaction stays in the block, since the block's
    data hash is the batch digest, and gets ``DUPLICATE_TXID``: it is a repeated
    submission, which is what that code means in Fabric.
    """
    updates = UpdateBatch()
    codes: list[ValidationCode] = []
    tx_ids: list[str] = []
    parsed_txs: list[TxPayload | None] = []
    view = _BlockView(state, updates)
    items = [parse(item, unwrap) for item in data]
    committed = state.committed_tx_ids(p.header.tx_id for _, _, p in items if p is not None)
    for index, (code, envelope, parsed) in enumerate(items):
        if code is V.VALID and index in stale:
            code = V.DUPLICATE_TXID
        if code is V.VALID and envelope is not None and parsed is not None:
            code = check_creator(envelope, parsed, config, timestamp_ms)
        if code is V.VALID and parsed is not None:
            tx_id = parsed.header.tx_id
            if tx_id in updates.tx_ids or tx_id in committed:
                code = V.DUPLICATE_TXID
        if code is V.VALID and parsed is not None:
            code = check_endorsed(parsed, config, timestamp_ms)
        if code is V.VALID and parsed is not None:
            rwset = parsed.result.rwset
            if view.read_conflicts(rwset.namespace, rwset.reads):
                code = V.MVCC_READ_CONFLICT
            elif any(view.phantom(rwset.namespace, r) for r in rwset.range_reads):
                code = V.PHANTOM_READ_CONFLICT
        codes.append(code)
        tx_ids.append("" if parsed is None else parsed.header.tx_id)
        parsed_txs.append(parsed)
        _record(updates, number, index, code, parsed)
    changes = history_changes(number, parsed_txs, codes)
    return BlockValidation(tuple(codes), tuple(tx_ids), updates, changes)


def _record(
    updates: UpdateBatch, number: int, index: int, code: int, parsed: TxPayload | None
) -> None:
    """Fold one transaction's effect into the block's update batch."""
    if parsed is None or code not in TX_ID_ESTABLISHED:
        return
    version = Version(number, index)
    updates.tx_ids.setdefault(parsed.header.tx_id, version)
    if code != V.VALID:
        return
    rwset = parsed.result.rwset
    for write in rwset.writes:
        key = (rwset.namespace, write.key)
        updates.writes[key] = None if write.is_delete else VersionedValue(write.value, version)


def history_changes(
    number: int, parsed_txs: Sequence[TxPayload | None], codes: Sequence[int]
) -> tuple[KeyChange, ...]:
    changes = []
    for index, (parsed, code) in enumerate(zip(parsed_txs, codes, strict=True)):
        if parsed is None or code != V.VALID:
            continue
        rwset = parsed.result.rwset
        for write in rwset.writes:
            entry = HistoryEntry(
                parsed.header.tx_id,
                parsed.header.timestamp_ms,
                write.value,
                write.is_delete,
                number,
                index,
            )
            changes.append(KeyChange(rwset.namespace, write.key, entry))
    return tuple(changes)


def replay_effects(
    number: int, data: Sequence[bytes], codes: Sequence[int], unwrap: Unwrap
) -> tuple[UpdateBatch, tuple[KeyChange, ...]]:
    """The state changes of an already validated block, from its recorded codes.

    Used to catch the state or history database up with the block store after
    a crash: the codes in the block are the verdict every peer reached, so the
    checks are not run again.
    """
    updates = UpdateBatch()
    parsed_txs: list[TxPayload | None] = []
    for index, (item, code) in enumerate(zip(data, codes, strict=True)):
        parsed = parse(item, unwrap)[2]
        parsed_txs.append(parsed)
        _record(updates, number, index, code, parsed)
    return updates, history_changes(number, parsed_txs, codes)
