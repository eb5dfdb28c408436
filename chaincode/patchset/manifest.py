"""The patch file set as signed data: fields, validation, versions and the signed digest.

The paper's patch file set is a file name plus a policy and the deployer's ID;
its future-work section asks that the deployer *sign* the set with a private
key whose public half travels in the transaction. That needs one exact byte
string to sign, so the manifest is a codec record (the project's one canonical
encoding) and the signed digest is SHA-256 over a domain tag plus those bytes.
The tag keeps a signature on a manifest from being replayed as a signature on
any other ledgersim structure.

Users write and read manifests as JSON (:func:`manifest_from_json`,
:func:`manifest_to_json`); the JSON form is a view, the record is what is signed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.codec import encode, record

__all__ = [
    "INSTALL_POLICIES",
    "LOG_POLICIES",
    "MAX_TIME_MS",
    "REBOOT_POLICIES",
    "ManifestError",
    "PatchManifest",
    "canonical_json",
    "check_names",
    "check_text",
    "compare_versions",
    "manifest_digest",
    "manifest_from_json",
    "manifest_to_json",
    "parse_version",
    "sign_manifest",
]

INSTALL_POLICIES = ("mandatory", "optional")
LOG_POLICIES = ("write", "unwrite")
REBOOT_POLICIES = ("rebooting", "unrebooting")

DIGEST_DOMAIN = b"ledgersim.patchset.manifest.v1\x00"
MAX_FILE_SIZE = 1 << 40
MAX_DESCRIPTION = 2000
MAX_TARGETS = 64
MAX_TIME_MS = 2**53 - 1
"""Times are milliseconds below 2**53: exact in every JSON reader, and within the codec's range."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"(0|[1-9][0-9]{0,8})(\.(0|[1-9][0-9]{0,8})){0,3}")
_VERSION_PARTS = 4


class ManifestError(ValueError):
    """A manifest (or a version string) that breaks a rule; the message names it."""


def parse_version(text: str) -> tuple[int, ...]:
    """``"1.2"`` -> ``(1, 2, 0, 0)``: dotted numbers, compared with missing parts as zero.

    Leading zeros are refused so one version has one spelling and a rollback
    cannot hide as ``1.02`` versus ``1.2``.
    """
    if not isinstance(text, str) or not _VERSION.fullmatch(text):
        raise ManifestError(
            f"version {text!r} must be 1 to 4 dot-separated numbers without leading zeros"
        )
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (_VERSION_PARTS - len(parts))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is lower than, equal to or higher than ``b``."""
    pa, pb = parse_version(a), parse_version(b)
    return (pa > pb) - (pa < pb)


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ManifestError(message)


def check_text(value: str, what: str) -> None:
    """Text that will be signed, stored and shown must be encodable: a lone surrogate is not."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ManifestError(f"{what} is not valid Unicode text (lone surrogate)") from None


def check_time(value: Any, what: str) -> None:
    _need(
        value is None or (type(value) is int and 0 <= value <= MAX_TIME_MS),
        f"{what} must be null or an integer number of milliseconds in [0, {MAX_TIME_MS}]",
    )


def check_names(values: Any, what: str) -> None:
    """Group and OS names: a bounded list of distinct short plain names."""
    _need(isinstance(values, (list, tuple)), f"{what} must be a list of names")
    _need(len(values) <= MAX_TARGETS, f"{what}: at most {MAX_TARGETS} entries")
    for value in values:
        _need(
            isinstance(value, str) and bool(_NAME.fullmatch(value)),
            f"{what}: {value!r} is not a valid name (letters, digits, . _ + -)",
        )
    _need(len(set(values)) == len(values), f"{what}: duplicate entries")


@record(200)
@dataclass(frozen=True, slots=True)
class PatchManifest:
    """One version of one patch: the file, its policy, its audience and its deadline.

    ``target_groups`` and ``target_os`` empty together mean every enrolled
    device; otherwise a device is targeted when it is in one of the groups or
    runs one of the listed operating systems.

    ``expires_ms`` is signed with the rest, so no mirror or lagging peer can
    stretch a release's life: after it, clients must refuse the release as a
    "latest" answer (TUF's defence against a freeze). It comes last, with a
    default, so manifests built without it keep working (the contract then
    gives the release its default lifetime).
    """

    name: str
    version: str
    file_name: str
    sha256: str
    size: int
    install: str
    log: str
    reboot: str
    target_groups: tuple[str, ...]
    target_os: tuple[str, ...]
    deadline_ms: int | None
    description: str
    expires_ms: int | None = None

    def __post_init__(self) -> None:
        _need(bool(_NAME.fullmatch(self.name)), f"name {self.name!r} is not a valid patch name")
        parse_version(self.version)
        _need(
            bool(_FILE_NAME.fullmatch(self.file_name)),
            f"file.name {self.file_name!r} must be a plain file name (no directories)",
        )
        _need(
            bool(_HEX64.fullmatch(self.sha256)),
            "file.sha256 must be 64 lower-case hex digits",
        )
        _need(
            type(self.size) is int and 0 <= self.size <= MAX_FILE_SIZE,
            f"file.size must be an integer in [0, {MAX_FILE_SIZE}]",
        )
        _need(self.install in INSTALL_POLICIES, f"policy.install must be one of {INSTALL_POLICIES}")
        _need(self.log in LOG_POLICIES, f"policy.log must be one of {LOG_POLICIES}")
        _need(self.reboot in REBOOT_POLICIES, f"policy.reboot must be one of {REBOOT_POLICIES}")
        check_names(self.target_groups, "targets.groups")
        check_names(self.target_os, "targets.os")
        check_time(self.deadline_ms, "deadline_ms")
        check_time(self.expires_ms, "expires_ms")
        _need(
            len(self.description) <= MAX_DESCRIPTION,
            f"description: at most {MAX_DESCRIPTION} characters",
        )
        check_text(self.description, "description")

    def targets(self, groups: tuple[str, ...] | list[str], os_name: str) -> bool:
        """Is a device in ``groups`` running ``os_name`` meant to install this patch?"""
        if not self.target_groups and not self.target_os:
            return True
        return os_name in self.target_os or any(g in self.target_groups for g in groups)


def manifest_digest(manifest: PatchManifest) -> bytes:
    """The 32 bytes the deployer signs."""
    return hashlib.sha256(DIGEST_DOMAIN + encode(manifest)).digest()


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: one byte string per JSON value (for state and replies)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_to_json(manifest: PatchManifest) -> dict[str, Any]:
    return {
        "name": manifest.name,
        "version": manifest.version,
        "file": {"name": manifest.file_name, "sha256": manifest.sha256, "size": manifest.size},
        "policy": {"install": manifest.install, "log": manifest.log, "reboot": manifest.reboot},
        "targets": {"groups": list(manifest.target_groups), "os": list(manifest.target_os)},
        "deadline_ms": manifest.deadline_ms,
        "expires_ms": manifest.expires_ms,
        "description": manifest.description,
    }


def _object(value: Any, where: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    _need(isinstance(value, dict), f"{where} must be a JSON object")
    for key in sorted(set(value) - required - optional):
        raise ManifestError(f"{where}: unknown key {key!r}")
    for key in sorted(required - set(value)):
        raise ManifestError(f"{where}: missing key {key!r}")
    return value


def _typed(value: Any, kind: type, where: str) -> Any:
    # bool is an int in Python; a JSON true is never a size or a deadline.
    _need(
        type(value) is kind,
        f"{where} must be a {'string' if kind is str else kind.__name__}",
    )
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    _need(isinstance(value, list), f"{where} must be a list of names")
    return tuple(_typed(v, str, where) for v in value)


def manifest_from_json(data: str | bytes | dict[str, Any]) -> PatchManifest:
    """Parse the user's JSON; every error names the key and what was expected."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ManifestError(f"patch set is not valid JSON: {exc}") from None
    top = _object(
        data,
        "patch set",
        {"name", "version", "file", "policy"},
        {"targets", "deadline_ms", "expires_ms", "description"},
    )
    file = _object(top["file"], "file", {"name", "sha256", "size"}, set())
    policy = _object(top["policy"], "policy", {"install", "log", "reboot"}, set())
    targets = _object(top.get("targets", {}), "targets", set(), {"groups", "os"})
    deadline = top.get("deadline_ms")
    expires = top.get("expires_ms")
    return PatchManifest(
        name=_typed(top["name"], str, "name"),
        version=_typed(top["version"], str, "version"),
        file_name=_typed(file["name"], str, "file.name"),
        sha256=_typed(file["sha256"], str, "file.sha256"),
        size=_typed(file["size"], int, "file.size"),
        install=_typed(policy["install"], str, "policy.install"),
        log=_typed(policy["log"], str, "policy.log"),
        reboot=_typed(policy["reboot"], str, "policy.reboot"),
        target_groups=_names(targets.get("groups", []), "targets.groups"),
        target_os=_names(targets.get("os", []), "targets.os"),
        deadline_ms=None if deadline is None else _typed(deadline, int, "deadline_ms"),
        description=_typed(top.get("description", ""), str, "description"),
        expires_ms=None if expires is None else _typed(expires, int, "expires_ms"),
    )


class _Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...


def sign_manifest(signer: _Signer, manifest: PatchManifest) -> str:
    """The deployer's signature over :func:`manifest_digest`, hex, as ``upload`` expects."""
    return signer.sign(manifest_digest(manifest)).hex()
