"""Sim-level wire records of the live network (codec tags 150-159).

On the broker every payload is an :class:`Envelope`: the claimed sender plus
the canonical bytes of one record (a PBFT message, or an endorsement
request/response). The claimed sender is what the host hands the replica as
``Deliver.sender``; it is checked against the topic, and the replica checks
the signature, so a forged envelope gains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.codec import record


@record(150)
@dataclass(frozen=True, slots=True)
class Envelope:
    sender: int
    payload: bytes


@record(151)
@dataclass(frozen=True, slots=True)
class EndorseRequest:
    """A client asks one peer to simulate and endorse (or just evaluate) a signed proposal."""

    request_id: int
    client: int
    proposal: bytes
    """The SDK's signed proposal bytes, passed to the peer's endorser as they are."""


@record(152)
@dataclass(frozen=True, slots=True)
class EndorseResponse:
    """A peer's answer: the endorser's response bytes, or an error message."""

    request_id: int
    replica: int
    response: bytes
    error: str
