"""The patch-management chaincode (after Song, Kim & Kim, JIPS 2020); see docs/patchset.md."""

from chaincode.patchset.contract import PatchSetContract, user_id
from chaincode.patchset.manifest import (
    ManifestError,
    PatchManifest,
    canonical_json,
    manifest_digest,
    manifest_from_json,
    manifest_to_json,
    sign_manifest,
)
from chaincode.patchset.rules import Rules

__all__ = [
    "ManifestError",
    "PatchManifest",
    "PatchSetContract",
    "Rules",
    "canonical_json",
    "manifest_digest",
    "manifest_from_json",
    "manifest_to_json",
    "sign_manifest",
    "user_id",
]
