"""A release proof a device checks offline, with nothing but the CA certificates and CRLs.

A ``metadata`` answer from one peer is that peer's word. Submitted as a
transaction instead, the answer is endorsed (signed by peers satisfying the
channel's endorsement policy) and ordered (the block holding it carries a
commit certificate: COMMIT signatures of a quorum Q = ceil((n + f + 1) / 2)
of the n replicas), and because ``metadata`` reads the head, it is only valid
if no release or withdrawal committed in between. The proof is that block,
the index of the transaction in it and the certificates of the peers that
signed its COMMITs. A verifier needs no gateway and no peer:

1. each COMMIT signer's certificate must chain to its organisation's CA, not
   be revoked, carry the peer role and name the peer that replica runs as;
2. the block must be ordered: data hash, sequence number and a quorum of
   valid COMMITs for exactly this block (:func:`sim.fabric.verify.ordering_problem`,
   the check ``ledgersim ledger verify`` makes of every block);
3. the transaction must be a ``metadata`` call for the release asked for, by
   a valid creator, endorsed under the policy (the validator's own checks,
   :func:`ledger.validator.check_creator` and ``check_endorsed``);
4. the endorsed answer must pass the client's release check
   (:func:`sim.fabric.distribution.check_release`).

What the block cannot vouch for: its validation codes sit outside the hashes
(as in Fabric), so a proof cannot show the transaction was not an MVCC
conflict; the endorsement time inside the answer (``as_of_ms``) and the
block's agreed time bound how old the answer can be, and the freshness check
refuses one older than the device's bound.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.block import Block, ValidationCode, code_name
from ledger.codec import CodecError, decode, encode
from ledger.transaction import STATUS_OK, TxPayload
from ledger.validator import ChannelConfig, check_creator, check_endorsed, parse
from msp.errors import MSPError
from msp.identity import Identity
from msp.msp import MSPManager, at_virtual_ms
from msp.names import replica_peer_name
from msp.policy import PolicyError
from msp.policy import parse as parse_policy
from sim.fabric.app import unwrap_request
from sim.fabric.distribution import ReleaseRejected, ReleaseRequest, check_release
from sim.fabric.gateway import CHAINCODE
from sim.fabric.sdk import DEFAULT_CHANNEL
from sim.fabric.verify import Trust, ordering_problem
from sim.scenario.model import NetworkSpec

__all__ = [
    "DEFAULT_POLICY",
    "MIN_REPLICAS",
    "PROOF_FORMAT",
    "ProofRejected",
    "Proven",
    "check_fresh",
    "make_proof",
    "proof_text",
    "verify_proof",
]

PROOF_FORMAT = "ledgersim.patchset.proof.v1"
MIN_REPLICAS = 4
"""PBFT needs n >= 3f + 1 with f >= 1; below that the quorum proves nothing (n = 0 needs none)."""
DEFAULT_POLICY = NetworkSpec().endorsement_policy
"""The endorsement policy a verifier expects unless told otherwise (the networks' default)."""


class ProofRejected(Exception):
    """A proof that does not prove the release it claims; the message says which step failed."""


@dataclass(frozen=True, slots=True)
class Proven:
    """What a verified proof establishes."""

    release: dict[str, Any]
    block: int
    block_time_ms: int
    tx_id: str

    @property
    def dated_ms(self) -> int:
        """How recent the answer is known to be: the endorsement time, never after the block."""
        return min(self.block_time_ms, int(self.release["as_of_ms"]))


def _metadata_call(block: Block, index: int) -> tuple[TxPayload, dict[str, Any]]:
    """The ``metadata`` transaction at ``index`` and the release it answered."""
    if not 0 <= index < len(block.data):
        raise ProofRejected(f"block {block.number} has no transaction {index}")
    _code, envelope, payload = parse(block.data[index], unwrap_request)
    if envelope is None or payload is None:
        raise ProofRejected(f"transaction {index} of block {block.number} does not decode")
    header, response = payload.header, payload.result.response
    if (header.chaincode, header.function) != (CHAINCODE, "metadata"):
        raise ProofRejected(
            f"transaction {index} is {header.chaincode}.{header.function}, not {CHAINCODE}.metadata"
        )
    if response.status != STATUS_OK:
        raise ProofRejected(f"transaction {index} was refused: {response.message}")
    try:
        release = json.loads(response.payload)
    except ValueError:
        raise ProofRejected(f"transaction {index} answered no release") from None
    return payload, release


def make_proof(
    request: ReleaseRequest, block: Block, index: int, signers: Mapping[int, Identity]
) -> dict[str, Any]:
    """The proof file for the ``metadata`` call at ``index`` of ``block``.

    ``signers``: the certificate of each replica whose COMMIT is in the
    block's certificate (the verifier checks them; it need not trust them).
    """
    _payload, release = _metadata_call(block, index)
    return {
        "format": PROOF_FORMAT,
        "request": {"name": request.name, "version": request.version},
        "release": release,
        "block": encode(block).hex(),
        "tx_index": index,
        "commit_signers": {
            str(replica): {"mspid": who.mspid, "cert_pem": who.cert_pem.decode()}
            for replica, who in sorted(signers.items())
        },
    }


def proof_text(proof: Mapping[str, Any]) -> str:
    """A proof file's text: the same bytes whether the CLI or the HTTP gateway writes it."""
    return json.dumps(proof, sort_keys=True, indent=1) + "\n"


def verify_proof(
    proof: Any,
    msps: MSPManager,
    *,
    replicas: int,
    policy: str = DEFAULT_POLICY,
    installed: str | None = None,
) -> Proven:
    """Check ``proof`` (a parsed proof file) with the CA certificates and CRLs in ``msps``.

    ``replicas`` (n) and ``policy`` are the device's knowledge of the
    channel, never taken from the proof: a proof that named its own n could
    lower the quorum. ``installed`` is the device's floor.
    """
    if replicas < MIN_REPLICAS:
        raise ValueError(f"replicas must be at least {MIN_REPLICAS}, got {replicas}")
    try:
        if not isinstance(proof, dict) or proof.get("format") != PROOF_FORMAT:
            raise ProofRejected(f"not a release proof (format {PROOF_FORMAT!r} expected)")
        request = ReleaseRequest(
            str(proof["request"]["name"]), str(proof["request"]["version"]), installed
        )
        block = decode(bytes.fromhex(proof["block"]), Block)
        index = int(proof["tx_index"])
        signer_fields = dict(proof["commit_signers"])
        claimed_release = proof["release"]
    except (KeyError, TypeError, ValueError, CodecError) as exc:
        raise ProofRejected(f"malformed proof: {exc!r}") from None
    when = block.metadata.timestamp_ms
    trust = Trust(msps, _commit_signers(signer_fields, msps, when), len(msps.mspids))
    problem = ordering_problem(block, trust, replicas)
    if problem is not None:
        raise ProofRejected(f"block {block.number}: {problem}")
    payload, release = _metadata_call(block, index)
    _check_transaction(block, index, payload, msps, policy, request)
    if claimed_release != release:
        raise ProofRejected(
            "the release in the file is not the one the block's transaction answered"
        )
    try:
        check_release(release, request, msps)
    except ReleaseRejected as exc:
        raise ProofRejected(str(exc)) from None
    return Proven(release, block.number, when, payload.header.tx_id)


def _commit_signers(
    fields: Mapping[str, Any], msps: MSPManager, when_ms: int
) -> dict[str, Identity]:
    """Peer name -> identity for each COMMIT signer whose certificate the CAs vouch for.

    An untrusted certificate (revoked, another CA, not a peer, not the peer
    that replica runs as) refuses the proof by name rather than just not
    counting: a proof carrying one was built by someone lying.
    """
    orgs = len(msps.mspids)
    peers: dict[str, Identity] = {}
    for replica_text, field in sorted(fields.items()):
        try:
            replica = int(replica_text)
            identity = msps.identity(str(field["mspid"]), str(field["cert_pem"]))
        except (KeyError, TypeError, ValueError, MSPError) as exc:
            raise ProofRejected(f"commit signer {replica_text!r}: malformed ({exc})") from None
        verdict = msps.validate(identity, at_virtual_ms(when_ms), role="peer")
        if not verdict.ok:
            raise ProofRejected(
                f"commit signer of replica {replica} is not trusted: {verdict.reason}"
            )
        expected = replica_peer_name(replica, orgs)
        if identity.name != expected:
            raise ProofRejected(
                f"replica {replica} runs as {expected}, the certificate given is {identity.name}"
            )
        peers[identity.name] = identity
    return peers


def _check_transaction(
    block: Block,
    index: int,
    payload: TxPayload,
    msps: MSPManager,
    policy: str,
    request: ReleaseRequest,
) -> None:
    """Valid creator, endorsed under the policy, asking for what the proof says it asked."""
    code = block.metadata.validation_codes[index]  # one per data item: the codec checks
    if code != ValidationCode.VALID:
        raise ProofRejected(f"transaction {index} is marked {code_name(code)}, not VALID")
    try:
        config = ChannelConfig(DEFAULT_CHANNEL, msps, {CHAINCODE: parse_policy(policy)})
    except PolicyError as exc:
        raise ProofRejected(f"endorsement policy {policy!r}: {exc}") from None
    _parsed, envelope, _ = parse(block.data[index], unwrap_request)
    assert envelope is not None  # _metadata_call decoded it
    when = block.metadata.timestamp_ms
    for step, verdict in (
        ("creator", check_creator(envelope, payload, config, when)),
        ("endorsements", check_endorsed(payload, config, when)),
    ):
        if verdict != ValidationCode.VALID:
            raise ProofRejected(f"transaction {index}: {step} check gives {verdict.name}")
    asked = (request.name, request.version) if request.version else (request.name,)
    if tuple(payload.header.args) != asked:
        raise ProofRejected(f"transaction {index} asked metadata{payload.header.args}, not {asked}")


def check_fresh(proven: Proven, now_ms: int, max_age_ms: int) -> None:
    """TUF's freeze attack: refuse an answer older than ``max_age_ms`` at ``now_ms``."""
    age = now_ms - proven.dated_ms
    if age > max_age_ms:
        raise ProofRejected(
            f"the answer dates from {proven.dated_ms} ms (block {proven.block}), {age} ms before "
            f"now ({now_ms}); the bound is {max_age_ms} ms: refusing a stale or frozen answer"
        )
