"""One live node: a PBFT replica, its ledger application and an MQTT transport.

The host is the live twin of the simulator's event loop, and just as thin:
it turns broker messages into ``Deliver`` events and elapsed time into
``Tick`` events, steps the same :class:`pbft.replica.Replica` the simulator
uses, and carries out each ``Output`` in the order PBFT needs: append the
records to the log with fsync, *then* publish the messages. Several queued
events are stepped before one fsync (group commit); their sends still wait
for it, so nothing leaves before what it depends on is durable.

The clock is monotonic (``time.monotonic_ns``) anchored once to the wall
clock at start, so timers never jump and agreed block timestamps are still
real dates. Endorsement requests from clients are answered here too, by the
application's endorser, outside PBFT.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from ledger.codec import CodecError, decode, encode
from pbft.api import CLIENT_ID_BASE, Application, Authenticator, Deliver, Output, Tick
from pbft.messages import Request
from sim.collector import fewer_collections
from sim.errors import InputError
from sim.fabric.blobs import DirectoryBlobStore, sha256_hex
from sim.live.cryptocount import counting_if_asked
from sim.live.filesweep import NodeFileSweep
from sim.live.latencytrace import LatencyTrace, tracing_asked
from sim.live.netconfig import NetworkConfig
from sim.live.tasks import stop_task
from sim.live.transport import BrokerURL, Incoming, Transport, record_tag
from sim.live.wal import RecordLog
from sim.live.wire import (
    BUSY,
    ENDORSE_REQUEST_TAG,
    FILE_REQUEST_TAG,
    Busy,
    EndorseRequest,
    EndorseResponse,
    FileRequest,
    FileResponse,
)

MAX_FILE_BYTES = 8 * 1024 * 1024
"""Largest patch file a node stores (it must fit one broker message)."""
FILE_QUOTA_BYTES = 512 * 1024 * 1024
"""Total bytes of patch files a node stores before it refuses more uploads."""
STATUS_FILE = "status.json"
BLOB_DIR = "blobs"
STATUS_INTERVAL_S = 0.5
MAX_EVENTS_PER_SYNC = 256
CLIENT_BATCH = 16
"""Client messages handled at most before the replica's pending output is flushed."""
RECONNECT_S = 0.5
GC_YOUNG_THRESHOLD = 50_000
"""Allocations between young-generation collections while a node runs (Python's default: 700).

A node's messages, records and rows die by reference counting; with the default
threshold the cyclic collector still ran some 40 times a second under load, and
its older generations rescanned the codec caches, the PBFT log and everything
loaded at start (measured: about 4 % of a node's CPU, a gen-2 pass 30 ms). What
exists once the node is open (keys, identities, the ledger's handles) is frozen,
never scanned again; cycles made later are still collected, only less often.
"""

R = TypeVar("R")
"""A request record type a peer may send a node."""

Endorser = Callable[[bytes, int], bytes]
"""Signed proposal bytes and the time in, endorser response bytes out (raises on garbage)."""


class Clock:
    """Monotonic milliseconds, anchored to the wall clock once at start."""

    def __init__(self) -> None:
        self._offset_ms = time.time_ns() // 1_000_000 - time.monotonic_ns() // 1_000_000

    def now_ms(self) -> int:
        return self._offset_ms + time.monotonic_ns() // 1_000_000


def _nothing() -> io.BytesIO:
    return io.BytesIO(b"")


@runtime_checkable
class DeferredDurability(Protocol):
    """An application that writes during steps and makes its writes durable when told."""

    def make_durable(self) -> None: ...


@dataclass
class NodeParts:
    """What a node is made of; built by :func:`sim.live.node.open_node`."""

    replica_id: int
    config: NetworkConfig
    node_dir: Path
    auth: Authenticator
    app: Application
    endorser: Endorser | None
    repaired: str = ""
    """What opening the data directory had to repair (a torn block-store tail), or ``""``."""


class NodeHost:
    """Drives one replica over one transport until stopped."""

    def __init__(self, parts: NodeParts) -> None:
        from pbft.replica import Replica

        self.parts = parts
        self.clock = Clock()
        self.log = RecordLog(parts.node_dir)
        pbft = parts.config.pbft
        if self.log.recovered:
            self.replica = Replica.restore(
                parts.replica_id, pbft, parts.auth, parts.app, self.log.recovered
            )
        else:
            self.replica = Replica(parts.replica_id, pbft, parts.auth, parts.app)
        app = parts.app
        self._make_app_durable = (
            app.make_durable if isinstance(app, DeferredDurability) else (lambda: None)
        )
        self.blobs = DirectoryBlobStore(parts.node_dir / BLOB_DIR)
        self.sweep = NodeFileSweep(self.blobs, parts.config, parts.app)  # (sim.live.filesweep)
        self.stored_bytes = sum(
            p.stat().st_size for p in (parts.node_dir / BLOB_DIR).rglob("*") if p.is_file()
        )
        self.wake_at: int | None = None
        self.stopping = asyncio.Event()
        self._last_status = 0.0
        self.started_at = time.time()
        self.watch_pid: int | None = None
        self.connections = 0
        self.crypto: Counter[str] | None = None
        """Signature work done so far, if the benchmark asked (``sim.live.cryptocount``)."""
        self.trace = LatencyTrace(parts.node_dir) if tracing_asked() else None
        """Request milestones, if asked (``sim.live.latencytrace``)."""

    def watched_alive(self) -> bool:
        """False once the process this node was told to outlive-not exits (test harnesses)."""
        if self.watch_pid is None:
            return True
        try:
            os.kill(self.watch_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.replica.stats)

    async def run(self, transport: Transport) -> None:
        self.transport = transport
        self.connections += 1
        self.write_status(force=True)
        await self._carry_out(self.replica.step(Tick(self.clock.now_ms())))
        while not self.stopping.is_set():
            incoming = await self._next_incoming()
            if self.trace is not None:
                queued = (transport.inbox.qsize(), transport.client_inbox.qsize())
                self.trace.begin(self.clock.now_ms(), queued)
            out = Output()
            budget = MAX_EVENTS_PER_SYNC
            while True:
                if incoming is not None:
                    out.extend(await self._handle(incoming))
                if self.wake_at is not None and self.clock.now_ms() >= self.wake_at:
                    self.wake_at = None
                    out.extend(self.replica.step(Tick(self.clock.now_ms())))
                budget -= 1
                # PBFT output waits for a few endorsements at most: once only client
                # work is queued, persist and send what the replica produced first.
                pending = bool(out.send or out.persist)
                client_work = transport.inbox.empty()
                if budget <= 0 or (client_work and pending and budget % CLIENT_BATCH == 0):
                    break
                incoming = transport.take()
                if incoming is None:
                    break
            await self._carry_out(out)
            await self._answer_busy()
            self.stored_bytes -= self.sweep.tick(self.clock.now_ms())
            self.write_status()
        self.write_status(force=True)

    async def _next_incoming(self) -> Incoming | None:
        if self.transport.lost.is_set() or not self.watched_alive():
            raise ConnectionLost
        found = self.transport.take()
        if found is not None:
            return found
        timeout = STATUS_INTERVAL_S
        if self.wake_at is not None:
            timeout = min(timeout, max(0.0, (self.wake_at - self.clock.now_ms()) / 1000))
        waits = [
            asyncio.ensure_future(event.wait())
            for event in (self.stopping, self.transport.lost, self.transport.arrived)
        ]
        await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
        for wait in waits:
            await stop_task(wait)
        return self.transport.take()

    async def _answer_busy(self) -> None:
        """Tell each client whose message was refused for load to retry later."""
        refused, self.transport.refused = self.transport.refused, []
        me = self.parts.replica_id
        for incoming in refused:
            tag = record_tag(incoming.payload)
            try:
                if tag == ENDORSE_REQUEST_TAG:
                    asked = decode(incoming.payload, EndorseRequest)
                    answer: Any = EndorseResponse(asked.request_id, me, b"", BUSY)
                elif tag == FILE_REQUEST_TAG:
                    wanted = decode(incoming.payload, FileRequest)
                    answer = FileResponse(wanted.request_id, me, wanted.digest, b"", BUSY)
                else:
                    request = decode(incoming.payload, Request)
                    answer = Busy(request.client, request.timestamp, me)
            except CodecError:
                continue  # garbage refused for load: nobody to answer
            await self.transport.send(incoming.sender, encode(answer))

    async def _handle(self, incoming: Incoming) -> Output:
        tag = record_tag(incoming.payload)
        if tag == ENDORSE_REQUEST_TAG:
            await self._endorse(incoming)
            return Output()
        if tag == FILE_REQUEST_TAG:
            await self._serve_file(incoming)
            return Output()
        if not self._signed_by_sender(incoming):
            self.transport.stats["drop.sender-mismatch"] += 1
            return Output()
        if self.trace is not None:
            with contextlib.suppress(CodecError):
                self.trace.delivered(self.clock.now_ms(), decode(incoming.payload))
        return self.replica.step(Deliver(self.clock.now_ms(), incoming.sender, incoming.payload))

    @staticmethod
    def _signed_by_sender(incoming: Incoming) -> bool:
        """Whether what came on a sender's topic is that sender's to send.

        A replica topic carries that replica's own messages, or a client request
        it relays to the primary; a client topic carries only that client's own
        requests. So a replayed vote (genuinely signed, by someone else) is
        refused before it costs a signature check. Undecodable bytes pass: the
        replica counts them with their reason.
        """
        try:
            message: Any = decode(incoming.payload)
        except CodecError:
            return True
        if isinstance(message, Request):
            return incoming.sender < CLIENT_ID_BASE or message.client == incoming.sender
        signer = getattr(message, "replica", None)
        return signer is None or signer == incoming.sender

    def _decode_request(self, incoming: Incoming, kind: type[R], service: str) -> R | None:
        """A peer's request, or ``None`` once its undecodability is counted (never raised)."""
        try:
            return decode(incoming.payload, kind)
        except CodecError as exc:
            self.transport.stats[f"drop.{service}.{exc.reason}"] += 1
            return None

    async def _serve_file(self, incoming: Incoming) -> None:
        """Patch files live beside the ledger, addressed by hash (``sim.fabric.blobs``)."""
        request = self._decode_request(incoming, FileRequest, "file")
        if request is None:
            return
        if request.client != incoming.sender:
            self.transport.stats["drop.file.sender-mismatch"] += 1
            return
        digest, data, error = request.digest, b"", ""
        try:
            if request.op == "put":
                error = self._refuse_upload(request)
                if error:
                    self.transport.stats["drop.file.refused"] += 1
                else:
                    known = self.blobs.has(sha256_hex(request.data))
                    digest = self.blobs.put(request.data)
                    self.stored_bytes += 0 if known else len(request.data)  # placed again: no disk
                    self.sweep.placed(digest, self.clock.now_ms())
            elif request.op == "get":
                with contextlib.closing(self.blobs.open(request.digest) or _nothing()) as f:
                    data = f.read()
                error = "" if data or self.blobs.has(request.digest) else "not stored here"
            else:
                error = f"unknown file operation {request.op!r}"
        except (OSError, ValueError) as exc:
            error = str(exc)
        reply = FileResponse(request.request_id, self.parts.replica_id, digest, data, error)
        await self.transport.send(request.client, encode(reply))

    def _refuse_upload(self, request: FileRequest) -> str:
        """Why this upload is refused (not an uploader, too big, over quota), or ``""``."""
        if not self.parts.config.may_upload(request.client):
            return "refused: this identity may not upload files"
        size = len(request.data)
        if size > MAX_FILE_BYTES:
            return f"refused: {size} bytes is over the {MAX_FILE_BYTES}-byte file limit"
        # Judged by the bytes' hash: the digest a client claims may be another file's.
        stored = self.blobs.has(sha256_hex(request.data))
        if self.stored_bytes + size > FILE_QUOTA_BYTES and not stored:
            return f"refused: the node's {FILE_QUOTA_BYTES}-byte file quota is full"
        return ""

    async def _endorse(self, incoming: Incoming) -> None:
        request = self._decode_request(incoming, EndorseRequest, "endorse")
        if request is None:
            return
        if request.client != incoming.sender or self.parts.endorser is None:
            self.transport.stats["drop.endorse.refused"] += 1
            return
        response, error = b"", ""
        if self.trace is not None:
            self.trace.endorsing(self.clock.now_ms(), request.proposal)
        try:
            response = self.parts.endorser(request.proposal, self.clock.now_ms())
        except Exception as exc:  # a peer's bad proposal must never stop the node
            error = str(exc) or type(exc).__name__
        reply = EndorseResponse(request.request_id, self.parts.replica_id, response, error)
        await self.transport.send(request.client, encode(reply))

    async def _carry_out(self, out: Output) -> None:
        """Persist (fsync), then send: PBFT's order, for a whole group of steps at once.

        The blocks the steps committed are made durable first, then the records that
        say they were executed: the order a crash between the two fsyncs needs.
        """
        self._make_app_durable()
        self.log.append(out.persist, out.compact)
        durable_ms = self.clock.now_ms()
        for send in out.send:
            await self.transport.send(send.to, encode(send.message))
        await self.transport.flush()  # with the group's endorsements and busy answers
        if self.trace is not None:
            sent = [send.message for send in out.send]
            self.trace.carried_out(sent, durable_ms, self.clock.now_ms())
        if out.wake_at_ms is not None and (self.wake_at is None or out.wake_at_ms < self.wake_at):
            self.wake_at = out.wake_at_ms

    def status(self) -> dict[str, Any]:
        app = self.parts.app
        replica = self.replica
        return {
            "id": self.parts.replica_id,
            "pid": os.getpid(),
            "view": replica.view,
            "in_view_change": replica.in_view_change,
            "height": app.last_executed + 1,
            "last_executed": app.last_executed,
            "head_hash": app.head_digest.hex(),
            "stable_checkpoint": replica.stable_checkpoint,
            "dropped": {
                **{k: v for k, v in replica.stats.items() if k.startswith("drop")},
                **{k: v for k, v in self.transport.stats.items() if k.startswith("drop")},
            },
            "stats": {**dict(replica.stats), **dict(self.transport.stats)},
            "log_syncs": self.log.syncs,
            "connections": self.connections,
            "recovered_records": len(self.log.recovered),
            "disk_repair": self.parts.repaired,
            **({} if self.crypto is None else {"crypto": dict(self.crypto)}),
            "started_at": self.started_at,
            "updated_at": time.time(),
        }

    def write_status(self, force: bool = False) -> None:
        """Atomically replace ``status.json`` (at most every STATUS_INTERVAL_S)."""
        now = time.monotonic()
        if not force and now - self._last_status < STATUS_INTERVAL_S:
            return
        self._last_status = now
        path = self.parts.node_dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(), sort_keys=True))
        tmp.replace(path)


class ConnectionLost(Exception):
    """The broker went away (or the watched process did); the node reconnects or stops."""


async def serve(parts: NodeParts, broker: BrokerURL, watch_pid: int | None = None) -> None:
    """Run a node until SIGTERM/SIGINT (or until ``watch_pid`` exits).

    The first connection failing is the user's problem (an InputError: wrong
    URL, broker down, bad credentials). Losing the broker later is a network
    fault like any other: the replica keeps its state in memory and the node
    reconnects every second; PBFT retransmission and state transfer make up
    for what was lost meanwhile.
    """
    with counting_if_asked() as crypto:
        await _serve(parts, broker, watch_pid, crypto)


async def _serve(
    parts: NodeParts, broker: BrokerURL, watch_pid: int | None, crypto: Counter[str] | None
) -> None:
    host = NodeHost(parts)
    host.watch_pid = watch_pid
    host.crypto = crypto
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(socket_errors_in_one_line)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.stopping.set)
    connected_once = False
    try:
        with fewer_collections(GC_YOUNG_THRESHOLD, collect_first=True):
            while not host.stopping.is_set() and host.watched_alive():
                try:
                    async with Transport(broker, parts.config.net, parts.replica_id) as transport:
                        connected_once = True
                        await host.run(transport)
                except ConnectionLost:
                    pass
                except InputError:
                    if not connected_once:
                        raise
                if not host.stopping.is_set():
                    await asyncio.sleep(RECONNECT_S)
    finally:
        host.log.close()
        if host.trace is not None:
            host.trace.close()


def socket_errors_in_one_line(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A callback left on a socket the broker just closed (a broker restart) fails with
    an OSError inside the MQTT client's event-loop callbacks: an expected network fault,
    said in one line; anything else keeps asyncio's full report."""
    exc = context.get("exception")
    if isinstance(exc, OSError):
        message = context.get("message", "socket callback failed")
        print(f"node: transport: {message}: {exc}", file=sys.stderr, flush=True)
        return
    loop.default_exception_handler(context)


def read_status(node_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((node_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data


def require(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)
