"""The ``patchset`` contract: patch-management rules enforced by every endorsing peer.

The rules are in ``docs/patchset.md``; this docstring says why the code is
shaped as it is.

* **Who** is always the proposal's creator (``stub.get_creator()``), never an
  argument: the paper's "admin ID" and "user ID" become certificate identities
  the MSP already checked, so they cannot be forged by passing a name.
* **One key per fact** (composite keys): a patch version, the latest version
  of a name, a device, a client's download of a version, a client's report on
  a version. Clients never write a shared key, so thousands of them can
  download and report in the same block without MVCC conflicts, and each
  key's history *is* the audit trail of that fact.
* Every stored value records the action and the actor, because Fabric's key
  history carries the transaction id and time but not the creator.
* Values and replies are canonical JSON, so every peer endorses identical
  bytes and a human can read ``ledger dump``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from chaincode.patchset.manifest import (
    ManifestError,
    PatchManifest,
    canonical_json,
    check_names,
    compare_versions,
    manifest_digest,
    manifest_from_json,
    manifest_to_json,
    parse_version,
)
from chaincode.shim import Contract, ContractError, Creator, Stub, register, transaction
from msp.errors import MSPError
from msp.identity import Identity

__all__ = ["PatchSetContract", "user_id"]

PATCH = "patch"  # (name, version) -> the patch version's record
HEAD = "head"  # (name,) -> highest version ever uploaded for the name
DEVICE = "device"  # (mspid, cn) -> the client's enrollment
DOWNLOAD = "download"  # (name, version, mspid, cn) -> the client's latest download
REPORT = "report"  # (name, version, mspid, cn) -> the client's latest install report

PENDING, RELEASED, WITHDRAWN = "pending", "released", "withdrawn"
OUTCOMES = ("installed", "failed")
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
MAX_REASON = 500
MAX_DETAIL = 2000


def user_id(mspid: str, name: str) -> str:
    """The paper's user ID: the MSP id makes a CN issued by another org's CA distinct."""
    return f"{mspid}/{name}"


def _who(creator: Creator) -> dict[str, str]:
    return {"mspid": creator.mspid, "name": creator.name, "role": creator.role}


def _caller(stub: Stub, function: str, role: str) -> Creator:
    """The creator, if its certificate's role may call ``function``: roles are the only ACL."""
    creator = stub.get_creator()
    if creator.role != role:
        raise ContractError(
            f"{function} requires {'an' if role[0] in 'aeiou' else 'a'} {role} identity; "
            f"caller {creator.name} has role {creator.role}"
        )
    return creator


def _args(function: str, args: tuple[str, ...], names: str, optional: int = 0) -> list[str]:
    """Check the argument count; optional trailing arguments default to ``""``."""
    wanted = names.split()
    required = len(wanted) - optional
    if not required <= len(args) <= len(wanted) or not all(isinstance(a, str) for a in args):
        raise ContractError(
            f"{function} takes {' '.join(wanted)} ({required}"
            f"{f'-{len(wanted)}' if optional else ''} string arguments), got {len(args)}"
        )
    return [*args, *[""] * (len(wanted) - len(args))]


def _load(raw: bytes | None) -> dict[str, Any] | None:
    return None if raw is None else json.loads(raw)


def _stamp_time(value: dict[str, Any] | None) -> int | None:
    return None if value is None else value["last"]["timestamp_ms"]


def _signature_problem(creator: Creator, data: bytes, signature: bytes) -> str | None:
    """Why the deployer's signature fails under the creator's certificate (``None``: it holds).

    The certificate is the transaction creator's, which the peer's MSP already
    validated; tying the signature to it is what makes the signer the creator.
    """
    try:
        verdict = Identity.from_pem(creator.mspid, creator.cert_pem).check(data, signature)
    except MSPError as exc:
        return f"unusable creator certificate: {exc}"
    return None if verdict.ok else verdict.reason


def _parse_bool(function: str, what: str, text: str) -> bool:
    try:
        return _BOOLS[text.lower()]
    except KeyError:
        raise ContractError(f"{function}: {what} must be true or false, got {text!r}") from None


@register
class PatchSetContract(Contract):
    """Upload, approve, release, distribute, report, withdraw and audit patch file sets.

    Setting ``approvals_required`` (default 2) is the number of distinct
    administrators who must sign off a version before it is released; the
    deployer's upload is the first sign-off and the deployer may never approve
    their own upload, so with the default a second administrator is required.
    """

    name = "patchset"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        required = settings.get("approvals_required", 2)
        if type(required) is not int or required < 1:
            raise ValueError(f"approvals_required must be an integer >= 1, got {required!r}")
        unknown = sorted(set(settings) - {"approvals_required"})
        if unknown:
            raise ValueError(f"patchset: unknown setting {unknown[0]!r}")
        self.approvals_required: int = required

    # ------------------------------------------------------------------ helpers

    def _key(self, stub: Stub, kind: str, *parts: str) -> str:
        return stub.create_composite_key(kind, parts)

    def _stamp(self, stub: Stub, action: str) -> dict[str, Any]:
        return {
            "action": action,
            "by": _who(stub.get_creator()),
            "tx_id": stub.get_tx_id(),
            "timestamp_ms": stub.get_tx_timestamp(),
        }

    def _put(self, stub: Stub, key: str, value: dict[str, Any]) -> None:
        stub.put_state(key, canonical_json(value))

    def _patch(self, stub: Stub, function: str, name: str, version: str) -> dict[str, Any]:
        try:
            parse_version(version)
        except ManifestError as exc:
            raise ContractError(f"{function}: {exc}") from None
        record = _load(stub.get_state(self._key(stub, PATCH, name, version)))
        if record is None:
            raise ContractError(f"{function}: no patch set {name} version {version}")
        return record

    def _save_patch(
        self, stub: Stub, name: str, version: str, record: dict[str, Any], event: str | None
    ) -> bytes:
        """Store a version's record and answer with its summary, announced as ``event``."""
        self._put(stub, self._key(stub, PATCH, name, version), record)
        summary = canonical_json(self._summary(record))
        if event is not None:
            stub.set_event(event, summary)
        return summary

    def _versions(self, stub: Stub, name: str) -> Iterator[dict[str, Any]]:
        for _key, raw in stub.get_state_by_partial_composite_key(PATCH, [name]):
            yield json.loads(raw)

    def _device(self, stub: Stub, creator: Creator) -> dict[str, Any] | None:
        return _load(stub.get_state(self._key(stub, DEVICE, creator.mspid, creator.name)))

    def _signoffs(self, record: dict[str, Any]) -> int:
        return 1 + len(record["approvals"])

    # ------------------------------------------------------------------ admin

    @transaction
    def upload(self, stub: Stub, *args: str) -> bytes:
        """Register a new version (Exam 1): signed by the deployer, who must be the creator."""
        creator = _caller(stub, "upload", "admin")
        manifest_text, signature_hex = _args("upload", args, "patchset signature")
        try:
            manifest = manifest_from_json(manifest_text)
        except ManifestError as exc:
            raise ContractError(f"upload: invalid patch set: {exc}") from None
        now = stub.get_tx_timestamp()
        if manifest.deadline_ms is not None and manifest.deadline_ms <= now:
            raise ContractError(
                f"upload: deadline_ms {manifest.deadline_ms} is not after the transaction "
                f"time {now}"
            )
        head_key = self._key(stub, HEAD, manifest.name)
        head = _load(stub.get_state(head_key))
        if head is not None and compare_versions(manifest.version, head["version"]) <= 0:
            raise ContractError(
                f"upload: version {manifest.version} of {manifest.name} is not higher than "
                f"the latest uploaded version {head['version']} (no rollback or replay)"
            )
        try:
            signature = bytes.fromhex(signature_hex)
        except ValueError:
            raise ContractError("upload: signature must be hex") from None
        digest = manifest_digest(manifest)
        problem = _signature_problem(creator, digest, signature)
        if problem is not None:
            raise ContractError(
                f"upload: the deployer signature does not verify with the creator's "
                f"certificate ({creator.name}): {problem}"
            )
        released = self.approvals_required <= 1
        record = {
            "manifest": manifest_to_json(manifest),
            "digest": digest.hex(),
            "signature": signature_hex.lower(),
            "deployer": _who(creator),
            "deployer_cert": creator.cert_pem.decode("ascii", "replace"),
            "uploaded_ms": now,
            "approvals": [],
            "approvals_required": self.approvals_required,
            "status": RELEASED if released else PENDING,
            "released_ms": now if released else None,
            "withdrawn": None,
            "last": self._stamp(stub, "upload"),
        }
        self._put(stub, head_key, {"version": manifest.version, "last": record["last"]})
        return self._save_patch(stub, manifest.name, manifest.version, record, "patch.uploaded")

    @transaction
    def approve(self, stub: Stub, *args: str) -> bytes:
        """Second-administrator sign-off; the release happens on the last one needed."""
        creator = _caller(stub, "approve", "admin")
        name, version = _args("approve", args, "name version")
        record = self._patch(stub, "approve", name, version)
        if record["status"] == WITHDRAWN:
            raise ContractError(f"approve: {name} {version} was withdrawn; it cannot be approved")
        me = {"mspid": creator.mspid, "name": creator.name}
        deployer = record["deployer"]
        if (deployer["mspid"], deployer["name"]) == (me["mspid"], me["name"]):
            raise ContractError(
                f"approve: the deployer ({creator.name}) cannot approve their own upload; "
                "another administrator must approve"
            )
        if me in record["approvals"]:
            summary = self._summary(record)
            summary["note"] = f"{creator.name} had already approved {name} {version}; counted once"
            return canonical_json(summary)
        record["approvals"].append(me)
        record["last"] = self._stamp(stub, "approve")
        event = None
        if record["status"] == PENDING and self._signoffs(record) >= self.approvals_required:
            record["status"] = RELEASED
            record["released_ms"] = stub.get_tx_timestamp()
            record["last"]["action"] = "release"
            event = "patch.released"
        return self._save_patch(stub, name, version, record, event)

    @transaction
    def withdraw(self, stub: Stub, *args: str) -> bytes:
        """Pull a bad version: downloads stop, history and reports stay."""
        creator = _caller(stub, "withdraw", "admin")
        name, version, reason = _args("withdraw", args, "name version reason")
        if not reason.strip() or len(reason) > MAX_REASON:
            raise ContractError(f"withdraw: a reason of 1 to {MAX_REASON} characters is required")
        record = self._patch(stub, "withdraw", name, version)
        if record["status"] == WITHDRAWN:
            raise ContractError(f"withdraw: {name} {version} is already withdrawn")
        record["status"] = WITHDRAWN
        record["withdrawn"] = {"reason": reason, "by": _who(creator)}
        record["last"] = self._stamp(stub, "withdraw")
        return self._save_patch(stub, name, version, record, "patch.withdrawn")

    # ------------------------------------------------------------------ clients

    @transaction
    def register(self, stub: Stub, *args: str) -> bytes:
        """Enroll (or re-describe) the caller's device: its groups and operating system."""
        creator = _caller(stub, "register", "client")
        (text,) = _args("register", args, "device")
        try:
            device = json.loads(text)
        except (ValueError, RecursionError):
            raise ContractError("register: device must be JSON like {...}") from None
        if not isinstance(device, dict) or set(device) - {"groups", "os"} or "os" not in device:
            raise ContractError(
                'register: device must be {"os": "<name>", "groups": ["<name>", ...]}'
            )
        groups = device.get("groups", [])
        try:  # the manifest's name rules keep targets and devices comparable
            check_names(groups, "groups")
            check_names([device["os"]], "os")
        except ManifestError as exc:
            raise ContractError(f"register: {exc}") from None
        record = {
            "user_id": user_id(creator.mspid, creator.name),
            "groups": sorted(groups),
            "os": device["os"],
            "last": self._stamp(stub, "register"),
        }
        self._put(stub, self._key(stub, DEVICE, creator.mspid, creator.name), record)
        return canonical_json(record)

    @transaction
    def download(self, stub: Stub, *args: str) -> bytes:
        """Hand a targeted client the released metadata and record the download (Exam 2)."""
        creator = _caller(stub, "download", "client")
        name, version = _args("download", args, "name version", optional=1)
        device = self._device(stub, creator)
        if device is None:
            raise ContractError(
                f"download: {creator.name} has no enrolled device; call register first"
            )
        if not version:
            released = [r for r in self._versions(stub, name) if r["status"] == RELEASED]
            if not released:
                raise ContractError(f"download: {name} has no released version")
            version = max(released, key=lambda r: parse_version(r["manifest"]["version"]))[
                "manifest"
            ]["version"]
        record = self._patch(stub, "download", name, version)
        if record["status"] == WITHDRAWN:
            w = record["withdrawn"]
            raise ContractError(
                f"download: {name} {version} was withdrawn by {w['by']['name']}: {w['reason']}"
            )
        if record["status"] != RELEASED:
            raise ContractError(
                f"download: {name} {version} is not released yet "
                f"({self._signoffs(record)} of {record['approvals_required']} sign-offs)"
            )
        manifest = manifest_from_json(record["manifest"])
        if not manifest.targets(device["groups"], device["os"]):
            raise ContractError(
                f"download: {name} {version} does not target {creator.name}'s device "
                f"(groups {device['groups']}, os {device['os']})"
            )
        entry = {
            "user_id": device["user_id"],
            "version": version,
            "last": self._stamp(stub, "download"),
        }
        self._put(
            stub, self._key(stub, DOWNLOAD, name, version, creator.mspid, creator.name), entry
        )
        return canonical_json(
            {
                **self._release_view(record),
                "fetch": {
                    "blob": f"sha256:{manifest.sha256}",
                    "size": manifest.size,
                    "from": "any peer of the channel",
                },
                "download": entry,
            }
        )

    @transaction
    def report(self, stub: Stub, *args: str) -> bytes:
        """Record an install outcome; the version's log policy decides how much is kept."""
        creator = _caller(stub, "report", "client")
        name, version, outcome, rebooted_text, detail = _args(
            "report", args, "name version outcome rebooted detail", optional=1
        )
        if outcome not in OUTCOMES:
            raise ContractError(f"report: outcome must be one of {OUTCOMES}, got {outcome!r}")
        rebooted = _parse_bool("report", "rebooted", rebooted_text)
        if len(detail) > MAX_DETAIL:
            raise ContractError(f"report: detail is limited to {MAX_DETAIL} characters")
        record = self._patch(stub, "report", name, version)
        download_key = self._key(stub, DOWNLOAD, name, version, creator.mspid, creator.name)
        if stub.get_state(download_key) is None:
            raise ContractError(
                f"report: {creator.name} has no download record of {name} {version}"
            )
        policy = record["manifest"]["policy"]
        entry: dict[str, Any] = {
            "user_id": user_id(creator.mspid, creator.name),
            "version": version,
            "outcome": outcome,
            "log": policy["log"],
            "last": self._stamp(stub, "report"),
        }
        if policy["log"] == "write":
            entry["rebooted"] = rebooted
            entry["detail"] = detail
            entry["reboot_pending"] = (
                outcome == "installed" and policy["reboot"] == "rebooting" and not rebooted
            )
        self._put(stub, self._key(stub, REPORT, name, version, creator.mspid, creator.name), entry)
        return canonical_json(entry)

    # ------------------------------------------------------------------ audit

    @transaction
    def history(self, stub: Stub, *args: str) -> bytes:
        """Every change, download and report of a patch (the paper's getHistory, Exam 3)."""
        _caller(stub, "history", "admin")
        name, version = _args("history", args, "name version", optional=1)
        if version:
            self._patch(stub, "history", name, version)
        prefix = [name, version] if version else [name]
        events: list[dict[str, Any]] = []
        for kind in (PATCH, DOWNLOAD, REPORT):
            for key, _raw in stub.get_state_by_partial_composite_key(kind, prefix):
                key_version = stub.split_composite_key(key)[1][1]
                for mod in stub.get_history_for_key(key):
                    value = json.loads(mod.value) if not mod.is_delete else {}
                    last = value.pop("last", {})
                    events.append(
                        {
                            "tx_id": mod.tx_id,
                            "timestamp_ms": mod.timestamp_ms,
                            "action": last.get("action", "delete"),
                            "creator": last.get("by"),
                            "version": key_version,
                            "record": self._event_record(kind, value),
                        }
                    )
        if not events:
            raise ContractError(f"history: no patch set named {name}")
        events.sort(key=lambda e: (e["timestamp_ms"], e["tx_id"], e["action"]))
        return canonical_json({"name": name, "version": version or None, "events": events})

    @transaction
    def compliance(self, stub: Stub, *args: str) -> bytes:
        """Who still has to install what, as of this transaction's time."""
        _caller(stub, "compliance", "admin")
        _args("compliance", args, "")
        now = stub.get_tx_timestamp()
        current = self._current_mandatory(stub)
        rows: list[dict[str, Any]] = []
        for _key, raw in stub.get_state_by_partial_composite_key(DEVICE, []):
            device = json.loads(raw)
            mspid, cn = device["user_id"].split("/", 1)
            for manifest in current:
                if not manifest.targets(device["groups"], device["os"]):
                    continue
                rows.append(self._compliance_row(stub, device, mspid, cn, manifest, now))
        summary: dict[str, int] = {}
        for row in rows:
            summary[row["status"]] = summary.get(row["status"], 0) + 1
        summary["overdue"] = sum(1 for row in rows if row["overdue"])
        return canonical_json({"as_of_ms": now, "rows": rows, "summary": summary})

    @transaction
    def catalog(self, stub: Stub, *args: str) -> bytes:
        """Every patch version and its status, for any member of the channel."""
        _args("catalog", args, "")
        rows = [
            self._summary(json.loads(raw))
            for _key, raw in stub.get_state_by_partial_composite_key(PATCH, [])
        ]
        rows.sort(key=lambda r: (r["name"], parse_version(r["version"])))
        return canonical_json({"patches": rows})

    # ------------------------------------------------------------------ views

    def _summary(self, record: dict[str, Any]) -> dict[str, Any]:
        manifest = record["manifest"]
        return {
            "name": manifest["name"],
            "version": manifest["version"],
            "status": record["status"],
            "deployer": record["deployer"]["name"],
            "approvals": [a["name"] for a in record["approvals"]],
            "signoffs": self._signoffs(record),
            "approvals_required": record["approvals_required"],
            "policy": manifest["policy"],
            "deadline_ms": manifest["deadline_ms"],
            "withdrawn": record["withdrawn"],
        }

    def _release_view(self, record: dict[str, Any]) -> dict[str, Any]:
        keys = ("manifest", "digest", "signature", "deployer", "deployer_cert", "approvals")
        return {k: record[k] for k in keys}

    def _event_record(self, kind: str, value: dict[str, Any]) -> dict[str, Any]:
        if kind != PATCH:
            return value
        view = self._summary(value)
        view["file"] = value["manifest"]["file"]
        return view

    def _current_mandatory(self, stub: Stub) -> list[PatchManifest]:
        best: dict[str, PatchManifest] = {}
        for _key, raw in stub.get_state_by_partial_composite_key(PATCH, []):
            record = json.loads(raw)
            if record["status"] != RELEASED:
                continue
            manifest = manifest_from_json(record["manifest"])
            held = best.get(manifest.name)
            if held is None or compare_versions(manifest.version, held.version) > 0:
                best[manifest.name] = manifest
        return [m for _n, m in sorted(best.items()) if m.install == "mandatory"]

    def _compliance_row(
        self,
        stub: Stub,
        device: dict[str, Any],
        mspid: str,
        cn: str,
        manifest: PatchManifest,
        now: int,
    ) -> dict[str, Any]:
        parts = (manifest.name, manifest.version, mspid, cn)
        downloaded = _load(stub.get_state(self._key(stub, DOWNLOAD, *parts)))
        reported = _load(stub.get_state(self._key(stub, REPORT, *parts)))
        status = "missing"
        if reported is not None:
            status = reported["outcome"]
        elif downloaded is not None:
            status = "downloaded"
        deadline = manifest.deadline_ms
        return {
            "user_id": device["user_id"],
            "patch": manifest.name,
            "version": manifest.version,
            "status": status,
            "downloaded_ms": _stamp_time(downloaded),
            "reported_ms": _stamp_time(reported),
            "reboot_pending": bool(reported and reported.get("reboot_pending")),
            "deadline_ms": deadline,
            "overdue": deadline is not None and now > deadline and status != "installed",
        }
