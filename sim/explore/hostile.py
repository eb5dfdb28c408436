"""Hypothesis strategies for hostile transaction envelopes, each with the code it must get.

What an attacker or a careless client could submit on a channel: envelopes whose
endorsements are replayed from another transaction, signed by the wrong org or
by a hostile identity (:mod:`sim.explore.hostile_identities`), duplicated,
truncated or reordered; results bound to another proposal; creators that are
not members; malformed headers, payloads and read-write sets; stale and phantom
reads. Every draw carries the validation code a correct peer must give it, and
blocks mix them with honest transactions and repeated envelopes, so a property
can state each code exactly and that no transaction changes another's.

The channel (:class:`HostileChannel`) has the pool's two organisations;
chaincode ``kv`` is deployed with ``AND('Org1.member','Org2.member')`` and
nothing else is.

Just over 500 lines: most of it is the one table of envelope kinds and the
code each must get, which reads best whole (the identities live apart).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from ledger.block import ValidationCode
from ledger.codec import encode
from ledger.transaction import (
    STATUS_ERROR,
    STATUS_OK,
    Endorsement,
    Envelope,
    KVRead,
    KVWrite,
    ProposalResult,
    RangeRead,
    Response,
    RWSet,
    SerializedIdentity,
    TxHeader,
    TxPayload,
    Version,
    compute_tx_id,
    proposal_hash,
)
from ledger.validator import ChannelConfig
from msp.identity import SigningIdentity
from msp.policy import parse as parse_policy
from sim.explore.hostile_identities import (
    HOSTILE_KINDS,
    NOW_MS,
    HostileIdentity,
    IdentityPool,
    hostile_identities,
    identity_pool,
)

V = ValidationCode

CHANNEL = "hostile"
CHAINCODE = "kv"
POLICY = "AND('Org1.member','Org2.member')"


@dataclass(frozen=True)
class HostileChannel:
    """Builds transactions for the hostile channel out of the pool's identities.

    Endorsements are signed with the peers' keys directly rather than by running
    an endorser: the validator must not trust that an endorser checked anything,
    so the envelopes here are what colluding or careless endorsers could sign.
    """

    pool: IdentityPool

    def config(self) -> ChannelConfig:
        """A fresh configuration (fresh MSP and policy caches) for one example."""
        return ChannelConfig(CHANNEL, self.pool.manager(), {CHAINCODE: parse_policy(POLICY)})

    def header(
        self,
        creator: SerializedIdentity,
        label: str,
        *,
        chaincode: str = CHAINCODE,
        channel: str = CHANNEL,
        key: str = "k",
    ) -> TxHeader:
        nonce = hashlib.sha256(b"ledgersim/hostile/nonce/" + label.encode()).digest()[:24]
        tx_id = compute_tx_id(nonce, creator)
        return TxHeader(tx_id, channel, chaincode, "put", (key, label), NOW_MS, creator, nonce)

    def result(
        self,
        header: TxHeader,
        *,
        status: int = STATUS_OK,
        namespace: str = CHAINCODE,
        reads: tuple[KVRead, ...] = (),
        range_reads: tuple[RangeRead, ...] = (),
        writes: tuple[KVWrite, ...] | None = None,
    ) -> ProposalResult:
        """What ``kv.put`` on an empty ledger gives, or a variant of it."""
        key, value = header.args
        if writes is None:
            writes = (KVWrite(key, value.encode(), False),)
        rwset = RWSet(namespace, reads, range_reads, writes)
        return ProposalResult(proposal_hash(header), rwset, Response(status, "", b"", None))

    @staticmethod
    def endorse(result: ProposalResult, *signers: SigningIdentity) -> tuple[Endorsement, ...]:
        signed = encode(result)
        return tuple(
            Endorsement(SerializedIdentity(s.mspid, s.cert_pem), s.sign(signed)) for s in signers
        )

    @staticmethod
    def seal(
        header: TxHeader,
        result: ProposalResult,
        endorsements: Sequence[Endorsement],
        signer: SigningIdentity,
    ) -> bytes:
        payload = encode(TxPayload(header, result, tuple(endorsements)))
        return encode(Envelope(payload, signer.sign(payload)))

    def honest_tx(self, label: str, key: str) -> tuple[TxHeader, ProposalResult, bytes]:
        """A transaction every check passes: header, result and envelope."""
        user = self.pool.user("Org1")
        header = self.header(serialized(user), label, key=key)
        result = self.result(header)
        endorsements = self.endorse(result, self.pool.peer("Org1"), self.pool.peer("Org2"))
        return header, result, self.seal(header, result, endorsements, user)


def serialized(signer: SigningIdentity) -> SerializedIdentity:
    """The creator or endorser field naming ``signer``."""
    return SerializedIdentity(signer.mspid, signer.cert_pem)


@dataclass(frozen=True)
class HostileTx:
    """One data item of a hostile block, the code it must get, and its tx id ("" if none)."""

    kind: str
    item: bytes
    expected: ValidationCode
    tx_id: str
    writes: tuple[str, ...] = ()
    """Keys it writes if valid."""


Builder = Callable[[HostileChannel, str, HostileIdentity], HostileTx]


def _tampered(
    kind: str,
    expected: ValidationCode,
    endorse: Callable[[HostileChannel, ProposalResult, ProposalResult], tuple[Endorsement, ...]],
) -> Builder:
    """A transaction whose endorsements are built by ``endorse`` from its own and a decoy result."""

    def build(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
        user = channel.pool.user("Org1")
        header = channel.header(serialized(user), label, key=label)
        result = channel.result(header)
        decoy = channel.result(channel.header(serialized(user), label + "/decoy", key=label))
        item = channel.seal(header, result, endorse(channel, result, decoy), user)
        return HostileTx(kind, item, expected, header.tx_id)

    return build


def _peers(channel: HostileChannel, *mspids: str) -> tuple[SigningIdentity, ...]:
    return tuple(channel.pool.peer(m) for m in mspids)


def _variant(
    kind: str,
    expected: ValidationCode,
    change: Callable[[HostileChannel, TxHeader], tuple[TxHeader, ProposalResult]],
) -> Builder:
    """A transaction whose header or result ``change`` alters, then endorsed and signed honestly."""

    def build(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
        user = channel.pool.user("Org1")
        header, result = change(channel, channel.header(serialized(user), label, key=label))
        endorsements = channel.endorse(result, *_peers(channel, "Org1", "Org2"))
        item = channel.seal(header, result, endorsements, user)
        written = tuple(w.key for w in result.rwset.writes) if expected is V.VALID else ()
        return HostileTx(kind, item, expected, header.tx_id, written)

    return build


def _honest(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
    header, _result, item = channel.honest_tx(label, label)
    return HostileTx("honest", item, V.VALID, header.tx_id, (label,))


def _reordered(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
    user = channel.pool.user("Org1")
    header = channel.header(serialized(user), label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, *_peers(channel, "Org2", "Org1"))
    item = channel.seal(header, result, endorsements, user)
    return HostileTx("reordered-endorsements", item, V.VALID, header.tx_id, (label,))


def _with_hostile_extra(channel: HostileChannel, label: str, hostile: HostileIdentity) -> HostileTx:
    """Enough honest endorsements plus a hostile one: the bad one is ignored, not fatal."""
    user = channel.pool.user("Org1")
    header = channel.header(serialized(user), label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, *_peers(channel, "Org1", "Org2"), hostile.signer)
    item = channel.seal(header, result, endorsements, user)
    return HostileTx("extra-hostile-endorsement", item, V.VALID, header.tx_id, (label,))


def _hostile_endorser(channel: HostileChannel, label: str, hostile: HostileIdentity) -> HostileTx:
    """The endorsement of the hostile identity's claimed org comes from that identity.

    Were the MSP to accept it, the policy would be met: only its refusal makes
    this ENDORSEMENT_POLICY_FAILURE.
    """
    claimed = hostile.signer.mspid
    other = "Org2" if claimed == "Org1" else "Org1"
    user = channel.pool.user("Org1")
    header = channel.header(serialized(user), label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, hostile.signer, channel.pool.peer(other))
    item = channel.seal(header, result, endorsements, user)
    return HostileTx("hostile-endorser", item, V.ENDORSEMENT_POLICY_FAILURE, header.tx_id)


def _hostile_creator(channel: HostileChannel, label: str, hostile: HostileIdentity) -> HostileTx:
    header = channel.header(hostile.serialized, label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, *_peers(channel, "Org1", "Org2"))
    item = channel.seal(header, result, endorsements, hostile.signer)
    return HostileTx("hostile-creator", item, V.BAD_CREATOR_SIGNATURE, header.tx_id)


def _signed_by_other(channel: HostileChannel, label: str, _hostile: HostileIdentity) -> HostileTx:
    user = channel.pool.user("Org1")
    header = channel.header(serialized(user), label, key=label)
    result = channel.result(header)
    endorsements = channel.endorse(result, *_peers(channel, "Org1", "Org2"))
    item = channel.seal(header, result, endorsements, channel.pool.user("Org2"))
    return HostileTx("creator-signature-by-another", item, V.BAD_CREATOR_SIGNATURE, header.tx_id)


def _truncated_envelope(
    channel: HostileChannel, label: str, _hostile: HostileIdentity
) -> HostileTx:
    _header, _result, item = channel.honest_tx(label, label)
    return HostileTx("truncated-envelope", item[: len(item) // 2], V.BAD_PAYLOAD, "")


def _header_change(kind: str, expected: ValidationCode, **fields: Any) -> Builder:
    """A header with ``fields`` replaced (result and signatures made to match)."""
    return _variant(
        kind, expected, lambda c, h: (replace(h, **fields), c.result(replace(h, **fields)))
    )


def _status(kind: str, status: int, expected: ValidationCode) -> Builder:
    """An endorsed response with ``status``: below 400 is success, as in Fabric's shim."""
    return _variant(kind, expected, lambda c, h: (h, c.result(h, status=status)))


def _payload_of_another_type(
    channel: HostileChannel, label: str, _hostile: HostileIdentity
) -> HostileTx:
    """A well-signed envelope whose payload is a record, but a header, not a payload."""
    user = channel.pool.user("Org1")
    header = channel.header(serialized(user), label, key=label)
    raw = encode(header)
    item = encode(Envelope(raw, user.sign(raw)))
    return HostileTx("payload-of-another-type", item, V.BAD_PAYLOAD, "")


def _stale_read(channel: HostileChannel, header: TxHeader) -> tuple[TxHeader, ProposalResult]:
    return header, channel.result(header, reads=(KVRead(header.args[0], Version(9, 0)),))


def _phantom(channel: HostileChannel, header: TxHeader) -> tuple[TxHeader, ProposalResult]:
    seen = RangeRead("zz", "", True, (KVRead("zz-ghost", Version(1, 0)),))
    return header, channel.result(header, range_reads=(seen,))


def _relabel(endorsement: Endorsement, mspid: str) -> Endorsement:
    return Endorsement(replace(endorsement.endorser, mspid=mspid), endorsement.signature)


BUILDERS: dict[str, Builder] = {
    "honest": _honest,
    "reordered-endorsements": _reordered,
    "extra-hostile-endorsement": _with_hostile_extra,
    "hostile-endorser": _hostile_endorser,
    "hostile-creator": _hostile_creator,
    "creator-signature-by-another": _signed_by_other,
    "truncated-envelope": _truncated_envelope,
    "replayed-endorsements": _tampered(
        "replayed-endorsements",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, _own, decoy: c.endorse(decoy, *_peers(c, "Org1", "Org2")),
    ),
    "one-replayed-endorsement": _tampered(
        "one-replayed-endorsement",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, decoy: (
            c.endorse(own, c.pool.peer("Org1")) + c.endorse(decoy, c.pool.peer("Org2"))
        ),
    ),
    "same-org-endorsers": _tampered(
        "same-org-endorsers",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: c.endorse(
            own, c.pool.peer("Org1"), c.pool.honest["peer1.org1.example.com"]
        ),
    ),
    "relabelled-endorser": _tampered(
        "relabelled-endorser",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: (
            *c.endorse(own, c.pool.peer("Org1")),
            _relabel(c.endorse(own, c.pool.honest["peer1.org1.example.com"])[0], "Org2"),
        ),
    ),
    "duplicated-endorsement": _tampered(
        "duplicated-endorsement",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: c.endorse(own, c.pool.peer("Org1")) * 2,
    ),
    "truncated-endorsements": _tampered(
        "truncated-endorsements",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: c.endorse(own, *_peers(c, "Org1", "Org2"))[:1],
    ),
    "truncated-signature": _tampered(
        "truncated-signature",
        V.ENDORSEMENT_POLICY_FAILURE,
        lambda c, own, _decoy: (
            *c.endorse(own, c.pool.peer("Org1")),
            *(
                Endorsement(e.endorser, e.signature[:-1])
                for e in c.endorse(own, c.pool.peer("Org2"))
            ),
        ),
    ),
    "replayed-result": _variant(
        "replayed-result",
        V.INVALID_ENDORSER_TRANSACTION,
        lambda c, h: (h, c.result(replace(h, args=(h.args[0], "other")))),
    ),
    "foreign-namespace": _variant(
        "foreign-namespace",
        V.INVALID_ENDORSER_TRANSACTION,
        lambda c, h: (h, c.result(h, namespace="other")),
    ),
    "foreign-channel": _variant(
        "foreign-channel",
        V.TARGET_CHAIN_NOT_FOUND,
        lambda c, h: (replace(h, channel="elsewhere"), c.result(replace(h, channel="elsewhere"))),
    ),
    "forged-tx-id": _variant(
        "forged-tx-id",
        V.BAD_PROPOSAL_TXID,
        lambda c, h: (replace(h, tx_id="f" * 64), c.result(replace(h, tx_id="f" * 64))),
    ),
    "empty-tx-id": _variant(
        "empty-tx-id",
        V.BAD_COMMON_HEADER,
        lambda c, h: (replace(h, tx_id=""), c.result(replace(h, tx_id=""))),
    ),
    "undeployed-chaincode": _variant(
        "undeployed-chaincode",
        V.INVALID_CHAINCODEID,
        lambda c, h: (
            replace(h, chaincode="nope"),
            c.result(replace(h, chaincode="nope"), namespace="nope"),
        ),
    ),
    "duplicate-writes": _variant(
        "duplicate-writes",
        V.BAD_RWSET,
        lambda c, h: (h, c.result(h, writes=(KVWrite(h.args[0], b"1", False),) * 2)),
    ),
    "delete-with-value": _variant(
        "delete-with-value",
        V.BAD_RWSET,
        lambda c, h: (h, c.result(h, writes=(KVWrite(h.args[0], b"1", True),))),
    ),
    "failed-response": _variant(
        "failed-response",
        V.BAD_RESPONSE_PAYLOAD,
        lambda c, h: (h, c.result(h, status=STATUS_ERROR)),
    ),
    "empty-channel": _header_change("empty-channel", V.BAD_COMMON_HEADER, channel=""),
    "empty-chaincode": _header_change("empty-chaincode", V.BAD_COMMON_HEADER, chaincode=""),
    "empty-write-key": _variant(
        "empty-write-key",
        V.BAD_RWSET,
        lambda c, h: (h, c.result(h, writes=(KVWrite("", b"1", False),))),
    ),
    "payload-of-another-type": _payload_of_another_type,
    "response-status-0": _status("response-status-0", 0, V.VALID),
    "response-status-399": _status("response-status-399", 399, V.VALID),
    "response-status-400": _status("response-status-400", 400, V.BAD_RESPONSE_PAYLOAD),
    "response-status-negative": _status("response-status-negative", -1, V.BAD_RESPONSE_PAYLOAD),
    "stale-read": _variant("stale-read", V.MVCC_READ_CONFLICT, _stale_read),
    "phantom-range": _variant("phantom-range", V.PHANTOM_READ_CONFLICT, _phantom),
}
"""Every kind of hostile transaction, built from a label (unique in its block)."""

ENVELOPE_KINDS = tuple(BUILDERS)


@dataclass(frozen=True)
class HostileBlock:
    """A block's data items and the code each must get, in order."""

    txs: tuple[HostileTx, ...]

    @property
    def items(self) -> tuple[bytes, ...]:
        return tuple(tx.item for tx in self.txs)

    @property
    def expected(self) -> tuple[ValidationCode, ...]:
        return tuple(tx.expected for tx in self.txs)


@st.composite
def hostile_txs(
    draw: st.DrawFn,
    kinds: Sequence[str] = ENVELOPE_KINDS,
    identities: Sequence[str] = HOSTILE_KINDS,
    label: str = "tx",
) -> HostileTx:
    """One hostile (or honest) transaction with the code it must get alone in a block."""
    kind = draw(st.sampled_from(kinds))
    hostile = draw(hostile_identities(identities))
    return BUILDERS[kind](HostileChannel(identity_pool()), label, hostile)


@st.composite
def hostile_blocks(
    draw: st.DrawFn,
    kinds: Sequence[str] = ENVELOPE_KINDS,
    identities: Sequence[str] = HOSTILE_KINDS,
    max_size: int = 6,
) -> HostileBlock:
    """Blocks mixing hostile and honest transactions, some submitted twice.

    Each transaction writes its own key, so the only interaction between them
    is the one the block is about: a later copy of an envelope is a
    ``DUPLICATE_TXID`` exactly when the first copy's tx id was established
    (it got past the creator and tx-id checks); otherwise the copy fails as the
    original did.
    """
    size = draw(st.integers(1, max_size))
    txs = [draw(hostile_txs(kinds, identities, label=f"t{i}")) for i in range(size)]
    copies = draw(st.lists(st.integers(0, size - 1), max_size=2))
    for index in copies:
        txs.append(txs[index])
    order = draw(st.permutations(range(len(txs))))
    return block_of([txs[i] for i in order])


ESTABLISHING = frozenset(
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
"""Codes after which a tx id counts as used (Fabric indexes these transactions' ids).

Stated here on its own, not imported from the validator, so a validator that
got its own set wrong is caught by comparison.
"""


def block_of(txs: Sequence[HostileTx]) -> HostileBlock:
    """A block of ``txs`` in this order, expected codes adjusted for repeated tx ids."""
    return HostileBlock(tuple(_with_duplicates(txs)))


def _with_duplicates(txs: Sequence[HostileTx]) -> list[HostileTx]:
    """Expected codes once repeated tx ids are taken into account, in block order."""
    used: set[str] = set()
    out = []
    for tx in txs:
        if tx.tx_id and tx.tx_id in used and tx.expected in ESTABLISHING:
            tx = replace(tx, expected=V.DUPLICATE_TXID, writes=())
        elif tx.expected in ESTABLISHING:
            used.add(tx.tx_id)
        out.append(tx)
    return out


def resubmitted(block: HostileBlock) -> HostileBlock:
    """The same items in a later block: what each must get the second time."""
    return HostileBlock(
        tuple(
            replace(tx, expected=V.DUPLICATE_TXID, writes=())
            if tx.expected in ESTABLISHING or tx.expected is V.DUPLICATE_TXID
            else tx
            for tx in block.txs
        )
    )
