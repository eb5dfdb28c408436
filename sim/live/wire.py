"""Sim-level wire records of the live network (codec tags 150-159).

On the broker every payload is an :class:`Envelope`: the claimed sender plus
the canonical bytes of one record (a PBFT message, or an endorsement
request/response). The claimed sender is what the host hands the replica as
``Deliver.sender``; it is checked against the topic, and the replica checks
the signature, so a forged envelope gains nothing.

Or, when one process has several messages for the same topic group at once
(a node's replies to many clients of one user, a load generator's proposals
and requests to one node, a replica's votes to all), a :class:`Bundle` of
:class:`Routed` messages, each naming its own sender and addressee: one broker
message instead of many (``sim.live.transport`` says which may share one).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from ledger.codec import CodecError, record

ENVELOPE_TAG = 150
ENDORSE_REQUEST_TAG = 151
ENDORSE_RESPONSE_TAG = 152
FILE_REQUEST_TAG = 153
FILE_RESPONSE_TAG = 154
BUSY_TAG = 155
BUNDLE_TAG = 156
ROUTED_TAG = 157

BUSY = "busy, retry later"
"""The error text of an endorsement or file request a node refused for load."""


@record(ENVELOPE_TAG)
@dataclass(frozen=True, slots=True)
class Envelope:
    sender: int
    payload: bytes


@record(ENDORSE_REQUEST_TAG)
@dataclass(frozen=True, slots=True)
class EndorseRequest:
    """A client asks one peer to simulate and endorse (or just evaluate) a signed proposal."""

    request_id: int
    client: int
    proposal: bytes
    """The SDK's signed proposal bytes, passed to the peer's endorser as they are."""


@record(ENDORSE_RESPONSE_TAG)
@dataclass(frozen=True, slots=True)
class EndorseResponse:
    """A peer's answer: the endorser's response bytes, or an error message."""

    request_id: int
    replica: int
    response: bytes
    error: str


@record(FILE_REQUEST_TAG)
@dataclass(frozen=True, slots=True)
class FileRequest:
    """Store a file on a peer (``op == "put"``) or fetch one by SHA-256 (``"get"``)."""

    request_id: int
    client: int
    op: str
    digest: str
    data: bytes


@record(FILE_RESPONSE_TAG)
@dataclass(frozen=True, slots=True)
class FileResponse:
    """The peer's answer; the client checks the bytes against the ledger's hash itself."""

    request_id: int
    replica: int
    digest: str
    data: bytes
    error: str


@record(BUSY_TAG)
@dataclass(frozen=True, slots=True)
class Busy:
    """A node refused a client's PBFT request for load (its admission queue was full).

    Sent instead of silence, so the client can give up on that request at once
    when f+1 nodes say so, rather than retransmitting into an overloaded network.
    """

    client: int
    timestamp: int
    replica: int


@record(ROUTED_TAG)
@dataclass(frozen=True, slots=True)
class Routed:
    """One message of a bundle: who sends it, to whom (a principal or BROADCAST), what."""

    sender: int
    to: int
    payload: bytes


@record(BUNDLE_TAG)
@dataclass(frozen=True, slots=True)
class Bundle:
    """Several messages for one topic group in one broker message."""

    items: tuple[Routed, ...]


def wrap(items: list[Routed]) -> bytes:
    """One broker message holding ``items``: a lone :class:`Envelope`, or a :class:`Bundle`.

    The bytes :func:`ledger.codec.encode` gives, packed straight: the codec would
    also remember each container it encodes, for records that are encoded or
    decoded again, and a broker message never is.
    """
    if len(items) == 1:
        return msgpack.packb((ENVELOPE_TAG, items[0].sender, items[0].payload))
    return msgpack.packb((BUNDLE_TAG, [(ROUTED_TAG, i.sender, i.to, i.payload) for i in items]))


Unwrapped = tuple[int, int | None, bytes]
"""One message out of a broker message: its claimed sender, addressee (``None`` for a
lone envelope, whose topic names it) and payload."""


def unwrap(data: bytes | bytearray) -> list[Unwrapped]:
    """The messages of one broker message, a :class:`Bundle` or a lone :class:`Envelope`.

    What :func:`ledger.codec.decode` would find, without what it does for records
    that are kept or signed: the canonical re-encoding test, the decoding cache
    and a record object per item. A broker message is neither: it is opened
    once, its senders are held to the topic, and each payload is decoded and
    checked in full (and cached) by whoever takes it. :class:`CodecError` with
    ``malformed`` or ``trailing-bytes`` for anything else.
    """
    try:
        raw = msgpack.unpackb(data, use_list=False)
    except msgpack.ExtraData:
        raise CodecError("trailing-bytes", "bytes after the message") from None
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise CodecError("malformed", type(exc).__name__) from None
    if type(raw) is not tuple or not raw:
        raise CodecError("malformed", "not an envelope or bundle")
    if raw[0] == ENVELOPE_TAG and len(raw) == 3:
        _tag, sender, payload = raw
        if type(sender) is int and type(payload) is bytes:
            return [(sender, None, payload)]
    elif raw[0] == BUNDLE_TAG and len(raw) == 2 and type(raw[1]) is tuple:
        found: list[Unwrapped] = []
        for item in raw[1]:
            if type(item) is not tuple or len(item) != 4 or item[0] != ROUTED_TAG:
                break
            _tag, sender, to, payload = item
            if type(sender) is not int or type(to) is not int or type(payload) is not bytes:
                break
            found.append((sender, to, payload))
        else:
            return found
    raise CodecError("malformed", "not an envelope or bundle")
