"""The transactions a device calls: enroll, learn what to fetch, record it, report.

The order is the honest one: ``metadata`` writes nothing; ``download`` is
called only after the device fetched the file and checked its SHA-256, and
records that hash; ``report`` refers to the recorded hash. A device's
highest installed version is a floor it is never sent below.
"""

from __future__ import annotations

import json
from typing import Any

from chaincode.patchset.manifest import (
    ManifestError,
    canonical_json,
    check_names,
    compare_versions,
    manifest_from_json,
)
from chaincode.patchset.rules import Rules, threshold_problem
from chaincode.patchset.state import (
    DEVICE,
    DOWNLOAD,
    INSTALLED,
    RELEASED,
    REPORT,
    WITHDRAWN,
    args_of,
    caller,
    device_of,
    floor_of,
    head_of,
    key,
    load,
    patch_record,
    put,
    signer_id,
    stamp,
    user_id,
)
from chaincode.patchset.views import release_view
from chaincode.shim import ContractError, Creator, Stub, transaction

__all__ = ["DeviceTransactions", "device_json"]

OUTCOMES = ("installed", "failed")
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
MAX_DETAIL = 2000


def _parse_bool(function: str, what: str, text: str) -> bool:
    try:
        return _BOOLS[text.lower()]
    except KeyError:
        raise ContractError(f"{function}: {what} must be true or false, got {text!r}") from None


def device_json(function: str, text: str) -> dict[str, Any]:
    """A device description, shared by the device's ``register`` and an admin's ``reassign``."""
    try:
        device = json.loads(text)
    except (ValueError, RecursionError):
        raise ContractError(f"{function}: device must be JSON like {{...}}") from None
    if not isinstance(device, dict) or set(device) - {"groups", "os"} or "os" not in device:
        raise ContractError(
            f'{function}: device must be {{"os": "<name>", "groups": ["<name>", ...]}}'
        )
    groups = device.get("groups", [])
    try:  # the manifest's name rules keep targets and devices comparable
        check_names(groups, "groups")
        check_names([device["os"]], "os")
    except ManifestError as exc:
        raise ContractError(f"{function}: {exc}") from None
    return {"groups": sorted(groups), "os": device["os"]}


class DeviceTransactions:
    """The client-role half of the patchset contract (mixed into ``PatchSetContract``)."""

    rules: Rules

    @transaction
    def register(self, stub: Stub, *args: str) -> bytes:
        """Enroll the caller's device, or add groups to it (never remove them).

        Group membership is append-only for the device itself: otherwise a
        device could step out of a patch's target groups and vanish from
        compliance. Narrowing is an administrator's ``reassign``.
        """
        creator = caller(stub, "register", "client")
        (text,) = args_of("register", args, "device")
        device = device_json("register", text)
        existing = device_of(stub, creator.mspid, creator.name)
        if existing is not None:
            dropped = sorted(set(existing["groups"]) - set(device["groups"]))
            if dropped or device["os"] != existing["os"]:
                change = f"leave {dropped}" if dropped else f"change os to {device['os']!r}"
                raise ContractError(
                    f"register: a device may only add groups; to {change} an administrator "
                    "must reassign it"
                )
        record = {
            "user_id": user_id(creator.mspid, creator.name),
            **device,
            "last": stamp(stub, "register"),
        }
        put(stub, key(stub, DEVICE, creator.mspid, creator.name), record)
        return canonical_json(record)

    def _targeted(
        self, stub: Stub, function: str, creator: Creator, record: dict[str, Any]
    ) -> dict[str, Any]:
        """Refuse a version the caller's device may not have; the device record otherwise."""
        name, version = record["manifest"]["name"], record["manifest"]["version"]
        device = device_of(stub, creator.mspid, creator.name)
        if device is None:
            raise ContractError(
                f"{function}: {creator.name} has no enrolled device; call register first"
            )
        if record["status"] == WITHDRAWN:
            w = record["withdrawn"]
            raise ContractError(
                f"{function}: {name} {version} was withdrawn by {w['by']['name']}: {w['reason']}"
            )
        if record["status"] != RELEASED:
            problem = threshold_problem(
                [signer_id(record["deployer"]), *record["approvals"]], self.rules
            )
            raise ContractError(f"{function}: {name} {version} is not released yet ({problem})")
        manifest = manifest_from_json(record["manifest"])
        if not manifest.targets(device["groups"], device["os"]):
            raise ContractError(
                f"{function}: {name} {version} does not target {creator.name}'s device "
                f"(groups {device['groups']}, os {device['os']})"
            )
        floor = floor_of(stub, name, creator)
        if floor is not None and compare_versions(version, floor) < 0:
            raise ContractError(
                f"{function}: {creator.name}'s device has {name} {floor} installed; it is "
                f"never sent back to {version} (no downgrade)"
            )
        return device

    @transaction
    def metadata(self, stub: Stub, *args: str) -> bytes:
        """What to fetch: the signed release, its expiry and the head it was judged against.

        Writes nothing. Submitted as a transaction, its read of the head makes
        it valid only if no release or withdrawal committed in between, so its
        block's time and commit certificate date the answer (freshness).
        """
        creator = caller(stub, "metadata", "client")
        name, version = args_of("metadata", args, "name version", optional=1)
        head = head_of(stub, name)
        if not version:
            if head["current"] is None:
                raise ContractError(f"metadata: {name} has no released version")
            version = head["current"]
        record = patch_record(stub, "metadata", name, version)
        device = self._targeted(stub, "metadata", creator, record)
        now = stub.get_tx_timestamp()
        if record["expires_ms"] <= now:
            raise ContractError(
                f"metadata: {name} {version} expired at {record['expires_ms']} (now {now}); "
                "refusing a stale release: the administrators must publish a fresh one"
            )
        manifest = record["manifest"]
        return canonical_json(
            {
                **release_view(record),
                "fetch": {
                    "blob": f"sha256:{manifest['file']['sha256']}",
                    "size": manifest["file"]["size"],
                    "from": "any peer of the channel",
                },
                "as_of_ms": now,
                "head": {"current": head["current"], "top": head["top"]},
                "installed": floor_of(stub, name, creator),
                "device": device["user_id"],
            }
        )

    @transaction
    def download(self, stub: Stub, *args: str) -> bytes:
        """Record that the device fetched a released file and verified its SHA-256 (Exam 2).

        Called after the fetch, never before: a record means the bytes arrived
        and matched. Under log policy ``unwrite`` nothing is written (the paper:
        no log is left on the server), but the hash is still checked.
        """
        creator = caller(stub, "download", "client")
        if len(args) < 3:
            raise ContractError(
                "download records a verified download: call metadata(name[, version]) first, "
                "fetch the file, check its SHA-256, then call download(name, version, sha256)"
            )
        name, version, sha256 = args_of("download", args, "name version sha256")
        record = patch_record(stub, "download", name, version)
        device = self._targeted(stub, "download", creator, record)
        expected = record["manifest"]["file"]["sha256"]
        if sha256 != expected:
            raise ContractError(
                f"download: sha256 {sha256[:16]!r} does not match the released file of "
                f"{name} {version} ({expected[:16]}…); do not install it"
            )
        if record["manifest"]["policy"]["log"] != "write":
            return canonical_json({"download": None, "logged": False, "sha256": sha256})
        entry = {
            "user_id": device["user_id"],
            "version": version,
            "sha256": sha256,
            "verified": True,
            "last": stamp(stub, "download"),
        }
        put(stub, key(stub, DOWNLOAD, name, version, creator.mspid, creator.name), entry)
        return canonical_json({"download": entry, "logged": True, "sha256": sha256})

    @transaction
    def report(self, stub: Stub, *args: str) -> bytes:
        """Record an install outcome for the file the device verified; policy decides the detail."""
        creator = caller(stub, "report", "client")
        name, version, outcome, rebooted_text, detail, sha256 = args_of(
            "report", args, "name version outcome rebooted detail sha256", optional=2
        )
        if outcome not in OUTCOMES:
            raise ContractError(f"report: outcome must be one of {OUTCOMES}, got {outcome!r}")
        rebooted = _parse_bool("report", "rebooted", rebooted_text)
        if len(detail) > MAX_DETAIL:
            raise ContractError(f"report: detail is limited to {MAX_DETAIL} characters")
        record = patch_record(stub, "report", name, version)
        policy = record["manifest"]["policy"]
        received = record["manifest"]["file"]["sha256"]
        if policy["log"] == "write":
            downloaded = load(
                stub.get_state(key(stub, DOWNLOAD, name, version, creator.mspid, creator.name))
            )
            if downloaded is None:
                raise ContractError(
                    f"report: {creator.name} has no verified download of {name} {version}"
                )
            received = downloaded["sha256"]
        elif not sha256:
            raise ContractError(
                "report: under log policy unwrite no download record is kept, so the report "
                "must name the sha256 of the installed file"
            )
        if sha256 and sha256 != received:
            raise ContractError(
                f"report: sha256 {sha256[:16]!r} is not the verified file of {name} {version}"
            )
        entry: dict[str, Any] = {
            "user_id": user_id(creator.mspid, creator.name),
            "version": version,
            "outcome": outcome,
            "sha256": received,
            "log": policy["log"],
            "last": stamp(stub, "report"),
        }
        if policy["log"] == "write":
            entry["rebooted"] = rebooted
            entry["detail"] = detail
            entry["reboot_pending"] = (
                outcome == "installed" and policy["reboot"] == "rebooting" and not rebooted
            )
        put(stub, key(stub, REPORT, name, version, creator.mspid, creator.name), entry)
        floor = floor_of(stub, name, creator)
        if outcome == "installed" and (floor is None or compare_versions(version, floor) > 0):
            installed = {"version": version, "sha256": received, "last": entry["last"]}
            put(stub, key(stub, INSTALLED, name, creator.mspid, creator.name), installed)
        return canonical_json(entry)
