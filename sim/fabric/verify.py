"""Checking a block store with nothing but the CA certificates (``ledgersim ledger verify``).

What a block proves, and how it is checked here, block by block from 0:

* the hash chain: block 0 is the empty genesis block chained from 32 zero
  bytes; every later block's ``previous_hash`` is its predecessor's header hash;
* the data: ``data_hash`` is recomputed from the data items;
* ordering: the metadata's commit certificate holds valid COMMIT signatures
  of at least 2f+1 distinct replicas for the block's view, sequence number
  (= block number) and digest (= ``data_hash``), each checked against the
  certificate of the peer that replica runs as;
* validation codes: they sit in the metadata, outside the hash chain (as in
  Fabric), so nothing but re-running validation can vouch for them. Given the
  channel configuration (:class:`ValidationReplay`), the walk replays the
  peers' validator from an empty world state, block after block, and the
  recomputed codes must equal the stored ones. PBFT's exactly-once rule is
  re-derived from the chain: a request whose client already had the same or a
  later timestamp executed is stale, and the validator marks it
  ``DUPLICATE_TXID``. Without the channel configuration the walk only checks
  that every transaction marked VALID has a creator who was a valid member at
  the block's agreed time and signed the envelope, a result bound to its own
  proposal and chaincode (so endorsements replayed with another transaction's
  result do not pass), and endorsements whose signatures all verify under
  valid members' certificates.

The first failure stops the walk and is reported with the block's number,
because everything after a broken link is unanchored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ledger.block import GENESIS, Block, Unwrap, ValidationCode, code_name
from ledger.codec import CodecError, decode, encode
from ledger.state import MemoryState, UpdateBatch
from ledger.transaction import proposal_hash
from ledger.validator import ChannelConfig, parse, validate_block
from msp.errors import MSPError
from msp.identity import Identity, parse_certificate
from msp.layout import ORGS_DIR
from msp.msp import MSP, MSPManager, at_virtual_ms
from msp.names import mspid_from_domain, natural_key, replica_peer_name
from pbft.api import quorum_size
from pbft.execution import freshness
from pbft.messages import Commit, Request, signing_bytes


class TrustError(Exception):
    """The trust material (MSP directory) is unusable."""


@dataclass(frozen=True)
class Trust:
    """The CA side: every org's MSP, and the certificate of each replica's peer."""

    msps: MSPManager
    peers: Mapping[str, Identity]
    """Peer name (CN) -> identity, from ``peers/<name>/msp/signcerts``."""
    orgs: int

    @classmethod
    def load(cls, directory: Path) -> Trust:
        orgs_dir = directory if directory.name == ORGS_DIR else directory / ORGS_DIR
        if not orgs_dir.is_dir():
            raise TrustError(f"{directory}: no {ORGS_DIR}/ directory (expected a cryptogen tree)")
        org_dirs = sorted(
            (p for p in orgs_dir.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)
        )
        msps: list[MSP] = []
        peers: dict[str, Identity] = {}
        try:
            for org_dir in org_dirs:
                mspid = mspid_from_domain(org_dir.name)
                msps.append(MSP.load(org_dir / "msp", mspid))
                for cert_file in sorted((org_dir / "peers").glob("*/msp/signcerts/*.pem")):
                    identity = Identity(mspid, parse_certificate(cert_file.read_bytes()))
                    peers[identity.name] = identity
        except (MSPError, OSError) as exc:
            raise TrustError(f"{orgs_dir}: {exc}") from None
        if not msps:
            raise TrustError(f"{orgs_dir}: no organisations")
        return cls(MSPManager(msps), peers, len(msps))

    def replica(self, replica_id: int) -> Identity | None:
        return self.peers.get(replica_peer_name(replica_id, self.orgs))


@dataclass(frozen=True, slots=True)
class Problem:
    block: int
    reason: str
    where: str = ""
    """What inside the block, e.g. `` tx 1 (tx_id ab12...)``; empty for the block as a whole."""

    def __str__(self) -> str:
        return f"block {self.block}{self.where}: {self.reason}"


def certificate_problem(block: Block, trust: Trust, n: int) -> str | None:
    """Why the block's commit certificate does not prove its ordering (None if it does)."""
    meta = block.metadata
    quorum = quorum_size(n)
    signers: set[int] = set()
    for raw in meta.certificate:
        try:
            commit = decode(raw, Commit)
        except CodecError as exc:
            return f"undecodable COMMIT in certificate ({exc.reason})"
        mismatch = _commit_mismatch(commit, block)
        if mismatch:
            return f"COMMIT of replica {commit.replica} is for another block: {mismatch}"
        identity = trust.replica(commit.replica) if commit.replica < n else None
        if identity is not None and identity.verify(signing_bytes(commit), commit.signature):
            signers.add(commit.replica)
    if len(signers) < quorum:
        return (
            f"commit certificate has valid signatures from {len(signers)} distinct replica(s),"
            f' need a quorum of {quorum} (runs with crypto = "modelled" sign COMMITs with HMAC'
            " keys and cannot be checked against certificates)"
        )
    return None


def _commit_mismatch(commit: Commit, block: Block) -> str:
    """Which of view, seq, digest and timestamp differ between a COMMIT and its block."""
    meta = block.metadata
    pairs = (
        ("view", str(commit.view), str(meta.view)),
        ("seq", str(commit.seq), str(block.number)),
        ("digest", commit.digest.hex(), block.header.data_hash.hex()),
        ("timestamp_ms", str(commit.timestamp_ms), str(meta.timestamp_ms)),
    )
    return "; ".join(
        f"its {name} is {_short(theirs)}, the block's is {_short(ours)}"
        for name, theirs, ours in pairs
        if theirs != ours
    )


def _short(text: str) -> str:
    return text if len(text) <= 16 else text[:16] + "…"


def transaction_problem(
    index: int, item: bytes, code: int, when_ms: int, trust: Trust, unwrap: Unwrap
) -> str | None:
    """Why a transaction marked VALID is not properly signed (None if fine or not VALID)."""
    if code != ValidationCode.VALID:
        return None
    parsed_code, envelope, payload = parse(item, unwrap)
    if envelope is None or payload is None or parsed_code != ValidationCode.VALID:
        return f"transaction {index} is marked VALID but does not decode"
    now = at_virtual_ms(when_ms)

    def valid_signer(mspid: str, cert_pem: bytes, data: bytes, signature: bytes) -> bool:
        return trust.msps.authenticate(mspid, cert_pem, data, signature, now).ok

    creator = payload.header.creator
    if not valid_signer(creator.mspid, creator.cert_pem, envelope.payload, envelope.signature):
        return f"transaction {index} ({payload.header.tx_id}): bad creator signature or identity"
    if not payload.endorsements:
        return f"transaction {index} ({payload.header.tx_id}): no endorsements"
    header, result = payload.header, payload.result
    if result.proposal_hash != proposal_hash(header) or result.rwset.namespace != header.chaincode:
        return f"transaction {index} ({header.tx_id}): endorsed result is for another proposal"
    signed = encode(payload.result)
    for endorsement in payload.endorsements:
        who = endorsement.endorser
        if not valid_signer(who.mspid, who.cert_pem, signed, endorsement.signature):
            return f"transaction {index} ({payload.header.tx_id}): bad endorsement by {who.mspid}"
    return None


class ValidationReplay:
    """The peers' validation re-run from an empty world state, one block after another.

    Every correct peer computed the stored codes with ``validate_block`` from
    the same chain and channel configuration, so the same function, fed the
    same blocks in order, must reproduce them exactly; a code edited in the
    metadata (which no hash covers) shows up as the first disagreement.
    """

    def __init__(self, config: ChannelConfig, unwrap: Unwrap) -> None:
        self.config = config
        self.unwrap = unwrap
        self.state = MemoryState()
        self.last_timestamps: dict[int, int] = {}
        """Per PBFT client, the newest request timestamp executed so far."""

    def stale_positions(self, data: tuple[bytes, ...]) -> list[int]:
        """PBFT's exactly-once verdict for a block, from the chain alone (as replicas decide it).

        A request is stale when its client already had this timestamp or a
        later one executed, earlier in the chain or earlier in the block.
        """
        positions: list[int] = []
        requests: list[Request] = []
        for index, item in enumerate(data):
            try:
                requests.append(decode(item, Request))
            except CodecError:
                continue  # not a request: the validator gives it NIL_ENVELOPE anyway
            positions.append(index)
        verdicts = freshness(requests, self.last_timestamps)
        for request, new in zip(requests, verdicts, strict=True):
            if new:
                self.last_timestamps[request.client] = request.timestamp
        return [index for index, new in zip(positions, verdicts, strict=True) if not new]

    def check(self, block: Block) -> Problem | None:
        """Recompute ``block``'s codes, compare, and apply its effects if they agree."""
        if block.number == 0:
            self.state.apply(0, UpdateBatch())
            return None
        meta = block.metadata
        verdict = validate_block(
            block.number,
            block.data,
            meta.timestamp_ms,
            self.unwrap,
            self.config,
            self.state,
            self.stale_positions(block.data),
        )
        for index, (stored, recomputed) in enumerate(
            zip(meta.validation_codes, verdict.codes, strict=True)
        ):
            if stored != recomputed:
                tx_id = verdict.tx_ids[index]
                where = f" tx {index}" + (f" (tx_id {tx_id})" if tx_id else "")
                reason = f"stored {code_name(stored)}, recomputed {code_name(recomputed)}"
                return Problem(block.number, reason, where)
        self.state.apply(block.number, verdict.updates)
        return None


def block_problem(
    block: Block,
    previous: Block | None,
    trust: Trust,
    n: int,
    unwrap: Unwrap,
    certificates: bool = True,
    replay: ValidationReplay | None = None,
) -> Problem | None:
    """The first thing wrong with ``block`` given its predecessor (None if nothing).

    With ``replay``, the validation codes are recomputed (and the block's
    effects applied to the replay's state when they match); without it only
    the signatures of transactions marked VALID are checked.
    """
    reason = _structure_problem(block, previous, trust, n, certificates)
    if reason is not None:
        return Problem(block.number, reason)
    if replay is not None:
        return replay.check(block)
    for index, (item, code) in enumerate(
        zip(block.data, block.metadata.validation_codes, strict=True)
    ):
        reason = transaction_problem(index, item, code, block.metadata.timestamp_ms, trust, unwrap)
        if reason is not None:
            return Problem(block.number, reason)
    return None


def _structure_problem(
    block: Block, previous: Block | None, trust: Trust, n: int, certificates: bool
) -> str | None:
    """Chain link, data hash, sequence number and commit certificate."""
    if previous is None:
        return None if block == GENESIS else "block 0 is not the empty genesis block"
    if block.number != previous.number + 1:
        return f"follows block {previous.number}"
    if block.header.previous_hash != previous.hash:
        return "previous_hash does not match the header hash of the block before"
    return ordering_problem(block, trust, n, certificates)


def ordering_problem(block: Block, trust: Trust, n: int, certificates: bool = True) -> str | None:
    """Why ``block`` on its own is not proven ordered: data hash, sequence number, certificate.

    Everything but the link to the block before, so a single block (a patch
    release proof) is checked by the same code as a walk over the chain.
    """
    if not block.data_hash_ok():
        return "data_hash does not match the block's data"
    if block.metadata.seq != block.number:
        return f"metadata says sequence number {block.metadata.seq}"
    if certificates:
        return certificate_problem(block, trust, n)
    return None


@dataclass(frozen=True, slots=True)
class Report:
    blocks: int
    head: Block | None
    problem: Problem | None
    codes_replayed: bool = False


def verify_blocks(
    blocks: Iterable[Block],
    trust: Trust,
    n: int,
    unwrap: Unwrap,
    certificates: bool = True,
    *,
    config: ChannelConfig | None = None,
) -> Report:
    """Walk ``blocks`` from block 0; stop at the first problem.

    ``config``: the channel's configuration, to replay validation and check
    every stored validation code (see :class:`ValidationReplay`).
    """
    replay = None if config is None else ValidationReplay(config, unwrap)
    previous: Block | None = None
    count = 0
    for block in blocks:
        problem = block_problem(block, previous, trust, n, unwrap, certificates, replay)
        if problem is not None:
            return Report(count, previous, problem, replay is not None)
        previous = block
        count += 1
    return Report(count, previous, None, replay is not None)
