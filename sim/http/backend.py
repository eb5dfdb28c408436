"""What the HTTP gateway needs from a network, simulated or live.

:class:`sim.http.service.NetworkService` holds everything about callers
(signed requests, the prepare -> endorse -> submit table, its bounds) and
nothing about how a network is reached; a :class:`Backend` holds that. Two
exist: :class:`sim.http.simbackend.SimBackend` runs one deterministic PBFT
session per write over a ``net init --sim`` directory, and
:class:`sim.http.livebackend.LiveBackend` talks to the nodes of a ``net up``
network over MQTT. Neither ever signs for a caller: the bytes it orders are
the envelope the caller sealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ledger.block import Block
from ledger.transaction import Endorsement, ProposalResult, SignedProposal, TxHeader
from msp.msp import MSPManager
from sim.fabric.distribution import FetchResult, FileRef
from sim.http.identities import Member


@dataclass(frozen=True, slots=True)
class Endorsed:
    """An agreeing group of endorsements satisfying the policy, and who gave them."""

    result: ProposalResult
    endorsements: list[Endorsement]
    endorsers: list[str]


@dataclass(frozen=True, slots=True)
class Ordered:
    """A submitted transaction's agreed outcome."""

    code: str
    """Its validation code (``VALID`` or why not)."""
    view: int | None
    """The PBFT view it was committed in, when the backend knows it."""
    endorsers: list[str]


class NotOrdered(Exception):
    """The transaction did not commit VALID; ``code`` says how far it got."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Chain(Protocol):
    """One reachable peer's committed blocks, for the ledger pages and proofs."""

    @property
    def peer(self) -> str: ...

    @property
    def height(self) -> int: ...

    def block(self, number: int) -> Block: ...

    def locate(self, tx_id: str) -> tuple[Block, int] | None:
        """The block holding ``tx_id`` and its index there, or ``None``."""
        ...


class Backend(Protocol):
    msps: MSPManager
    crypto_dir: Path
    """The network's cryptogen tree (``.../crypto``): callers are its users' certificates."""

    @property
    def own_identity(self) -> str | None:
        """The gateway's own client identity on live networks (never a caller), else ``None``."""
        ...

    def proposal_time(self) -> int:
        """The timestamp a new proposal carries (the network's clock)."""
        ...

    def endorse(self, signed: SignedProposal, header: TxHeader) -> Endorsed:
        """Endorsements for a proposal its creator signed (``EndorsementFailed`` if none)."""
        ...

    def order(self, envelope: bytes, member: Member, header: TxHeader) -> Ordered:
        """Order and commit an envelope its creator sealed (``NotOrdered`` unless VALID)."""
        ...

    def query(self, member: Member, function: str, args: Sequence[str]) -> bytes:
        """A read-only contract call as ``member`` (``ApiError`` if refused)."""
        ...

    def publish(self, data: bytes) -> list[str]: ...

    def fetch(self, ref: FileRef) -> FetchResult: ...

    def chain(self) -> AbstractContextManager[Chain]: ...

    def proof_of(self, tx_id: str, name: str, version: str) -> dict[str, Any]:
        """The release proof of committed ``metadata`` transaction ``tx_id``."""
        ...

    def activity(self, seconds: int) -> dict[str, Any]: ...

    def nodes(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def window_blocks(chain: Chain, since_ms: int) -> list[Block]:
    """The blocks committed at or after ``since_ms``, oldest first, and the one before them
    (which tells whether the window's first block changed view)."""
    blocks: list[Block] = []
    for number in range(chain.height - 1, -1, -1):
        blocks.append(chain.block(number))
        if blocks[-1].metadata.timestamp_ms < since_ms:
            break
    blocks.reverse()
    return blocks


def status_of(message: str) -> int:
    """A contract refusal as an HTTP status: 404 when it names something missing, else 409."""
    missing = ("no patch set", "has no released", "no enrolled", "no version")
    return 404 if any(m in message for m in missing) else 409
