"""What the contract shows: summaries, the release a client checks, compliance rows.

Kept apart from the transactions because these are pure functions of stored
records: the same record always gives the same view on every peer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaincode.patchset.manifest import (
    PatchManifest,
    compare_versions,
    manifest_from_json,
    parse_version,
)
from chaincode.patchset.state import DOWNLOAD, INSTALLED, REPORT

__all__ = ["compliance_rows", "event_record", "release_view", "summary"]

StateReader = Callable[..., dict[str, Any] | None]
"""``(kind, *key parts) -> stored value or None``."""


def summary(record: dict[str, Any]) -> dict[str, Any]:
    manifest = record["manifest"]
    return {
        "name": manifest["name"],
        "version": manifest["version"],
        "status": record["status"],
        "deployer": record["deployer"]["name"],
        "approvals": [a["name"] for a in record["approvals"]],
        "signoffs": 1 + len(record["approvals"]),
        "approvals_required": record["approvals_required"],
        "policy": manifest["policy"],
        "deadline_ms": manifest["deadline_ms"],
        "expires_ms": record["expires_ms"],
        "released_ms": record["released_ms"],
        "withdrawal": record["withdrawal"],
        "withdrawn": record["withdrawn"],
    }


def release_view(record: dict[str, Any]) -> dict[str, Any]:
    """What a client needs to check a release itself: the signed manifest and who signed off."""
    keys = (
        "manifest",
        "digest",
        "signature",
        "deployer",
        "deployer_cert",
        "approvals",
        "expires_ms",
        "released_ms",
    )
    return {k: record[k] for k in keys}


def event_record(is_patch: bool, value: dict[str, Any]) -> dict[str, Any]:
    if not is_patch:
        return value
    view = summary(value)
    view["file"] = value["manifest"]["file"]
    return view


def _newest_mandatory(
    mandatory: list[PatchManifest], groups: list[str], os_name: str
) -> dict[str, PatchManifest]:
    """Per patch name, the newest released mandatory version that targets the device.

    Supersedence per audience: a newer release for other groups does not
    change what this device is judged against.
    """
    best: dict[str, PatchManifest] = {}
    for manifest in mandatory:
        if not manifest.targets(groups, os_name):
            continue
        held = best.get(manifest.name)
        if held is None or compare_versions(manifest.version, held.version) > 0:
            best[manifest.name] = manifest
    return best


def compliance_rows(
    releases: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    state: StateReader,
    now: int,
) -> list[dict[str, Any]]:
    """One row per device and mandatory patch aimed at it, judged in ledger time ``now``.

    A device's highest installed version is a floor: installing 1.1 satisfies
    1.0, so withdrawing 1.1 never makes that device "missing 1.0".
    """
    parsed = [manifest_from_json(record["manifest"]) for record in releases]
    mandatory = [m for m in parsed if m.install == "mandatory"]
    rows = []
    for device in devices:
        mspid, cn = device["user_id"].split("/", 1)
        targets = _newest_mandatory(mandatory, device["groups"], device["os"])
        for name in sorted(targets):
            version, deadline = targets[name].version, targets[name].deadline_ms
            floor = state(INSTALLED, name, mspid, cn)
            satisfied = floor is not None and parse_version(floor["version"]) >= parse_version(
                version
            )
            shown = floor["version"] if satisfied and floor is not None else version
            downloaded = state(DOWNLOAD, name, version, mspid, cn)
            reported = state(REPORT, name, shown, mspid, cn)
            status = "missing"
            if satisfied:
                status = "installed"
            elif reported is not None:
                status = reported["outcome"]
            elif downloaded is not None:
                status = "downloaded"
            rows.append(
                {
                    "user_id": device["user_id"],
                    "patch": name,
                    "version": version,
                    "installed_version": floor["version"] if floor is not None else None,
                    "status": status,
                    "downloaded_ms": _time(downloaded),
                    "reported_ms": _time(reported),
                    "reboot_pending": bool(reported and reported.get("reboot_pending")),
                    "deadline_ms": deadline,
                    "overdue": deadline is not None and now > deadline and status != "installed",
                }
            )
    return rows


def _time(value: dict[str, Any] | None) -> int | None:
    return None if value is None else value["last"]["timestamp_ms"]
