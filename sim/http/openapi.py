"""The gateway's OpenAPI 3.1 description, written out by hand from one table.

Each row is (method, path, summary, request body kind); the document adds the
signed-request headers every ``/api`` operation takes and the shapes the
write steps share, so the table stays the one place an operation is named.
"""

from __future__ import annotations

from typing import Any

SIGNED = "Signed request: X-Ledgersim-Identity, -Timestamp, -Nonce, -Signature (docs/gateway.md)"
PREPARED = "#/components/schemas/Prepared"

OPERATIONS: tuple[tuple[str, str, str, str | None], ...] = (
    ("get", "/api/whoami", "The authenticated member", None),
    ("get", "/api/patches", "List every patch version and its status (catalog)", None),
    ("post", "/api/patches", "Prepare an upload (file first via POST /api/files)", "Upload"),
    ("get", "/api/patches/{name}/metadata", "Release metadata for the caller's device", None),
    ("get", "/api/patches/{name}/history", "Every change, download and report of a patch", None),
    (
        "get",
        "/api/patches/{name}/proof",
        "Offline proof of a release: the block holding the caller's committed metadata call",
        None,
    ),
    ("get", "/api/compliance", "Who still has to install what (administrators)", None),
    ("post", "/api/patches/{name}/{version}/approve", "Prepare an approval", None),
    ("post", "/api/patches/{name}/{version}/withdraw", "Prepare a withdrawal sign-off", "Reason"),
    ("post", "/api/patches/{name}/{version}/download", "Prepare a verified-download record", "Sha"),
    ("post", "/api/patches/{name}/{version}/report", "Prepare an install report", "Report"),
    ("post", "/api/devices", "Prepare the caller's device enrolment", "Device"),
    (
        "post",
        "/api/tx/{tx_id}/endorse",
        "Step 2: proposal signature in, payload to sign out",
        "Sig",
    ),
    ("post", "/api/tx/{tx_id}/submit", "Step 3: payload signature in, validation code out", "Sig"),
    ("get", "/api/tx/{tx_id}", "A committed transaction and its validation code", None),
    ("post", "/api/files", "Place a file on the peers (application/octet-stream)", "File"),
    ("get", "/api/files/{sha256}", "Stream a file from any peer, SHA-256 and size checked", None),
    ("get", "/api/blocks/{number}", "A block: header, data, metadata", None),
    (
        "get",
        "/api/network/activity",
        "Per-second throughput and message rate, view changes and faults (docs/gateway.md)",
        None,
    ),
    ("get", "/api/network", "Each node's view, height, head and role", None),
)


def _string(description: str = "") -> dict[str, Any]:
    return {"type": "string", "description": description} if description else {"type": "string"}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "properties": {"error": _string(), "status": {"type": "integer"}}},
    "Prepared": {
        "type": "object",
        "description": "Bytes the caller signs (ECDSA P-256 with SHA-256 over `bytes`)",
        "properties": {
            "tx_id": _string(),
            "sign": _string("proposal or transaction"),
            "bytes": _string("hex of the exact bytes to sign"),
            "sha256": _string("their SHA-256, for display"),
            "next": _string("where to post the signature"),
        },
    },
    "Upload": {
        "type": "object",
        "required": ["manifest", "signature"],
        "properties": {
            "manifest": {"type": "object", "description": "the patch manifest (docs/patchset.md)"},
            "signature": _string("hex deployer signature over the manifest digest"),
        },
    },
    "Reason": {"type": "object", "required": ["reason"], "properties": {"reason": _string()}},
    "Sha": {"type": "object", "required": ["sha256"], "properties": {"sha256": _string()}},
    "Report": {
        "type": "object",
        "required": ["outcome"],
        "properties": {
            "outcome": _string("installed or failed"),
            "rebooted": {"type": "boolean"},
            "detail": _string(),
            "sha256": _string(),
        },
    },
    "Device": {
        "type": "object",
        "required": ["os"],
        "properties": {"os": _string(), "groups": {"type": "array", "items": _string()}},
    },
    "Call": {
        "type": "object",
        "required": ["function"],
        "properties": {
            "function": _string(),
            "args": {"type": "array", "items": _string()},
            "evaluate": {
                "type": "boolean",
                "description": "POST /api/tx only: endorse and answer, never submit",
            },
        },
    },
    "Sig": {
        "type": "object",
        "required": ["signature"],
        "properties": {"signature": _string("hex: DER, or raw 64-byte r||s (WebCrypto)")},
    },
}


def _operation(method: str, path: str, summary: str, body: str | None) -> dict[str, Any]:
    params = [
        {"name": part[1:-1], "in": "path", "required": True, "schema": _string()}
        for part in path.split("/")
        if part.startswith("{")
    ]
    if path.endswith(("/metadata", "/history", "/proof")):
        params.append({"name": "version", "in": "query", "required": False, "schema": _string()})
    if path == "/api/network/activity":
        window = _string("the window in seconds of the network's clock (1-300, default 60)")
        params.append({"name": "seconds", "in": "query", "required": False, "schema": window})
    if path.endswith("/proof"):
        tx = _string("a committed metadata transaction (default: the caller's latest)")
        params.append({"name": "tx_id", "in": "query", "required": False, "schema": tx})
    if path == "/api/files/{sha256}":
        params.append({"name": "size", "in": "query", "required": True, "schema": _string()})
    operation: dict[str, Any] = {
        "summary": summary,
        "description": SIGNED,
        "parameters": params,
        "responses": {
            "200": {"description": "OK"},
            "4XX": {
                "description": "Refused",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if method == "post" and "/tx/" not in path and path not in ("/api/files", "/api/query"):
        operation["responses"]["200"] = {
            "description": "Prepared: sign `bytes` and POST the signature to `next`",
            "content": {"application/json": {"schema": {"$ref": PREPARED}}},
        }
    if body == "File":
        operation["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    elif body is not None:
        ref = {"$ref": f"#/components/schemas/{body}"}
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref}},
        }
    return operation


def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, body in OPERATIONS:
        paths.setdefault(path, {})[method] = _operation(method, path, summary, body)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ledgersim gateway",
            "version": "1",
            "description": (
                "HTTP/JSON access to a ledgersim network (simulated or live); callers keep "
                "their keys. On a live network, reads whose answer depends on who asks "
                "(metadata, history, compliance) answer 409 with kind 'sign-to-read': POST "
                "/api/tx with the function and evaluate: true, sign, POST .../endorse."
            ),
        },
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
