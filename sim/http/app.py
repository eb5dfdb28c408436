"""The Starlette application: routes, body limits and JSON errors.

Every ``/api`` route authenticates its caller from the signed request headers
(:mod:`sim.http.signing`) before it reads anything else, and every failure,
expected or not, leaves as a JSON body ``{"error": ...}``: a traceback never
reaches a caller (the server's log keeps it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chaincode.patchset.manifest import canonical_json
from sim.fabric.proof import proof_text
from sim.http.errors import ApiError
from sim.http.identities import Member
from sim.http.openapi import openapi_document
from sim.http.service import NetworkService
from sim.http.signing import HEADERS

ASSETS = Path(__file__).parent / "assets"
MAX_JSON = 256 * 1024
MAX_FILE = 16 * 1024 * 1024
CHUNK = 64 * 1024
log = logging.getLogger("ledgersim.gateway")

Handler = Callable[[Request, Member, NetworkService], Awaitable[Any]]


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is longer than ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # nobody to answer: not a crash worth a traceback in the log
        raise ApiError(400, "the client went away before sending the whole body") from None
    return b"".join(chunks)


def _target(request: Request) -> str:
    """The path and query exactly as sent: what the caller signed."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


def _json_object(request: Request, body: bytes) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, f"expected Content-Type application/json, got {kind or 'none'!r}")
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    except RecursionError:  # e.g. 100,000 nested brackets, well inside the size limit
        raise ApiError(400, "malformed JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the JSON body must be an object")
    return value


def field(body: dict[str, Any], name: str, kind: type = str, default: Any = ...) -> Any:
    """A required (or defaulted) field of a JSON body, of the expected type; 400 otherwise."""
    if name not in body:
        if default is ...:
            raise ApiError(400, f"missing field {name!r}")
        return default
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, f"field {name!r} must be {kind.__name__}")
    return value


def api(handler: Handler, limit: int = MAX_JSON) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, run ``handler`` and answer its value as JSON."""

    async def endpoint(request: Request) -> Response:
        service: NetworkService = request.app.state.service
        body = await _body(request, limit)
        request.state.body = body
        headers = {h.removeprefix("x-ledgersim-"): request.headers.get(h, "") for h in HEADERS}
        member = service.authenticate(request.method, _target(request), body, headers)
        value = await handler(request, member, service)
        return value if isinstance(value, Response) else JSONResponse(value)

    return endpoint


def json_body(request: Request) -> dict[str, Any]:
    return _json_object(request, request.state.body)


def _path(request: Request, name: str) -> str:
    return str(request.path_params[name])


# ---------------------------------------------------------------------- handlers


async def whoami(request: Request, member: Member, service: NetworkService) -> Any:
    return {"name": member.name, "mspid": member.mspid, "role": member.role}


def _query(function: str, *parts: str) -> Handler:
    async def handler(request: Request, member: Member, service: NetworkService) -> Any:
        args = [_path(request, p) for p in parts]
        version = request.query_params.get("version", "")
        if function in ("metadata", "history") and version:
            args.append(version)
        return await run_in_threadpool(service.query, member, function, args)

    return handler


def _prepare(function: str, args: Callable[[Request], list[str]]) -> Handler:
    async def handler(request: Request, member: Member, service: NetworkService) -> Any:
        return await run_in_threadpool(service.prepare, member, function, args(request))

    return handler


def _upload_args(request: Request) -> list[str]:
    body = json_body(request)
    manifest = field(body, "manifest", dict)
    return [canonical_json(manifest).decode(), field(body, "signature")]


def _withdraw_args(request: Request) -> list[str]:
    reason = field(json_body(request), "reason")
    return [_path(request, "name"), _path(request, "version"), reason]


def _register_args(request: Request) -> list[str]:
    body = json_body(request)
    groups = field(body, "groups", list, [])
    if not all(isinstance(g, str) for g in groups):
        raise ApiError(400, "field 'groups' must be a list of strings")
    return [json.dumps({"os": field(body, "os"), "groups": groups})]


def _download_args(request: Request) -> list[str]:
    sha256 = field(json_body(request), "sha256")
    return [_path(request, "name"), _path(request, "version"), sha256]


def _report_args(request: Request) -> list[str]:
    body = json_body(request)
    args = [_path(request, "name"), _path(request, "version"), field(body, "outcome")]
    args.append("true" if field(body, "rebooted", bool, False) else "false")
    args.append(field(body, "detail", str, ""))
    sha256 = field(body, "sha256", str, "")
    return args + ([sha256] if sha256 else [])


def _name_version(request: Request) -> list[str]:
    return [_path(request, "name"), _path(request, "version")]


def _call(request: Request) -> tuple[str, list[str]]:
    body = json_body(request)
    args = field(body, "args", list, [])
    if not all(isinstance(a, str) for a in args):
        raise ApiError(400, "field 'args' must be a list of strings")
    return field(body, "function"), args


async def any_write(request: Request, member: Member, service: NetworkService) -> Any:
    evaluate = field(json_body(request), "evaluate", bool, False)
    return await run_in_threadpool(service.prepare, member, *_call(request), evaluate)


async def any_query(request: Request, member: Member, service: NetworkService) -> Any:
    return await run_in_threadpool(service.query, member, *_call(request))


async def step(request: Request, member: Member, service: NetworkService) -> Any:
    signature = field(json_body(request), "signature")
    tx_id = _path(request, "tx_id")
    work = service.endorse if request.url.path.endswith("/endorse") else service.submit
    return await run_in_threadpool(work, member, tx_id, signature)


async def put_file(request: Request, member: Member, service: NetworkService) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/octet-stream":
        raise ApiError(415, f"expected Content-Type application/octet-stream, got {kind!r}")
    if not request.state.body:
        raise ApiError(400, "empty file")
    return await run_in_threadpool(service.publish, member, request.state.body)


async def get_file(request: Request, member: Member, service: NetworkService) -> Any:
    sha256 = _path(request, "sha256").lower()
    size_text = request.query_params.get("size", "")
    if len(sha256) != 64 or not size_text.isdigit():
        raise ApiError(400, "GET /api/files/{sha256}?size=N: a hex SHA-256 and the size in bytes")
    data, peer = await run_in_threadpool(service.fetch, sha256, int(size_text))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]

    headers = {"content-length": str(len(data)), "x-content-sha256": sha256, "x-served-by": peer}
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


async def get_proof(request: Request, member: Member, service: NetworkService) -> Any:
    """The proof file's exact text (``ledgersim patch proof --out`` writes the same bytes)."""
    name, version = _path(request, "name"), request.query_params.get("version", "")
    tx_id = request.query_params.get("tx_id", "")
    proof = await run_in_threadpool(service.proof, member, name, version, tx_id)
    return Response(proof_text(proof), media_type="application/json")


async def get_tx(request: Request, member: Member, service: NetworkService) -> Any:
    return await run_in_threadpool(service.transaction, _path(request, "tx_id"))


async def get_block(request: Request, member: Member, service: NetworkService) -> Any:
    text = _path(request, "number")
    if not text.isdigit():
        raise ApiError(400, f"block number must be a non-negative integer, got {text!r}")
    return await run_in_threadpool(service.block, int(text))


async def get_network(request: Request, member: Member, service: NetworkService) -> Any:
    return await run_in_threadpool(service.nodes)


async def get_activity(request: Request, member: Member, service: NetworkService) -> Any:
    text = request.query_params.get("seconds", "60")
    if not text.isdigit() or len(text) > 6:
        raise ApiError(400, f"seconds must be a positive integer, got {text!r}")
    return await run_in_threadpool(service.activity_figures, int(text))


# ---------------------------------------------------------------------- app


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail, "status": exc.status_code}, exc.status_code)


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": "internal error (see the gateway's log)", "status": 500}, 500)


def _page(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return FileResponse(ASSETS / name)

    return endpoint


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


async def _home(request: Request) -> Response:
    return RedirectResponse("/console")


def create_app(service: NetworkService) -> Starlette:
    p = "/api/patches/{name}/{version}"
    routes = [
        Route("/", _home),
        Route("/openapi.json", _openapi),
        Route("/docs", _page("docs.html")),
        Route("/console", _page("console.html")),
        Mount("/assets", StaticFiles(directory=ASSETS), name="assets"),
        Route("/api/whoami", api(whoami)),
        Route("/api/patches", api(_query("catalog")), methods=["GET"]),
        Route("/api/patches", api(_prepare("upload", _upload_args)), methods=["POST"]),
        Route("/api/patches/{name}/metadata", api(_query("metadata", "name"))),
        Route("/api/patches/{name}/history", api(_query("history", "name"))),
        Route("/api/patches/{name}/proof", api(get_proof)),
        Route("/api/compliance", api(_query("compliance"))),
        Route(p + "/approve", api(_prepare("approve", _name_version)), methods=["POST"]),
        Route(p + "/withdraw", api(_prepare("withdraw", _withdraw_args)), methods=["POST"]),
        Route(p + "/download", api(_prepare("download", _download_args)), methods=["POST"]),
        Route(p + "/report", api(_prepare("report", _report_args)), methods=["POST"]),
        Route("/api/devices", api(_prepare("register", _register_args)), methods=["POST"]),
        Route("/api/tx", api(any_write), methods=["POST"]),
        Route("/api/query", api(any_query), methods=["POST"]),
        Route("/api/tx/{tx_id}/endorse", api(step), methods=["POST"]),
        Route("/api/tx/{tx_id}/submit", api(step), methods=["POST"]),
        Route("/api/tx/{tx_id}", api(get_tx)),
        Route("/api/files", api(put_file, MAX_FILE), methods=["POST"]),
        Route("/api/files/{sha256}", api(get_file)),
        Route("/api/blocks/{number}", api(get_block)),
        Route("/api/network", api(get_network)),
        Route("/api/network/activity", api(get_activity)),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _crash},
    )
    app.state.service = service
    return app
