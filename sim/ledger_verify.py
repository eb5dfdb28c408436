"""Checking a block store with nothing but the CA certificates (``ledgersim ledger verify``).

What a block proves, and how it is checked here, block by block from 0:

* the hash chain: block 0 is the empty genesis block chained from 32 zero
  bytes; every later block's ``previous_hash`` is its predecessor's header hash;
* the data: ``data_hash`` is recomputed from the data items;
* ordering: the metadata's commit certificate holds valid COMMIT signatures
  of at least 2f+1 distinct replicas for the block's view, sequence number
  (= block number) and digest (= ``data_hash``), each checked against the
  certificate of the peer that replica runs as;
* content: every transaction marked VALID has a creator who was a valid
  member at the block's agreed time and signed the envelope, and endorsements
  whose signatures all verify under valid members' certificates.

The first failure stops the walk and is reported with the block's number,
because everything after a broken link is unanchored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ledger.block import GENESIS, Block, Unwrap, ValidationCode
from ledger.codec import CodecError, decode, encode
from ledger.validator import parse
from msp.errors import MSPError
from msp.identity import Identity, parse_certificate
from msp.layout import ORGS_DIR
from msp.msp import MSP, MSPManager, at_virtual_ms
from msp.names import mspid_from_domain, natural_key, replica_peer_name
from pbft.messages import Commit, signing_bytes


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

    def __str__(self) -> str:
        return f"block {self.block}: {self.reason}"


def certificate_problem(block: Block, trust: Trust, n: int) -> str | None:
    """Why the block's commit certificate does not prove its ordering (None if it does)."""
    meta = block.metadata
    quorum = 2 * ((n - 1) // 3) + 1
    signers: set[int] = set()
    for raw in meta.certificate:
        try:
            commit = decode(raw, Commit)
        except CodecError as exc:
            return f"undecodable COMMIT in certificate ({exc.reason})"
        if (commit.view, commit.seq, commit.digest, commit.timestamp_ms) != (
            meta.view,
            block.number,
            block.header.data_hash,
            meta.timestamp_ms,
        ):
            return (
                f"COMMIT of replica {commit.replica} is for view {commit.view} seq {commit.seq},"
                f" not the block's view {meta.view} seq {block.number}, data hash and timestamp"
            )
        identity = trust.replica(commit.replica) if commit.replica < n else None
        if identity is not None and identity.verify(signing_bytes(commit), commit.signature):
            signers.add(commit.replica)
    if len(signers) < quorum:
        return (
            f"commit certificate has valid signatures from {len(signers)} distinct replica(s),"
            f' need 2f+1 = {quorum} (runs with crypto = "modelled" sign COMMITs with HMAC'
            " keys and cannot be checked against certificates)"
        )
    return None


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
    signed = encode(payload.result)
    for endorsement in payload.endorsements:
        who = endorsement.endorser
        if not valid_signer(who.mspid, who.cert_pem, signed, endorsement.signature):
            return f"transaction {index} ({payload.header.tx_id}): bad endorsement by {who.mspid}"
    return None


def block_problem(
    block: Block,
    previous: Block | None,
    trust: Trust,
    n: int,
    unwrap: Unwrap,
    certificates: bool = True,
) -> str | None:
    """The first thing wrong with ``block`` given its predecessor (None if nothing)."""
    if previous is None:
        return None if block == GENESIS else "block 0 is not the empty genesis block"
    if block.header.previous_hash != previous.hash:
        return "previous_hash does not match the header hash of the block before"
    if not block.data_hash_ok():
        return "data_hash does not match the block's data"
    if block.metadata.seq != block.number:
        return f"metadata says sequence number {block.metadata.seq}"
    if certificates:
        problem = certificate_problem(block, trust, n)
        if problem is not None:
            return problem
    for index, (item, code) in enumerate(
        zip(block.data, block.metadata.validation_codes, strict=True)
    ):
        problem = transaction_problem(index, item, code, block.metadata.timestamp_ms, trust, unwrap)
        if problem is not None:
            return problem
    return None


@dataclass(frozen=True, slots=True)
class Report:
    blocks: int
    head: Block | None
    problem: Problem | None


def verify_blocks(
    blocks: Iterable[Block],
    trust: Trust,
    n: int,
    unwrap: Unwrap,
    certificates: bool = True,
) -> Report:
    """Walk ``blocks`` from block 0; stop at the first problem."""
    previous: Block | None = None
    count = 0
    for block in blocks:
        problem = block_problem(block, previous, trust, n, unwrap, certificates)
        if problem is not None:
            return Report(count, previous, Problem(block.number, problem))
        previous = block
        count += 1
    return Report(count, previous, None)
