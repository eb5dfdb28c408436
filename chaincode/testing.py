"""Run a contract without a network: an in-memory stub and a harness around it.

Contract authors want to test their access rules and state transitions in
microseconds, with no endorsement, ordering or validation in the way (Fabric's
``MockStub`` serves the same purpose). The harness keeps one world state and a
per-key history; each :meth:`ContractHarness.invoke` runs the contract against
a fresh :class:`MemoryStub` and, if the contract returns normally, applies its
writes at once, as if the transaction had been ordered and committed alone.

Two Fabric semantics are kept on purpose because contracts that ignore them
break on a real peer: a transaction does not read its own writes (reads see the
committed state), and a transaction that raises writes nothing.

Given the channel's MSPs, the harness also does what the endorser does before
any contract runs: the creator's certificate must chain to a CA of its MSP,
be unrevoked by that MSP's CRLs and valid at the proposal time, and the
creator's role and name must be the certificate's. That is what lets a
contract's tests show that a revoked administrator can no longer act.
Without MSPs the creator is taken as given (for toy contracts with no PKI).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519

from chaincode.keyspace import KeyRanges
from chaincode.shim import Contract, Creator, KeyModification
from msp.ca import OrgCrypto
from msp.errors import MSPError
from msp.identity import SigningIdentity
from msp.msp import MSPManager, at_virtual_ms

__all__ = [
    "ATTRIBUTES_OID",
    "ContractHarness",
    "CreatorRejected",
    "Event",
    "MemoryStub",
    "WorldState",
    "creator_of",
    "with_attributes",
]

ATTRIBUTES_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
"""Fabric CA's enrollment-attribute extension: JSON ``{"attrs": {name: value}}``."""


class CreatorRejected(Exception):
    """The proposal's creator is not a valid member: an endorser would refuse it (403)."""


def creator_of(signer: SigningIdentity) -> Creator:
    """The creator an endorser would derive from this identity's certificate."""
    return Creator(signer.mspid, signer.role, signer.name, signer.cert_pem)


def with_attributes(
    org: OrgCrypto, member: SigningIdentity, attributes: Mapping[str, str]
) -> SigningIdentity:
    """``member`` re-issued by its org's CA with Fabric CA enrollment attributes added.

    Same key, subject and validity; a new serial (derived from the old one and
    the attributes), so revoking one certificate does not revoke the other.
    The MSP does not issue attributes itself; contracts that read them (the
    patchset duty separation) are tested with certificates made here.
    """
    cert = member.cert
    blob = json.dumps({"attrs": dict(attributes)}, sort_keys=True).encode()
    serial_seed = hashlib.sha256(cert.serial_number.to_bytes(20, "big") + blob).digest()
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(member.public_key)
        .serial_number(int.from_bytes(serial_seed[:16], "big") >> 1)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    builder = builder.add_extension(x509.UnrecognizedExtension(ATTRIBUTES_OID, blob), False)
    key = org.issuer.key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        issued = builder.sign(key, None)
    else:
        issued = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return SigningIdentity(member.mspid, issued, member.private_key)


@dataclass(frozen=True, slots=True)
class Event:
    """A chaincode event set by a committed transaction."""

    tx_id: str
    name: str
    payload: bytes


@dataclass(slots=True)
class WorldState:
    """Committed key-value state plus each key's history, oldest first."""

    values: dict[str, bytes] = field(default_factory=dict)
    history: dict[str, list[KeyModification]] = field(default_factory=dict)


class MemoryStub(KeyRanges):
    """A :class:`chaincode.shim.Stub` over a :class:`WorldState`, buffering writes.

    Reads come from the committed state; ``put_state``/``del_state`` land in
    :attr:`writes` (``None`` marks a delete) until the host applies them.
    """

    def __init__(
        self,
        world: WorldState,
        *,
        creator: Creator,
        tx_id: str,
        timestamp_ms: int,
        function: str,
        args: Sequence[str],
    ) -> None:
        self._world = world
        self._creator = creator
        self._tx_id = tx_id
        self._timestamp_ms = timestamp_ms
        self._function = function
        self._args = list(args)
        self.writes: dict[str, bytes | None] = {}
        self.event: tuple[str, bytes] | None = None

    # -- state
    def get_state(self, key: str) -> bytes | None:
        return self._world.values.get(key)

    def put_state(self, key: str, value: bytes) -> None:
        if not key:
            raise ValueError("key must not be empty")
        if not isinstance(value, bytes):
            raise TypeError(f"value for {key!r} must be bytes, got {type(value).__name__}")
        self.writes[key] = value

    def del_state(self, key: str) -> None:
        self.writes[key] = None

    def _range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        values = self._world.values
        return iter([(k, values[k]) for k in sorted(values) if k >= start and (not end or k < end)])

    def get_history_for_key(self, key: str) -> Iterator[KeyModification]:
        return iter(list(self._world.history.get(key, ())))

    # -- proposal
    def get_creator(self) -> Creator:
        return self._creator

    def get_tx_id(self) -> str:
        return self._tx_id

    def get_tx_timestamp(self) -> int:
        return self._timestamp_ms

    def get_function(self) -> str:
        return self._function

    def get_args(self) -> list[str]:
        return list(self._args)

    def set_event(self, name: str, payload: bytes) -> None:
        self.event = (name, payload)


class ContractHarness:
    """One contract, one world state, transactions applied one at a time.

    ``timestamp_ms`` defaults to a harness clock that advances by ``step_ms``
    per call, so tests that do not care about time stay deterministic; tests
    about deadlines pass it explicitly. Transaction ids are derived from a
    counter, so every call gets a distinct, reproducible id.
    """

    def __init__(
        self,
        contract: Contract,
        *,
        start_ms: int = 1_000,
        step_ms: int = 1_000,
        msps: MSPManager | None = None,
    ) -> None:
        self.contract = contract
        self.msps = msps
        self.world = WorldState()
        self.events: list[Event] = []
        self._clock_ms = start_ms
        self._step_ms = step_ms
        self._count = 0

    def _proposal(
        self, creator: Creator, function: str, args: Sequence[str], timestamp_ms: int | None
    ) -> MemoryStub:
        self._count += 1
        if timestamp_ms is None:
            timestamp_ms = self._clock_ms
            self._clock_ms += self._step_ms
        else:
            self._clock_ms = max(self._clock_ms, timestamp_ms + self._step_ms)
        self._authenticate(creator, timestamp_ms)
        seed = f"{self._count}\x00{creator.mspid}\x00{creator.name}\x00{function}"
        return MemoryStub(
            self.world,
            creator=creator,
            tx_id=hashlib.sha256(seed.encode()).hexdigest(),
            timestamp_ms=timestamp_ms,
            function=function,
            args=args,
        )

    def _authenticate(self, creator: Creator, timestamp_ms: int) -> None:
        """The endorser's creator check; ``CreatorRejected`` says why it fails."""
        if self.msps is None:
            return
        try:
            identity = self.msps.identity(creator.mspid, creator.cert_pem)
        except MSPError as exc:
            raise CreatorRejected(f"creator rejected: {exc}") from None
        verdict = self.msps.validate(identity, at_virtual_ms(timestamp_ms))
        if not verdict.ok:
            raise CreatorRejected(f"creator rejected: {verdict.reason}")
        if (creator.role, creator.name) != (identity.role, identity.name):
            raise CreatorRejected(
                f"creator rejected: claims {creator.role} {creator.name}, the certificate "
                f"says {identity.role} {identity.name}"
            )

    def invoke(
        self, creator: Creator, function: str, *args: str, timestamp_ms: int | None = None
    ) -> bytes:
        """Run and commit one transaction; a ``ContractError`` propagates and writes nothing."""
        stub = self._proposal(creator, function, args, timestamp_ms)
        result = self.contract.invoke(stub)
        self._apply(stub)
        return result

    def evaluate(
        self, creator: Creator, function: str, *args: str, timestamp_ms: int | None = None
    ) -> bytes:
        """Run a query: the contract's writes, if any, are discarded (Fabric's evaluate)."""
        stub = self._proposal(creator, function, args, timestamp_ms)
        return self.contract.invoke(stub)

    def _apply(self, stub: MemoryStub) -> None:
        tx_id, when = stub.get_tx_id(), stub.get_tx_timestamp()
        for key, value in stub.writes.items():
            if value is None:
                self.world.values.pop(key, None)
            else:
                self.world.values[key] = value
            modification = KeyModification(tx_id, when, value or b"", value is None)
            self.world.history.setdefault(key, []).append(modification)
        if stub.event is not None:
            self.events.append(Event(tx_id, *stub.event))
