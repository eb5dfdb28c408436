"""The contract's key layout and the small helpers every transaction shares.

One key per fact (composite keys): a patch version, a name's head, a device,
a device's verified download of a version, its report on a version and the
highest version it has installed. Clients never write a shared key, so
thousands of them can download and report in one block without MVCC
conflicts, and each key's history *is* the audit trail of that fact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from chaincode.patchset.manifest import ManifestError, canonical_json, parse_version
from chaincode.shim import ContractError, Creator, Stub

__all__ = [
    "DEVICE",
    "DOWNLOAD",
    "HEAD",
    "INSTALLED",
    "PATCH",
    "PENDING",
    "RELEASED",
    "REPORT",
    "WITHDRAWN",
    "args_of",
    "caller",
    "device_of",
    "floor_of",
    "head_of",
    "key",
    "load",
    "patch_record",
    "put",
    "signer_id",
    "stamp",
    "user_id",
    "versions",
    "who",
]

PATCH = "patch"  # (name, version) -> the patch version's record
HEAD = "head"  # (name,) -> the current release and the highest version ever released
DEVICE = "device"  # (mspid, cn) -> the client's enrollment
DOWNLOAD = "download"  # (name, version, mspid, cn) -> the client's verified download
REPORT = "report"  # (name, version, mspid, cn) -> the client's latest install report
INSTALLED = "installed"  # (name, mspid, cn) -> the highest version the client installed

PENDING, RELEASED, WITHDRAWN = "pending", "released", "withdrawn"


def user_id(mspid: str, name: str) -> str:
    """The paper's user ID: the MSP id makes a CN issued by another org's CA distinct."""
    return f"{mspid}/{name}"


def who(creator: Creator) -> dict[str, str]:
    return {"mspid": creator.mspid, "name": creator.name, "role": creator.role}


def key(stub: Stub, kind: str, *parts: str) -> str:
    return stub.create_composite_key(kind, parts)


def load(raw: bytes | None) -> dict[str, Any] | None:
    return None if raw is None else json.loads(raw)


def put(stub: Stub, at: str, value: dict[str, Any]) -> None:
    stub.put_state(at, canonical_json(value))


def signer_id(signer: Creator | dict[str, str]) -> dict[str, str]:
    """What identifies a signer in a list of sign-offs (stored copies carry more)."""
    if isinstance(signer, Creator):
        return {"mspid": signer.mspid, "name": signer.name}
    return {"mspid": signer["mspid"], "name": signer["name"]}


def patch_record(stub: Stub, function: str, name: str, version: str) -> dict[str, Any]:
    try:
        parse_version(version)
    except ManifestError as exc:
        raise ContractError(f"{function}: {exc}") from None
    record = load(stub.get_state(key(stub, PATCH, name, version)))
    if record is None:
        raise ContractError(f"{function}: no patch set {name} version {version}")
    return record


def versions(stub: Stub, name: str) -> Iterator[dict[str, Any]]:
    for _key, raw in stub.get_state_by_partial_composite_key(PATCH, [name]):
        yield json.loads(raw)


def head_of(stub: Stub, name: str) -> dict[str, Any]:
    """The current release and the highest version ever released (both ``None`` at first)."""
    return load(stub.get_state(key(stub, HEAD, name))) or {"current": None, "top": None}


def device_of(stub: Stub, mspid: str, cn: str) -> dict[str, Any] | None:
    return load(stub.get_state(key(stub, DEVICE, mspid, cn)))


def floor_of(stub: Stub, name: str, creator: Creator) -> str | None:
    """The highest version of ``name`` the caller's device reported installed."""
    found = load(stub.get_state(key(stub, INSTALLED, name, creator.mspid, creator.name)))
    return None if found is None else found["version"]


def stamp(stub: Stub, action: str) -> dict[str, Any]:
    """Who did what and when: a key's history has the tx id and time but not the creator."""
    return {
        "action": action,
        "by": who(stub.get_creator()),
        "tx_id": stub.get_tx_id(),
        "timestamp_ms": stub.get_tx_timestamp(),
    }


def caller(stub: Stub, function: str, role: str) -> Creator:
    """The creator, if its certificate's NodeOU role may call ``function``."""
    creator = stub.get_creator()
    if creator.role != role:
        raise ContractError(
            f"{function} requires {'an' if role[0] in 'aeiou' else 'a'} {role} identity; "
            f"caller {creator.name} has role {creator.role}"
        )
    return creator


def args_of(function: str, args: tuple[str, ...], names: str, optional: int = 0) -> list[str]:
    """Check the argument count and text; optional trailing arguments default to ``""``.

    A lone surrogate cannot be stored, signed or shown, so it is refused here,
    once for every function, rather than surfacing later as a Python error.
    """
    wanted = names.split()
    required = len(wanted) - optional
    if not required <= len(args) <= len(wanted) or not all(isinstance(a, str) for a in args):
        raise ContractError(
            f"{function} takes {' '.join(wanted)} ({required}"
            f"{f'-{len(wanted)}' if optional else ''} string arguments), got {len(args)}"
        )
    for name, value in zip(wanted, args, strict=False):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ContractError(
                f"{function}: {name} is not valid Unicode text (lone surrogate)"
            ) from None
    return [*args, *[""] * (len(wanted) - len(args))]
