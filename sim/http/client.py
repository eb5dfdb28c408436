"""A Python caller of the HTTP gateway that signs everything itself.

:class:`HttpGateway` implements :class:`sim.fabric.gateway.Gateway`, so
:class:`sim.fabric.patchclient.PatchClient` (and ``ledgersim patch
--gateway URL``) run unchanged over HTTP. Keys are read from the caller's
own MSP tree (``crypto/peerOrganizations/<domain>/users/<name>/msp``) and
never leave this process: the gateway receives signatures only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from msp.identity import SigningIdentity
from msp.loader import load_signing_identity
from sim.errors import InputError
from sim.fabric.distribution import DownloadFailed, FetchResult, FileRef
from sim.fabric.gateway import Refused
from sim.http.service import READS
from sim.http.signing import IDENTITY, NONCE, SIGNATURE, TIMESTAMP, request_digest

TIMEOUT_S = 300.0
"""A write waits for its simulated commit, which can take a while on a busy machine."""


def member_msp_dir(crypto_dir: Path, name: str) -> Path:
    """Where ``name``'s MSP directory is in a cryptogen tree (``User1@org1.example.com``)."""
    domain = name.partition("@")[2]
    return crypto_dir / "peerOrganizations" / domain / "users" / name / "msp"


class HttpError(Refused):
    """The gateway refused a request; ``status`` and ``body`` are its answer."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error", str(body)) if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


class HttpGateway:
    """The gateway at ``url``, called as members whose keys are under ``crypto_dir``."""

    def __init__(self, url: str, crypto_dir: str | Path, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.crypto_dir = Path(crypto_dir)
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self._signers: dict[str, SigningIdentity] = {}
        self.acting: str | None = None
        """The member last named (a request, or a key asked for): file transfers go as them.
        ``Gateway`` names no user for files; in PatchClient they follow such a call."""

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HttpGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ keys

    def signer(self, name: str) -> SigningIdentity:
        self.acting = name
        found = self._signers.get(name)
        if found is None:
            msp_dir = member_msp_dir(self.crypto_dir, name)
            if not msp_dir.is_dir():
                raise InputError(f"no MSP directory for {name!r} under {self.crypto_dir}")
            found = load_signing_identity(msp_dir)
            self._signers[name] = found
        return found

    # ------------------------------------------------------------------ requests

    def signed_headers(
        self, user: str, method: str, target: str, body: bytes, *, nonce: str | None = None
    ) -> dict[str, str]:
        """The four headers that authenticate one request as ``user``."""
        stamp = time.time_ns() // 1_000_000
        nonce = nonce or os.urandom(16).hex()
        digest = request_digest(method, target, body, stamp, nonce)
        return {
            IDENTITY: user,
            TIMESTAMP: str(stamp),
            NONCE: nonce,
            SIGNATURE: self.signer(user).sign(digest).hex(),
        }

    def request(
        self,
        user: str,
        method: str,
        target: str,
        body: Any = None,
        *,
        content: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send one signed request; its JSON answer, or :class:`HttpError`."""
        raw = content if content is not None else b"" if body is None else json.dumps(body).encode()
        headers = self.signed_headers(user, method, target, raw)
        if raw:
            headers["content-type"] = content_type
        try:
            response = self.http.request(method, target, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            raise Refused(f"cannot reach the gateway at {self.url}: {exc}") from None
        return _answer(response)

    def sign_and_send(self, user: str, prepared: dict[str, Any]) -> dict[str, Any]:
        """Steps 2 and 3 of a write: sign the proposal, then the endorsed payload."""
        key = self.signer(user)
        endorse_at = f"/api/tx/{prepared['tx_id']}/endorse"
        signature = key.sign(bytes.fromhex(prepared["bytes"])).hex()
        endorsed = self.request(user, "POST", endorse_at, {"signature": signature})
        signature = key.sign(bytes.fromhex(endorsed["bytes"])).hex()
        submit_at = f"/api/tx/{prepared['tx_id']}/submit"
        result: dict[str, Any] = self.request(user, "POST", submit_at, {"signature": signature})
        return result

    # ------------------------------------------------------------------ Gateway protocol

    def submit(self, user: str, function: str, args: Sequence[str]) -> bytes:
        prepared = self.request(user, "POST", "/api/tx", {"function": function, "args": list(args)})
        result = self.sign_and_send(user, prepared)
        return json.dumps(result["response"]).encode()

    def evaluate(self, user: str, function: str, args: Sequence[str]) -> bytes:
        """A query's answer; for a write, the peers' endorsement of it, which orders nothing.

        Reads go to ``/api/query`` (or, where the gateway answers ``sign-to-read``,
        take the write's first two steps, as below). A write is prepared and endorsed but never
        submitted (the gateway forgets it when it expires): that is how a caller
        learns the contract would refuse it before doing anything irreversible,
        such as placing a file on every peer.
        """
        call = {"function": function, "args": list(args)}
        if function in READS:
            try:
                return json.dumps(self.request(user, "POST", "/api/query", call)).encode()
            except HttpError as exc:
                if not isinstance(exc.body, dict) or exc.body.get("kind") != "sign-to-read":
                    raise
                # A live gateway cannot read as us: we sign the query, as for a write.
        prepared = self.request(user, "POST", "/api/tx", {**call, "evaluate": True})
        signature = self.signer(user).sign(bytes.fromhex(prepared["bytes"])).hex()
        endorse_at = f"/api/tx/{prepared['tx_id']}/endorse"
        endorsed = self.request(user, "POST", endorse_at, {"signature": signature})
        return json.dumps(endorsed["response"]).encode()

    # ------------------------------------------------------------------ Prover protocol

    def now_ms(self) -> int:
        """The network's clock as the gateway reports it (a simulated network's virtual time)."""
        return int(self.request(self._actor(), "GET", "/api/network")["clock_ms"])

    def prove(self, user: str, name: str, version: str = "") -> dict[str, Any]:
        """Order ``metadata`` signed here, then fetch the proof of the block that committed it."""
        args = [name, version] if version else [name]
        prepared = self.request(user, "POST", "/api/tx", {"function": "metadata", "args": args})
        tx_id = self.sign_and_send(user, prepared)["tx_id"]
        query = urlencode({"version": version, "tx_id": tx_id})
        proof: dict[str, Any] = self.request(
            user, "GET", f"/api/patches/{quote(name, safe='')}/proof?{query}"
        )
        return proof

    def _actor(self) -> str:
        if self.acting is None:
            raise Refused("file transfer: no member has made a request yet")
        return self.acting

    def publish_file(self, data: bytes) -> list[str]:
        return self.publish_file_as(self._actor(), data)

    def publish_file_as(self, user: str, data: bytes) -> list[str]:
        reply = self.request(
            user, "POST", "/api/files", content=data, content_type="application/octet-stream"
        )
        return list(reply["peers"])

    def fetch_file(self, ref: FileRef) -> FetchResult:
        return self.fetch_file_as(self._actor(), ref)

    def fetch_file_as(self, user: str, ref: FileRef) -> FetchResult:
        """Stream the file, refusing it as soon as it is longer than the ledger says."""
        target = f"/api/files/{ref.sha256}?size={ref.size}"
        headers = self.signed_headers(user, "GET", target, b"")
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        size = 0
        with self.http.stream("GET", target, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                raise _error(response)
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > ref.size:
                    raise DownloadFailed(ref, ())
                digest.update(chunk)
                chunks.append(chunk)
            served_by = response.headers.get("x-served-by", "")
        if size != ref.size or digest.hexdigest() != ref.sha256:
            raise DownloadFailed(ref, ())
        return FetchResult(b"".join(chunks), served_by, (), 0)


def _error(response: httpx.Response) -> HttpError:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return HttpError(response.status_code, body)


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise _error(response)
    return response.json()
