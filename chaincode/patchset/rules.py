"""The channel's patch rules: thresholds, duty separation, version jumps, lifetimes.

These are the settings a channel deploys the contract with (``PatchSetContract(**settings)``),
kept apart from the contract so the rules read in one place and the contract
code reads as the steps of each transaction.

Duty separation uses a *certificate attribute*, not a NodeOU: Fabric's NodeOUs
are exactly client/peer/admin/orderer and the MSP refuses a certificate whose
OU names two of them, while Fabric CA already carries free-form attributes in
an X.509 extension (OID 1.2.3.4.5.6.7.8.1, JSON ``{"attrs": {...}}``) that
chaincode reads with its ``cid`` library. The attribute ``patchset.role`` is
``deployer`` or ``approver``; it is signed by the organisation's CA, so a
caller cannot grant it to itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from chaincode.patchset.manifest import MAX_TIME_MS, parse_version
from chaincode.shim import ContractError, Creator
from msp.errors import MSPError
from msp.identity import parse_certificate

__all__ = [
    "ATTRIBUTE_OID",
    "DEPLOYER",
    "ROLE_ATTRIBUTE",
    "Rules",
    "jump_problem",
    "patch_role",
    "threshold_problem",
]

ATTRIBUTE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
"""Where Fabric CA puts enrollment attributes (JSON ``{"attrs": {name: value}}``)."""
ROLE_ATTRIBUTE = "patchset.role"
DEPLOYER, APPROVER = "deployer", "approver"
ROLE_MODES = ("admin", "attribute")
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Rules:
    """One channel's settings; see docs/patchset.md for what each one stops.

    * ``approvals_required`` (k): distinct administrators who must sign off a
      release, a withdrawal and anything else that changes which version is
      current. The deployer's upload is the first sign-off.
    * ``distinct_orgs``: the k sign-offs must also come from k organisations.
    * ``roles``: ``admin`` lets any administrator deploy or approve (only "not
      the same person"); ``attribute`` requires the ``patchset.role``
      certificate attribute, ``deployer`` to upload and ``approver`` to approve.
    * ``max_version_jump``: how far one release may move the first version part
      that changes, past the highest release so far.
    * ``release_lifetime_ms``: the expiry a release gets when its manifest
      names none, and the longest one it may name (counted from the upload).
    """

    approvals_required: int = 2
    distinct_orgs: bool = False
    roles: str = "admin"
    max_version_jump: int = 100
    release_lifetime_ms: int = 90 * DAY_MS

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Rules:
        """Settings as given at deployment; a bad one is a deployment error (``ValueError``)."""
        unknown = sorted(set(settings) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"patchset: unknown setting {unknown[0]!r}")
        rules = cls(**settings)
        for name in ("approvals_required", "max_version_jump", "release_lifetime_ms"):
            value = getattr(rules, name)
            if type(value) is not int or not 1 <= value <= MAX_TIME_MS:
                raise ValueError(f"{name} must be an integer in [1, {MAX_TIME_MS}], got {value!r}")
        if type(rules.distinct_orgs) is not bool:
            raise ValueError(f"distinct_orgs must be true or false, got {rules.distinct_orgs!r}")
        if rules.roles not in ROLE_MODES:
            raise ValueError(f"roles must be one of {ROLE_MODES}, got {rules.roles!r}")
        return rules

    def check_role(self, function: str, creator: Creator, wanted: Iterable[str]) -> None:
        """In ``attribute`` mode, refuse an administrator without one of the ``wanted`` roles."""
        if self.roles != "attribute":
            return
        allowed = tuple(wanted)
        held = patch_role(creator)
        if held not in allowed:
            raise ContractError(
                f"{function} requires the certificate attribute {ROLE_ATTRIBUTE}="
                f"{' or '.join(allowed)}; {creator.name} has "
                f"{held if held is not None else 'none'}"
            )


def patch_role(creator: Creator) -> str | None:
    """The ``patchset.role`` attribute of the creator's certificate, if it has one."""
    try:
        cert = parse_certificate(creator.cert_pem)
        extension = cert.extensions.get_extension_for_oid(ATTRIBUTE_OID)
    except (MSPError, ValueError, x509.ExtensionNotFound):
        return None
    value = extension.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    try:
        attrs = json.loads(raw).get("attrs", {})
    except (ValueError, AttributeError):
        return None
    role = attrs.get(ROLE_ATTRIBUTE) if isinstance(attrs, dict) else None
    return role if role in (DEPLOYER, APPROVER) else None


def threshold_problem(signers: list[dict[str, str]], rules: Rules) -> str | None:
    """Why ``signers`` (distinct administrators) are not yet enough; ``None`` when they are."""
    needed = rules.approvals_required
    if len(signers) < needed:
        return f"{len(signers)} of {needed} sign-offs"
    orgs = {s["mspid"] for s in signers}
    if rules.distinct_orgs and len(orgs) < needed:
        return f"sign-offs from {len(orgs)} of {needed} distinct organisations"
    return None


def jump_problem(version: str, top: str | None, rules: Rules) -> str | None:
    """Why ``version`` moves too far past ``top`` (the highest release); ``None`` if it does not.

    The first part that differs may grow by at most ``max_version_jump``, so a
    release of ``999999999`` cannot end a name's life; later parts are free,
    since the next release can always raise the part before them. The first
    release of a name has nothing to jump from and is not capped.
    """
    if top is None:
        return None
    new, old = parse_version(version), parse_version(top)
    for a, b in zip(new, old, strict=True):
        if a != b:
            if a - b > rules.max_version_jump:
                return (
                    f"version {version} jumps {a - b} past the highest release {top} "
                    f"(at most {rules.max_version_jump} allowed)"
                )
            return None
    return None
