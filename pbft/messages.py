"""PBFT protocol messages (Castro & Liskov, OSDI'99 section 4; TOCS'02 section 4).

Every message is a frozen, slotted dataclass registered with the canonical
codec; what goes on the wire is exactly ``codec.encode(message)``. Messages a
replica or client must authenticate end in a ``signature`` field, and the
signature covers the message's encoding with that field empty
(:func:`signing_bytes`). Construction checks the shape of the fields (no
negative views, digests of 32 bytes, ...) so a decoded message is at least
well-formed; whether it is *acceptable* is the replica's business.

Batching: a PRE-PREPARE carries the whole batch of requests (the paper's
"piggybacked" requests), and its ``digest`` is the batch digest, which is the
block's ``data_hash`` (:func:`batch_digest`). An empty batch is the paper's
null request, used to fill gaps at a view change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from ledger.codec import (
    bin_header,
    cached_encoding,
    encode,
    encode_replacing_last,
    record,
    remember_decoding,
    sign_fields,
)
from ledger.hashing import data_hash
from pbft.checked_init import checked

DIGEST_SIZE = 32

M = TypeVar("M")


@record(1)
@checked(nonneg=("client", "timestamp"))
@dataclass(frozen=True, slots=True)
class Request:
    """<REQUEST, o, t, c> signed by client c; ``timestamp`` orders one client's requests."""

    client: int
    timestamp: int
    operation: bytes
    signature: bytes


@record(2)
@checked(nonneg=("view", "seq", "timestamp_ms", "replica"), sizes=(("digest", DIGEST_SIZE),))
@dataclass(frozen=True, slots=True)
class PrePrepare:
    """<PRE-PREPARE, v, n, d> from the primary of view v, with the batch itself."""

    view: int
    seq: int
    digest: bytes
    timestamp_ms: int
    """Agreed time for the batch (the primary's clock); becomes the block timestamp."""
    requests: tuple[Request, ...]
    replica: int
    signature: bytes


@record(3)
@checked(nonneg=("view", "seq", "timestamp_ms", "replica"), sizes=(("digest", DIGEST_SIZE),))
@dataclass(frozen=True, slots=True)
class Prepare:
    """<PREPARE, v, n, d, t, i> from backup i.

    ``timestamp_ms`` repeats the pre-prepare's agreed time: the digest is the
    block's ``data_hash`` and does not cover it, so the votes must, or a faulty
    primary could get one batch committed with different block timestamps.
    """

    view: int
    seq: int
    digest: bytes
    timestamp_ms: int
    replica: int
    signature: bytes


@record(4)
@checked(nonneg=("view", "seq", "timestamp_ms", "replica"), sizes=(("digest", DIGEST_SIZE),))
@dataclass(frozen=True, slots=True)
class Commit:
    """<COMMIT, v, n, d, t, i>; a quorum of these for one (v, n, d, t) is a commit certificate.

    The certificate thereby pins the block timestamp ``t`` as well as the batch.
    """

    view: int
    seq: int
    digest: bytes
    timestamp_ms: int
    replica: int
    signature: bytes


@record(5)
@checked(nonneg=("view", "timestamp", "client", "replica"))
@dataclass(frozen=True, slots=True)
class Reply:
    """<REPLY, v, t, c, i, r>; the client accepts r on f+1 matching replies."""

    view: int
    timestamp: int
    client: int
    replica: int
    result: bytes
    signature: bytes


@record(6)
@checked(nonneg=("seq", "replica"), sizes=(("digest", DIGEST_SIZE),))
@dataclass(frozen=True, slots=True)
class Checkpoint:
    """<CHECKPOINT, n, d, i>: replica i's state digest after executing n.

    The digest is the chained header hash of block n (see ``ledger.hashing``).
    """

    seq: int
    digest: bytes
    replica: int
    signature: bytes


@record(7)
@checked()
@dataclass(frozen=True, slots=True)
class PreparedProof:
    """One element of a VIEW-CHANGE's P set: a pre-prepare and Q - 1 matching prepares.

    Q is the quorum (``PBFTConfig.quorum``): 2f + 1 for n = 3f + 1, so 2f prepares.
    """

    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]


@record(8)
@checked(nonneg=("new_view", "stable_seq", "replica"))
@dataclass(frozen=True, slots=True)
class ViewChange:
    """<VIEW-CHANGE, v+1, n, C, P, i> (OSDI'99 section 4.4)."""

    new_view: int
    stable_seq: int
    checkpoint_proof: tuple[Checkpoint, ...]
    """C: a quorum of CHECKPOINTs proving ``stable_seq`` (empty when it is 0)."""
    prepared: tuple[PreparedProof, ...]
    """P: a prepared certificate per sequence number above ``stable_seq``."""
    replica: int
    signature: bytes


@record(9)
@checked(nonneg=("view", "replica"))
@dataclass(frozen=True, slots=True)
class NewView:
    """<NEW-VIEW, v+1, V, O> from the new primary."""

    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    replica: int
    signature: bytes


@record(10)
@checked(nonneg=("seq", "view", "timestamp_ms"))
@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """A batch as executed: what becomes one block, with its commit certificate."""

    seq: int
    view: int
    timestamp_ms: int
    requests: tuple[Request, ...]
    certificate: tuple[Commit, ...]

    @property
    def digest(self) -> bytes:
        return batch_digest(self.requests)


@record(11)
@checked(nonneg=("from_seq", "replica"))
@dataclass(frozen=True, slots=True)
class FetchState:
    """State transfer (TOCS'02 section 6.2, simplified): ask for batches after ``from_seq``."""

    from_seq: int
    replica: int
    signature: bytes


@record(12)
@checked(nonneg=("replica",))
@dataclass(frozen=True, slots=True)
class StateChunk:
    """Batches ``from_seq+1 ..`` up to a stable checkpoint, with its quorum-signature proof.

    The receiver accepts it only if the chained digest of its own head and these
    batches equals the proven checkpoint digest: no single peer is trusted.
    """

    checkpoint_proof: tuple[Checkpoint, ...]
    batches: tuple[CommittedBatch, ...]
    replica: int
    signature: bytes


@record(13)
@checked(nonneg=("view", "stable_seq", "last_executed", "replica"))
@dataclass(frozen=True, slots=True)
class Status:
    """What a stalled replica has for the slots it has not executed (TOCS'02 5.2, retransmission).

    The network may lose any message, and PBFT never assumes delivery: a
    replica whose work has stopped moving broadcasts its STATUS, and each
    receiver answers with exactly the messages it can tell the sender lacks
    (the primary's PRE-PREPARE, its own PREPARE, COMMIT and CHECKPOINTs).
    ``pre_prepared``, ``prepared`` and ``committed`` list sequence numbers
    above ``last_executed`` in the sender's ``view``, ascending. A receiver that
    sees the sender holds something it lacks itself answers once with its own
    STATUS (``ask`` false), which is answered with messages only, never with
    another STATUS, so two replicas cannot ping-pong.
    """

    view: int
    in_view_change: bool
    stable_seq: int
    last_executed: int
    pre_prepared: tuple[int, ...]
    prepared: tuple[int, ...]
    committed: tuple[int, ...]
    ask: bool
    replica: int
    signature: bytes


Message: TypeAlias = (
    Request
    | PrePrepare
    | Prepare
    | Commit
    | Reply
    | Checkpoint
    | ViewChange
    | NewView
    | FetchState
    | StateChunk
    | Status
)
"""Everything a replica or client may receive off the wire."""

SIGNED_TYPES: tuple[type, ...] = (
    Request,
    PrePrepare,
    Prepare,
    Commit,
    Reply,
    Checkpoint,
    ViewChange,
    NewView,
    FetchState,
    StateChunk,
    Status,
)


def signing_bytes(message: Any) -> bytes:
    """The bytes a signature covers: the canonical encoding with ``signature`` empty."""
    known = cached_encoding(message)
    if known is not None:
        # Known bytes are canonical (decoded or freshly signed), so blanking the
        # trailing signature is a slice, not a re-encoding.
        return wire_signing_bytes(known, message.signature)
    return encode_replacing_last(message, b"")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def with_signature(message: M, signature: bytes) -> M:
    """``dataclasses.replace(message, signature=signature)``, without re-running the checks.

    The other fields come from a message that already passed construction, and
    a signature is any bytes, so the copy is valid by construction. If the
    message's own bytes are known with an empty signature (the usual way to
    sign), the signed message's bytes are remembered too, so sending it does
    not encode it a second time.
    """
    cls = type(message)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        if names[-1] != "signature":
            raise TypeError(f"{cls.__name__} is not a signed message")
    signed = object.__new__(cls)
    setter = object.__setattr__
    for name in names:
        setter(signed, name, getattr(message, name))
    setter(signed, "signature", signature)
    return signed


def signed_wire(blank: bytes, signature: bytes) -> bytes:
    """The canonical bytes of a message from its bytes with an empty signature.

    The inverse of :func:`wire_signing_bytes`: the trailing empty ``bin``
    (``c4 00``) becomes ``signature`` with its ``bin`` header.
    """
    if not blank.endswith(b"\xc4\x00"):
        raise ValueError("bytes do not end with an empty signature")
    return blank[:-2] + bin_header(len(signature)) + signature


def signed(cls: Callable[..., M], fields: tuple[Any, ...], sign: Callable[[bytes], bytes]) -> M:
    """``cls(*fields, signature)`` signed by ``sign``: how replicas build what they send.

    The same message and bytes as ``sign_message(cls(*fields, b""), sign)``,
    without building the unsigned message first when the codec can sign the
    fields directly (flat messages: votes, checkpoints, replies).
    """
    fast = sign_fields(cls, fields, sign)
    if fast is not None:
        return fast
    return sign_message(cls(*fields, b""), sign)


_UNSIGNED_FIELDS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _unsigned_fields(message: Any) -> tuple[Any, ...]:
    """Every field of a signed message but its signature, in declared order."""
    cls = type(message)
    getter = _UNSIGNED_FIELDS.get(cls)
    if getter is None:
        names = [f.name for f in dataclasses.fields(cls)][:-1]
        getter = _UNSIGNED_FIELDS[cls] = lambda m: tuple(getattr(m, name) for name in names)
    return getter(message)


def sign_message(message: M, sign: Callable[[bytes], bytes]) -> M:
    """``message`` signed by ``sign`` over ``encode(message)`` (normally its signing bytes).

    When the signature field is empty, as it is when a message is built to be
    signed, the signed copy's canonical bytes follow from the signed ones and
    are remembered with the codec both ways: a broadcast is encoded exactly
    once, and its receivers need not decode it.
    """
    blank = getattr(message, "signature", None)
    if type(blank) is bytes and not blank:
        fast = sign_fields(type(message), _unsigned_fields(message), sign)
        if fast is not None:
            return fast
        # The same bytes as ``encode(message)``, without offering the unsigned
        # message to the decoder: nobody will receive it.
        payload = encode_replacing_last(message, b"")
    else:
        payload = encode(message)
    signature = sign(payload)
    signed = with_signature(message, signature)
    if type(signature) is bytes and type(blank) is bytes and not blank:
        remember_decoding(signed, signed_wire(payload, signature))
    return signed


def batch_digest(requests: tuple[Request, ...]) -> bytes:
    """The PBFT digest of a batch, equal to the block's ``data_hash``.

    Memoised by the tuple's identity: every replica checks the digest of each
    PRE-PREPARE it accepts and the application and its host recompute it per
    block, all from the one tuple the decoder shared among the receivers.
    Looking a tuple up by identity costs nothing, where looking it up by value
    would hash every request in it.
    """
    key = id(requests)
    if _digested.get(key) is requests:
        return _digests[key]
    digest = data_hash(encode(r) for r in requests)
    if type(requests) is tuple:  # immutable, and of immutable requests: the digest cannot change
        if len(_digests) >= _DIGEST_MEMO_SIZE:
            _digests.clear()
            _digested.clear()
        _digested[key] = requests
        _digests[key] = digest
    return digest


_DIGEST_MEMO_SIZE = 256
"""Batches remembered (as many as the lru_cache this replaced held): they are held alive."""
_digested: dict[int, tuple[Request, ...]] = {}
"""The tuples whose digests ``_digests`` holds, by id: held, so no id is reused meanwhile."""
_digests: dict[int, bytes] = {}


def signer_of(message: Any) -> int:
    """Who must have signed ``message``: its ``replica`` field, or ``client`` for requests."""
    # ``type() is``: records are never subclassed, and this runs for every message received.
    return message.client if type(message) is Request else message.replica


def wire_signing_bytes(data: bytes, signature: bytes) -> bytes:
    """:func:`signing_bytes` computed from the received canonical bytes, without re-encoding.

    The signature is the last element of the top-level array, so blanking it
    only replaces the trailing msgpack ``bin`` object with an empty one (the
    array header does not change). This keeps verification to one hash per
    message on the hot path; it is valid only for bytes that :func:`decode`
    accepted, since those are canonical.
    """
    global _last_blanked
    last_data, last_signature, blank = _last_blanked
    if data is last_data and signature is last_signature:
        return blank  # the next receiver of the same broadcast copy
    size = len(signature)
    header = 2 if size < 0x100 else 3 if size < 0x10000 else 5
    blank = data[: len(data) - size - header] + b"\xc4\x00"
    if type(data) is bytes and type(signature) is bytes:  # immutable: identity is content
        _last_blanked = (data, signature, blank)
    return blank


_last_blanked: tuple[bytes | None, bytes | None, bytes] = (None, None, b"")
"""The last (bytes, signature, signing bytes) of :func:`wire_signing_bytes`, by identity.

The receivers of a broadcast are handed one bytes object and decode it to one
message, so they ask for the same signing bytes one after another; the tuple
holds its objects, so their identities cannot be reused while it stands."""
