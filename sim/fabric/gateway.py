"""What a patch client needs from a network, whatever carries the bytes.

A :class:`Gateway` is the transport under :class:`sim.fabric.patchclient.PatchClient`:
submit a transaction and wait until it commits, evaluate a query, put a file
on the peers, fetch one from them. ``sim.fabric.simnet.SimGateway`` implements
it on a simulated network kept in a directory and ``sim.live.gateway.PatchGateway``
on live nodes over MQTT, so the client and the commands above it never learn
which one they talk to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sim.fabric.distribution import FetchResult, FileRef

CHAINCODE = "patchset"
"""The contract every gateway call goes to."""


class Refused(Exception):
    """The network said no: a contract refusal, failed endorsement or invalid transaction."""


class Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...


class Gateway(Protocol):
    """One network, seen from a client application."""

    def signer(self, name: str) -> Signer:
        """The named identity's signing key (the deployer signs manifests with it)."""
        ...

    def submit(self, user: str, function: str, args: Sequence[str]) -> bytes:
        """Endorse, order and commit; the contract's reply once the transaction is VALID."""
        ...

    def evaluate(self, user: str, function: str, args: Sequence[str]) -> bytes:
        """Run a query on the peers without ordering it."""
        ...

    def publish_file(self, data: bytes) -> list[str]:
        """Place a file on the peers; the names of those that stored it."""
        ...

    def fetch_file(self, ref: FileRef) -> FetchResult:
        """Get a file from any peer that serves it intact (``DownloadFailed`` otherwise)."""
        ...
