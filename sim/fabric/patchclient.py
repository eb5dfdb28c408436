"""The paper's patch-management operations, in the order a person does them.

Upload signs the manifest, places the file on the peers and then submits;
download checks the release (deployer signature, approvals) before fetching
and verifies the bytes against the ledger. None of it depends on the
transport: :class:`PatchClient` talks to a :class:`sim.fabric.gateway.Gateway`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from chaincode.patchset import PatchManifest, manifest_to_json, sign_manifest
from msp.msp import MSPManager
from sim.fabric.distribution import (
    DownloadFailed,
    FetchResult,
    FileRef,
    ReleaseRejected,
    ReleaseRequest,
    check_release,
)
from sim.fabric.gateway import Gateway, Refused
from sim.fabric.proof import DEFAULT_POLICY, ProofRejected, check_fresh, verify_proof


@dataclass(frozen=True, slots=True)
class Downloaded:
    release: dict[str, Any]
    fetch: FetchResult


def build_manifest(
    data: bytes,
    *,
    name: str,
    version: str,
    file_name: str,
    install: str = "mandatory",
    log: str = "write",
    reboot: str = "unrebooting",
    groups: Sequence[str] = (),
    os_names: Sequence[str] = (),
    deadline_ms: int | None = None,
    description: str = "",
) -> PatchManifest:
    """A manifest for ``data``: the hash and size come from the bytes, never from the user."""
    return PatchManifest(
        name,
        version,
        file_name,
        hashlib.sha256(data).hexdigest(),
        len(data),
        install,
        log,
        reboot,
        tuple(groups),
        tuple(os_names),
        deadline_ms,
        description,
    )


def _storable(function: str, args: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse text no proposal can carry (a lone UTF-16 surrogate) before encoding it."""
    for position, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused(
                f"{function}: argument {position} ({arg!r}) is not valid Unicode text "
                "(lone surrogate)"
            ) from None
    return args


@runtime_checkable
class Prover(Protocol):
    """A gateway that can give release proofs (``sim.fabric.proof``) and the device's time."""

    def now_ms(self) -> int: ...

    def prove(self, user: str, name: str, version: str = "") -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old an answer about a release the device accepts, and what it knows of the channel.

    ``replicas`` (n) and ``policy`` come from the device's configuration,
    never from the answer: they fix the commit quorum and the endorsers.
    """

    max_age_ms: int
    replicas: int
    policy: str = DEFAULT_POLICY


class PatchClient:
    """The paper's three experiments as calls: upload/approve, download/report, audit."""

    def __init__(self, gateway: Gateway, trust: MSPManager) -> None:
        self.gateway = gateway
        self.trust = trust
        """The device's own trust anchors (CA certificates and CRLs): never the gateway's word."""

    def _submit(self, user: str, function: str, *args: str) -> dict[str, Any]:
        return json.loads(self.gateway.submit(user, function, _storable(function, args)))

    def _evaluate(self, user: str, function: str, *args: str) -> dict[str, Any]:
        return json.loads(self.gateway.evaluate(user, function, _storable(function, args)))

    def upload(self, admin: str, manifest: PatchManifest, data: bytes) -> dict[str, Any]:
        if (hashlib.sha256(data).hexdigest(), len(data)) != (manifest.sha256, manifest.size):
            raise Refused("the file does not match the manifest's sha256 and size")
        signature = sign_manifest(self.gateway.signer(admin), manifest)
        args = (json.dumps(manifest_to_json(manifest)), signature)
        # Endorse first, which writes nothing: an upload the peers refuse (not an
        # admin, revoked, rollback...) must not leave its file on every peer.
        self._evaluate(admin, "upload", *args)
        holders = self.gateway.publish_file(data)
        reply = self._submit(admin, "upload", *args)
        reply["file_on"] = holders
        return reply

    def approve(self, admin: str, name: str, version: str) -> dict[str, Any]:
        return self._submit(admin, "approve", name, version)

    def withdraw(self, admin: str, name: str, version: str, reason: str) -> dict[str, Any]:
        return self._submit(admin, "withdraw", name, version, reason)

    def register(self, client: str, os_name: str, groups: Sequence[str]) -> dict[str, Any]:
        return self._submit(client, "register", json.dumps({"os": os_name, "groups": list(groups)}))

    def download(
        self,
        client: str,
        name: str,
        version: str = "",
        *,
        installed: str | None = None,
        deliver: Callable[[bytes], None] | None = None,
        fresh: Freshness | None = None,
    ) -> Downloaded:
        """Check the release, fetch and verify the file, deliver it; only then record it.

        ``installed`` is the device's own floor; ``deliver`` puts the verified
        bytes where they are wanted (a file) and may fail: the download record
        means the file arrived, so nothing is recorded if any step before fails.
        With ``fresh``, the release comes from a proof the client verifies and
        dates (TUF's freeze attack) instead of one peer's query answer.
        """
        release, ref = self._checked_release(
            client, ReleaseRequest(name, version, installed), fresh
        )
        try:
            fetched = self.gateway.fetch_file(ref)
        except DownloadFailed as exc:
            raise Refused(str(exc)) from None
        verified = hashlib.sha256(fetched.data).hexdigest()
        if deliver is not None:
            deliver(fetched.data)
        released = release["manifest"]["version"]
        record = self._submit(client, "download", name, released, verified)
        return Downloaded({**release, "download": record["download"]}, fetched)

    def _checked_release(
        self, client: str, request: ReleaseRequest, fresh: Freshness | None
    ) -> tuple[dict[str, Any], FileRef]:
        version = (request.version,) if request.version else ()
        try:
            if fresh is None:
                release = self._evaluate(client, "metadata", request.name, *version)
            else:
                proven = verify_proof(
                    self.proof(client, request.name, request.version),
                    self.trust,
                    replicas=fresh.replicas,
                    policy=fresh.policy,
                    installed=request.installed,
                )
                check_fresh(proven, self._prover().now_ms(), fresh.max_age_ms)
                release = proven.release
            return release, check_release(release, request, self.trust)
        except (ReleaseRejected, ProofRejected) as exc:
            raise Refused(str(exc)) from None

    def _prover(self) -> Prover:
        if not isinstance(self.gateway, Prover):
            raise Refused("this network gives no release proofs (simulated networks do)")
        return self.gateway

    def proof(self, client: str, name: str, version: str = "") -> dict[str, Any]:
        """A proof of the release (``sim.fabric.proof``) that a device can check offline."""
        return self._prover().prove(client, name, version)

    def report(
        self,
        client: str,
        name: str,
        version: str,
        outcome: str,
        rebooted: bool,
        detail: str = "",
    ) -> dict[str, Any]:
        flag = "true" if rebooted else "false"
        return self._submit(client, "report", name, version, outcome, flag, detail)

    def history(self, admin: str, name: str, version: str = "") -> dict[str, Any]:
        return self._evaluate(admin, "history", name, *([version] if version else []))

    def compliance(self, admin: str) -> dict[str, Any]:
        return self._evaluate(admin, "compliance")

    def catalog(self, user: str) -> dict[str, Any]:
        return self._evaluate(user, "catalog")
