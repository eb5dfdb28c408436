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
from typing import Any

from chaincode.patchset import PatchManifest, manifest_to_json, sign_manifest
from msp.msp import MSPManager
from sim.fabric.distribution import (
    DownloadFailed,
    FetchResult,
    ReleaseRejected,
    ReleaseRequest,
    check_release,
)
from sim.fabric.gateway import Gateway, Refused


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


class PatchClient:
    """The paper's three experiments as calls: upload/approve, download/report, audit."""

    def __init__(self, gateway: Gateway, trust: MSPManager) -> None:
        self.gateway = gateway
        self.trust = trust
        """The device's own trust anchors (CA certificates and CRLs): never the gateway's word."""

    def _submit(self, user: str, function: str, *args: str) -> dict[str, Any]:
        return json.loads(self.gateway.submit(user, function, args))

    def _evaluate(self, user: str, function: str, *args: str) -> dict[str, Any]:
        return json.loads(self.gateway.evaluate(user, function, args))

    def upload(self, admin: str, manifest: PatchManifest, data: bytes) -> dict[str, Any]:
        if (hashlib.sha256(data).hexdigest(), len(data)) != (manifest.sha256, manifest.size):
            raise Refused("the file does not match the manifest's sha256 and size")
        signature = sign_manifest(self.gateway.signer(admin), manifest)
        holders = self.gateway.publish_file(data)
        reply = self._submit(admin, "upload", json.dumps(manifest_to_json(manifest)), signature)
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
    ) -> Downloaded:
        """Check the release, fetch and verify the file, deliver it; only then record it.

        ``installed`` is the device's own floor; ``deliver`` puts the verified
        bytes where they are wanted (a file) and may fail: the download record
        means the file arrived, so nothing is recorded if any step before fails.
        """
        release = self._evaluate(client, "metadata", name, *([version] if version else []))
        try:
            ref = check_release(release, ReleaseRequest(name, version, installed), self.trust)
            fetched = self.gateway.fetch_file(ref)
        except (ReleaseRejected, DownloadFailed) as exc:
            raise Refused(str(exc)) from None
        verified = hashlib.sha256(fetched.data).hexdigest()
        if deliver is not None:
            deliver(fetched.data)
        released = release["manifest"]["version"]
        record = self._submit(client, "download", name, released, verified)
        return Downloaded({**release, "download": record["download"]}, fetched)

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
