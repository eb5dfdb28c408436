"""The ``patchset`` contract: patch-management rules enforced by every endorsing peer.

The rules are in ``docs/patchset.md``; this docstring says why the code is
shaped as it is.

* **Who** is always the proposal's creator (``stub.get_creator()``), never an
  argument: the paper's "admin ID" and "user ID" become certificate identities
  the MSP already checked, so they cannot be forged by passing a name.
* **Nothing privileged rests on one key**: a release, a withdrawal and so
  anything that changes which version is current collect sign-offs from k
  distinct administrators (:mod:`chaincode.patchset.rules`), as TUF's
  thresholds do, so a compromised administrator below the threshold can
  propose but never decide.
* **A version number is spent only by a release.** Proposals do not consume
  it, so one administrator's huge pending version cannot freeze a name.
* **Logs tell the truth**: ``metadata`` writes nothing; the download record
  is written by ``download`` only once the device has fetched the file and
  names the SHA-256 it verified, and reports refer to that hash.
* Every stored value records the action and the actor; values and replies are
  canonical JSON, so every peer endorses identical bytes.
"""

from __future__ import annotations

import json
from typing import Any

from chaincode.patchset.clients import DeviceTransactions, device_json
from chaincode.patchset.manifest import (
    ManifestError,
    canonical_json,
    compare_versions,
    manifest_digest,
    manifest_from_json,
    manifest_to_json,
    parse_version,
)
from chaincode.patchset.rules import (
    APPROVER,
    DEPLOYER,
    Rules,
    jump_problem,
    threshold_problem,
)
from chaincode.patchset.state import (
    DEVICE,
    DOWNLOAD,
    HEAD,
    PATCH,
    PENDING,
    RELEASED,
    REPORT,
    WITHDRAWN,
    args_of,
    caller,
    device_of,
    head_of,
    key,
    load,
    patch_record,
    put,
    signer_id,
    stamp,
    user_id,
    versions,
    who,
)
from chaincode.patchset.views import compliance_rows, event_record, summary
from chaincode.shim import Contract, ContractError, Creator, Stub, register, transaction
from msp.errors import MSPError
from msp.identity import Identity

__all__ = ["PatchSetContract", "user_id"]

MAX_REASON = 500


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


@register
class PatchSetContract(DeviceTransactions, Contract):
    """Upload, approve, release, distribute, report, withdraw and audit patch file sets.

    Settings are those of :class:`chaincode.patchset.rules.Rules`; a channel
    deploys the contract with its own (the default: 2 sign-offs, any
    administrator may deploy or approve, jumps of at most 100, 90-day expiry).
    """

    name = "patchset"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.rules = Rules.from_settings(settings)

    # ------------------------------------------------------------------ helpers

    def _save_patch(self, stub: Stub, record: dict[str, Any], event: str | None) -> bytes:
        """Store a version's record and answer with its summary, announced as ``event``."""
        manifest = record["manifest"]
        put(stub, key(stub, PATCH, manifest["name"], manifest["version"]), record)
        reply = canonical_json(summary(record))
        if event is not None:
            stub.set_event(event, reply)
        return reply

    def _release(self, stub: Stub, record: dict[str, Any], function: str) -> None:
        """Make a pending version current: the only place a version number is spent."""
        name, version = record["manifest"]["name"], record["manifest"]["version"]
        now = stub.get_tx_timestamp()
        head = head_of(stub, name)
        top = head["top"]
        if top is not None and compare_versions(version, top) <= 0:
            raise ContractError(
                f"{function}: {name} {version} is not higher than the highest released "
                f"version {top} (no rollback or replay); withdraw this proposal"
            )
        problem = jump_problem(version, top, self.rules)
        if problem is not None:
            raise ContractError(f"{function}: {problem}")
        if record["expires_ms"] <= now:
            raise ContractError(
                f"{function}: {name} {version} expired at {record['expires_ms']} before it "
                "was released; upload a new version"
            )
        record["status"] = RELEASED
        record["released_ms"] = now
        head = {"current": version, "top": version, "last": stamp(stub, "release")}
        put(stub, key(stub, HEAD, name), head)

    def _current_after_withdrawal(self, stub: Stub, record: dict[str, Any]) -> None:
        """Point the head at the newest release left once ``record`` is withdrawn."""
        name, version = record["manifest"]["name"], record["manifest"]["version"]
        head = head_of(stub, name)
        if head["current"] != version:
            return
        left = [
            r["manifest"]["version"]
            for r in versions(stub, name)
            if r["status"] == RELEASED and r["manifest"]["version"] != version
        ]
        head["current"] = max(left, key=parse_version) if left else None
        head["last"] = stamp(stub, "withdraw")
        put(stub, key(stub, HEAD, name), head)

    # ------------------------------------------------------------------ admin

    @transaction
    def upload(self, stub: Stub, *args: str) -> bytes:
        """Propose a new version (Exam 1): signed by the deployer, who must be the creator."""
        creator = caller(stub, "upload", "admin")
        self.rules.check_role("upload", creator, (DEPLOYER,))
        manifest_text, signature_hex = args_of("upload", args, "patchset signature")
        try:
            manifest = manifest_from_json(manifest_text)
        except ManifestError as exc:
            raise ContractError(f"upload: invalid patch set: {exc}") from None
        now = stub.get_tx_timestamp()
        for field in ("deadline_ms", "expires_ms"):
            when = getattr(manifest, field)
            if when is not None and when <= now:
                raise ContractError(
                    f"upload: {field} {when} is not after the transaction time {now}"
                )
        longest = now + self.rules.release_lifetime_ms
        if manifest.expires_ms is not None and manifest.expires_ms > longest:
            raise ContractError(
                f"upload: expires_ms {manifest.expires_ms} is beyond the longest lifetime "
                f"({self.rules.release_lifetime_ms} ms from now: {longest})"
            )
        name, version = manifest.name, manifest.version
        top = head_of(stub, name)["top"]
        if top is not None and compare_versions(version, top) <= 0:
            raise ContractError(
                f"upload: version {version} of {name} is not higher than the highest "
                f"released version {top} (no rollback or replay)"
            )
        problem = jump_problem(version, top, self.rules)
        if problem is not None:
            raise ContractError(f"upload: {problem}")
        earlier = load(stub.get_state(key(stub, PATCH, name, version)))
        if earlier is not None and not (
            earlier["status"] == WITHDRAWN and earlier["released_ms"] is None
        ):
            raise ContractError(
                f"upload: {name} {version} is already {earlier['status']}; withdraw the "
                "pending proposal first or propose another version"
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
        record: dict[str, Any] = {
            "manifest": manifest_to_json(manifest),
            "digest": digest.hex(),
            "signature": signature_hex.lower(),
            "deployer": who(creator),
            "deployer_cert": creator.cert_pem.decode("ascii", "replace"),
            "uploaded_ms": now,
            "expires_ms": manifest.expires_ms or longest,
            "approvals": [],
            "approvals_required": self.rules.approvals_required,
            "status": PENDING,
            "released_ms": None,
            "withdrawal": None,
            "withdrawn": None,
            "last": stamp(stub, "upload"),
        }
        event = "patch.uploaded"
        if threshold_problem([signer_id(creator)], self.rules) is None:
            self._release(stub, record, "upload")
            event = "patch.released"
        return self._save_patch(stub, record, event)

    @transaction
    def approve(self, stub: Stub, *args: str) -> bytes:
        """An approver's sign-off; the one that completes the threshold releases the version."""
        creator = caller(stub, "approve", "admin")
        self.rules.check_role("approve", creator, (APPROVER,))
        name, version = args_of("approve", args, "name version")
        record = patch_record(stub, "approve", name, version)
        if record["status"] == WITHDRAWN:
            raise ContractError(f"approve: {name} {version} was withdrawn; it cannot be approved")
        me = signer_id(creator)
        deployer = record["deployer"]
        if (deployer["mspid"], deployer["name"]) == (me["mspid"], me["name"]):
            raise ContractError(
                f"approve: the deployer ({creator.name}) cannot approve their own upload; "
                "another administrator must approve"
            )
        if me in record["approvals"]:
            reply = summary(record)
            reply["note"] = f"{creator.name} had already approved {name} {version}; counted once"
            return canonical_json(reply)
        record["approvals"].append(me)
        record["last"] = stamp(stub, "approve")
        event = None
        signers = [signer_id(deployer), *record["approvals"]]
        if record["status"] == PENDING and threshold_problem(signers, self.rules) is None:
            self._release(stub, record, "approve")
            record["last"]["action"] = "release"
            event = "patch.released"
        return self._save_patch(stub, record, event)

    @transaction
    def withdraw(self, stub: Stub, *args: str) -> bytes:
        """Sign the withdrawal of a version; k distinct administrators withdraw it.

        The deployer alone may retract their own *pending* proposal (it carries
        no other signature); that frees its version number.
        """
        creator = caller(stub, "withdraw", "admin")
        self.rules.check_role("withdraw", creator, (DEPLOYER, APPROVER))
        name, version, reason = args_of("withdraw", args, "name version reason")
        if not reason.strip() or len(reason) > MAX_REASON:
            raise ContractError(f"withdraw: a reason of 1 to {MAX_REASON} characters is required")
        record = patch_record(stub, "withdraw", name, version)
        if record["status"] == WITHDRAWN:
            raise ContractError(f"withdraw: {name} {version} is already withdrawn")
        me = signer_id(creator)
        pending = record["withdrawal"] or {"reason": reason, "signoffs": []}
        if any(signer_id(s) == me for s in pending["signoffs"]):
            reply = summary(record)
            reply["note"] = f"{creator.name} had already signed this withdrawal; counted once"
            return canonical_json(reply)
        pending["signoffs"].append({**me, "reason": reason})
        own_proposal = record["status"] == PENDING and signer_id(record["deployer"]) == me
        record["last"] = stamp(stub, "withdraw")
        if not own_proposal and threshold_problem(pending["signoffs"], self.rules) is not None:
            record["withdrawal"] = pending
            record["last"]["action"] = "propose-withdrawal"
            return self._save_patch(stub, record, "patch.withdrawal_proposed")
        was_current = record["status"] == RELEASED
        record["status"] = WITHDRAWN
        record["withdrawal"] = None
        record["withdrawn"] = {
            "reason": pending["reason"],
            "by": who(creator),
            "signoffs": pending["signoffs"],
        }
        if was_current:
            self._current_after_withdrawal(stub, record)
        return self._save_patch(stub, record, "patch.withdrawn")

    @transaction
    def reassign(self, stub: Stub, *args: str) -> bytes:
        """Change an enrolled device's groups or OS, which its owner may only widen."""
        caller(stub, "reassign", "admin")
        target, text = args_of("reassign", args, "user_id device")
        mspid, _, cn = target.partition("/")
        existing = device_of(stub, mspid, cn) if cn else None
        if existing is None:
            raise ContractError(f"reassign: no enrolled device {target!r}")
        device = device_json("reassign", text)
        record = {"user_id": target, **device, "last": stamp(stub, "reassign")}
        put(stub, key(stub, DEVICE, mspid, cn), record)
        return canonical_json(record)

    # ------------------------------------------------------------------ clients

    # ------------------------------------------------------------------ audit

    @transaction
    def history(self, stub: Stub, *args: str) -> bytes:
        """Every change, download and report of a patch (the paper's getHistory, Exam 3)."""
        caller(stub, "history", "admin")
        name, version = args_of("history", args, "name version", optional=1)
        if version:
            patch_record(stub, "history", name, version)
        prefix = [name, version] if version else [name]
        events: list[dict[str, Any]] = []
        for kind in (PATCH, DOWNLOAD, REPORT):
            for at, _raw in stub.get_state_by_partial_composite_key(kind, prefix):
                key_version = stub.split_composite_key(at)[1][1]
                for mod in stub.get_history_for_key(at):
                    value = json.loads(mod.value) if not mod.is_delete else {}
                    last = value.pop("last", {})
                    events.append(
                        {
                            "tx_id": mod.tx_id,
                            "timestamp_ms": mod.timestamp_ms,
                            "action": last.get("action", "delete"),
                            "creator": last.get("by"),
                            "version": key_version,
                            "record": event_record(kind == PATCH, value),
                        }
                    )
        if not events:
            raise ContractError(f"history: no patch set named {name}")
        events.sort(key=lambda e: (e["timestamp_ms"], e["tx_id"], e["action"]))
        return canonical_json({"name": name, "version": version or None, "events": events})

    @transaction
    def compliance(self, stub: Stub, *args: str) -> bytes:
        """Who still has to install what, as of this transaction's time."""
        caller(stub, "compliance", "admin")
        args_of("compliance", args, "")
        now = stub.get_tx_timestamp()
        records = [
            json.loads(raw) for _k, raw in stub.get_state_by_partial_composite_key(PATCH, [])
        ]
        releases = [r for r in records if r["status"] == RELEASED]
        devices = [
            json.loads(raw) for _k, raw in stub.get_state_by_partial_composite_key(DEVICE, [])
        ]

        def state(kind: str, *parts: str) -> dict[str, Any] | None:
            return load(stub.get_state(key(stub, kind, *parts)))

        rows = compliance_rows(releases, devices, state, now)
        totals: dict[str, int] = {}
        for row in rows:
            totals[row["status"]] = totals.get(row["status"], 0) + 1
        totals["overdue"] = sum(1 for row in rows if row["overdue"])
        return canonical_json({"as_of_ms": now, "rows": rows, "summary": totals})

    @transaction
    def catalog(self, stub: Stub, *args: str) -> bytes:
        """Every patch version and its status, for any member of the channel."""
        args_of("catalog", args, "")
        rows = [
            summary(json.loads(raw))
            for _key, raw in stub.get_state_by_partial_composite_key(PATCH, [])
        ]
        rows.sort(key=lambda r: (r["name"], parse_version(r["version"])))
        return canonical_json({"patches": rows})
