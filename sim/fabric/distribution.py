"""Patch files from any peer: the paper's answer to the central server's single point of failure.

The ledger says *what* to install (SHA-256 and size, signed by the deployer
and agreed by the ordering service); any peer may say *here it is*. A client
therefore trusts no server: it asks the peers one after another, reads no
more than the declared size, checks the hash, and moves on when a peer is
down, lacks the file, or serves anything else (a Byzantine peer serving
altered bytes costs time, never integrity). Before fetching, it checks the
release metadata itself (the manifest digest, the deployer's signature and
certificate against its own CA certificates and CRLs, and that the answer is
the release it asked for), as a TUF/Uptane client checks signed metadata
before it trusts a target.

Time is virtual: every attempt costs a round trip, a refused connection costs
a timeout, and bytes cost ``size / bandwidth``; the caller adds the total to
its clock. The order in which peers are tried comes from the caller (a list,
or a ``random.Random`` drawn from the scenario seed), so runs replay.
"""

from __future__ import annotations

import enum
import hashlib
import io
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from chaincode.patchset import PatchManifest, manifest_digest, manifest_from_json
from chaincode.patchset.manifest import compare_versions
from msp.errors import MSPError
from msp.identity import Identity
from msp.msp import MSPManager, at_virtual_ms
from sim.fabric.blobs import BlobStore

__all__ = [
    "Attempt",
    "Distribution",
    "DownloadFailed",
    "FetchResult",
    "FileRef",
    "PeerServer",
    "ReleaseRejected",
    "ReleaseRequest",
    "ServeMode",
    "TransferModel",
    "check_release",
]

CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FileRef:
    """What the ledger says a file is."""

    sha256: str
    size: int


class ReleaseRejected(Exception):
    """Release metadata from the ledger that the client refuses to act on."""


@dataclass(frozen=True, slots=True)
class ReleaseRequest:
    """What the device asked for, and what it already has: an answer must fit both."""

    name: str
    version: str = ""
    """The version asked for; empty for "the current release"."""
    installed: str | None = None
    """The device's own record of the version it has installed (its floor)."""


def check_release(release: dict[str, Any], request: ReleaseRequest, msps: MSPManager) -> FileRef:
    """Check a ``metadata`` reply before fetching; the file it names, or ``ReleaseRejected``.

    The contract already checked all of this, but the reply comes from a
    peer, so the client checks again with its own trust anchors (``msps``:
    the channel's CA certificates and CRLs): the deployer's certificate must
    chain to a CA of its organisation, not be revoked and carry the admin
    role; the signature must verify under it; and the answer must be about
    what was asked (name, version, or the current release), released, not
    expired at the time it claims, and never older than the device's floor.
    """
    try:
        manifest = manifest_from_json(release["manifest"])
        digest = manifest_digest(manifest)
        if digest.hex() != release["digest"]:
            raise ReleaseRejected("the manifest does not match its recorded digest")
        deployer = release["deployer"]
        identity = Identity.from_pem(deployer["mspid"], release["deployer_cert"])
        if identity.name != deployer["name"]:
            raise ReleaseRejected("the deployer certificate does not name the deployer")
        as_of = int(release["as_of_ms"])
        trusted = msps.validate(identity, at_virtual_ms(as_of), role="admin")
        if not trusted.ok:
            raise ReleaseRejected(f"the deployer certificate is not trusted: {trusted.reason}")
        verdict = identity.check(digest, bytes.fromhex(release["signature"]))
        if not verdict.ok:
            raise ReleaseRejected(f"the deployer signature does not verify: {verdict.reason}")
        fetch = release.get("fetch", {})
        if fetch and (fetch.get("blob"), fetch.get("size")) != (
            f"sha256:{manifest.sha256}",
            manifest.size,
        ):
            raise ReleaseRejected("the fetch location disagrees with the signed manifest")
        _check_answers_request(release, manifest, request, as_of)
    except (KeyError, TypeError, ValueError, MSPError) as exc:
        raise ReleaseRejected(f"malformed release metadata: {exc!r}") from None
    return FileRef(manifest.sha256, manifest.size)


def _check_answers_request(
    release: dict[str, Any], manifest: PatchManifest, request: ReleaseRequest, as_of: int
) -> None:
    """The answer is the release asked for, still good, and not a step back for this device."""
    what = f"{manifest.name} {manifest.version}"
    if manifest.name != request.name:
        raise ReleaseRejected(f"asked for {request.name}, the answer is about {manifest.name}")
    if request.version and compare_versions(manifest.version, request.version) != 0:
        raise ReleaseRejected(f"asked for {request.name} {request.version}, the answer is {what}")
    if release.get("status", "released") != "released" or release["released_ms"] is None:
        raise ReleaseRejected(f"{what} is not a release (status {release.get('status')})")
    if not request.version and release["head"]["current"] != manifest.version:
        raise ReleaseRejected(f"{what} is not the current release of {manifest.name}")
    if int(release["expires_ms"]) <= as_of:
        raise ReleaseRejected(f"{what} expired at {release['expires_ms']} (answer of {as_of})")
    for floor in (request.installed, release.get("installed")):
        if floor is not None and compare_versions(manifest.version, floor) < 0:
            raise ReleaseRejected(
                f"{what} is older than the installed {floor}: never go back (no downgrade)"
            )


@dataclass(frozen=True, slots=True)
class TransferModel:
    """Virtual cost of talking to a peer: ``latency_ms`` per request, bytes at ``bandwidth``."""

    latency_ms: int = 4
    bytes_per_ms: int = 12_500  # 100 Mbit/s
    timeout_ms: int = 500  # what a down peer costs before the client gives up on it

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.bytes_per_ms < 1 or self.timeout_ms < 0:
            raise ValueError("latency_ms, timeout_ms >= 0 and bytes_per_ms >= 1 required")

    def transfer_ms(self, nbytes: int) -> int:
        return self.latency_ms + -(-nbytes // self.bytes_per_ms)


class ServeMode(enum.Enum):
    """How a peer answers file requests: honestly, or one of the ways a Byzantine peer lies."""

    HONEST = "honest"
    CORRUPT = "corrupt"  # flips bits in what it serves, keeps the size
    TRUNCATE = "truncate"  # announces the right size, sends less
    OVERSIZE = "oversize"  # announces (and would send) more than the ledger says
    SUBSTITUTE = "substitute"  # serves some other file of the right size


class PeerDown(Exception):
    """The peer did not answer (crashed, partitioned)."""


@dataclass(slots=True)
class _Offer:
    announced_size: int
    stream: BinaryIO


@dataclass(slots=True)
class PeerServer:
    """One peer's file service: its store, whether it is up, and how it serves."""

    name: str
    store: BlobStore
    up: bool = True
    mode: ServeMode = ServeMode.HONEST

    def serve(self, ref: FileRef) -> _Offer | None:
        if not self.up:
            raise PeerDown(self.name)
        stream = self.store.open(ref.sha256)
        if stream is None:
            return None
        with stream:
            data = stream.read()
        if self.mode is ServeMode.CORRUPT and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        elif self.mode is ServeMode.TRUNCATE:
            data = data[: len(data) // 2]
            return _Offer(ref.size, io.BytesIO(data))
        elif self.mode is ServeMode.OVERSIZE:
            data += b"\x00" * 4096
        elif self.mode is ServeMode.SUBSTITUTE:
            data = (hashlib.sha256(data).digest() * (len(data) // 32 + 1))[: len(data)]
        return _Offer(len(data), io.BytesIO(data))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One peer tried: ``served``, ``rejected`` (it lied) or ``unavailable`` (down / lacks it)."""

    peer: str
    outcome: str
    reason: str
    elapsed_ms: int
    bytes_read: int


@dataclass(frozen=True, slots=True)
class FetchResult:
    data: bytes
    served_by: str
    attempts: tuple[Attempt, ...]
    elapsed_ms: int

    @property
    def rejected(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome == "rejected"]

    @property
    def unavailable(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome == "unavailable"]


class DownloadFailed(Exception):
    """No peer served the file intact; ``attempts`` says what each one did."""

    def __init__(self, ref: FileRef, attempts: Sequence[Attempt]) -> None:
        reasons = "; ".join(f"{a.peer}: {a.reason}" for a in attempts) or "no peers"
        super().__init__(f"no peer served sha256:{ref.sha256} intact ({reasons})")
        self.attempts = tuple(attempts)


@dataclass(slots=True)
class Distribution:
    """The peers' file services and the transfer model between a client and them."""

    peers: list[PeerServer]
    model: TransferModel = field(default_factory=TransferModel)

    def peer(self, name: str) -> PeerServer:
        for p in self.peers:
            if p.name == name:
                return p
        raise KeyError(f"no peer named {name!r}")

    def publish(self, data: bytes, to: Iterable[str] | None = None) -> tuple[FileRef, list[str]]:
        """Place a file on the named peers (default all) that are up; returns who has it."""
        wanted = set(to) if to is not None else {p.name for p in self.peers}
        holders: list[str] = []
        digest = ""
        for p in self.peers:
            if p.name in wanted and p.up:
                digest = p.store.put(data)
                holders.append(p.name)
        ref = FileRef(digest or hashlib.sha256(data).hexdigest(), len(data))
        return ref, holders

    def fetch(
        self,
        ref: FileRef,
        *,
        order: Sequence[str] | None = None,
        rng: random.Random | None = None,
    ) -> FetchResult:
        """Get ``ref`` from the first peer that serves it intact; raise ``DownloadFailed``."""
        names = list(order) if order is not None else [p.name for p in self.peers]
        if rng is not None:
            rng.shuffle(names)
        attempts: list[Attempt] = []
        total = 0
        for name in names:
            data, attempt = self._try(self.peer(name), ref)
            attempts.append(attempt)
            total += attempt.elapsed_ms
            if data is not None:
                return FetchResult(data, name, tuple(attempts), total)
        raise DownloadFailed(ref, attempts)

    def _try(self, peer: PeerServer, ref: FileRef) -> tuple[bytes | None, Attempt]:
        model = self.model
        try:
            offer = peer.serve(ref)
        except PeerDown:
            return None, Attempt(peer.name, "unavailable", "no answer (down)", model.timeout_ms, 0)
        if offer is None:
            return None, Attempt(
                peer.name, "unavailable", "does not hold the file", model.latency_ms, 0
            )
        if offer.announced_size != ref.size:
            reason = f"announced {offer.announced_size} bytes, the ledger says {ref.size}"
            return None, Attempt(peer.name, "rejected", reason, model.latency_ms, 0)
        hasher = hashlib.sha256()
        parts: list[bytes] = []
        got = 0
        while got < ref.size:
            chunk = offer.stream.read(min(CHUNK, ref.size - got))
            if not chunk:
                break
            hasher.update(chunk)
            parts.append(chunk)
            got += len(chunk)
        elapsed = model.transfer_ms(got)
        if got < ref.size:
            reason = f"sent {got} of {ref.size} bytes"
            return None, Attempt(peer.name, "rejected", reason, elapsed, got)
        if hasher.hexdigest() != ref.sha256:
            reason = f"SHA-256 mismatch (got {hasher.hexdigest()[:12]}…)"
            return None, Attempt(peer.name, "rejected", reason, elapsed, got)
        return b"".join(parts), Attempt(peer.name, "served", "intact", elapsed, got)

    def repair(self, ref: FileRef, rng: random.Random | None = None) -> list[str]:
        """Copy a verified file to every up peer that lacks it (after a restart, say)."""
        lacking = [p for p in self.peers if p.up and not p.store.has(ref.sha256)]
        if not lacking:
            return []
        holders = [p.name for p in self.peers if p.store.has(ref.sha256)]
        data = self.fetch(ref, order=holders, rng=rng).data
        for p in lacking:
            p.store.put(data)
        return [p.name for p in lacking]
