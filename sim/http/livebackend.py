"""The HTTP gateway over a live network (``net up``): MQTT to the nodes, as its own client.

The gateway is a PBFT client under its own identity (:mod:`sim.live.gatewayid`):
it relays the envelopes its callers sealed, and peers endorse and validate
them by their creators' signatures. All MQTT work runs on one event loop in a
background thread; the HTTP worker threads hand it coroutines and wait.

Failover is the live client's: a proposal goes to every peer at once and the
first agreeing group that satisfies the policy wins, so a dead peer only
costs its own answer; a request is retransmitted to every replica when the
primary is silent, and the backups change view; a file is fetched from the
peers in random order. Blocks, transactions and proofs are read from the
nodes' block stores on this host (:mod:`sim.live.chain`), running nodes first.

Reads whose answer depends on who asks (:data:`SIGNED_READS`: administrators'
audits, a device's own release) cannot be run "as" a caller without their
signature, so here they take the write flow's first two steps: prepare, sign,
endorse; the endorsement carries the answer and nothing is ordered (a 409 with
``kind: sign-to-read`` says so). Only the catalog, the same for every member,
is evaluated under the gateway's own identity.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import random
import threading
from collections import deque
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ledger.codec import decode
from ledger.transaction import Envelope, SignedProposal, TxHeader, TxPayload
from msp.errors import MSPError
from sim.errors import InputError
from sim.fabric.distribution import FetchResult, FileRef
from sim.fabric.sdk import EndorsementFailed
from sim.http.activity import SECOND_MS, ledger_figures
from sim.http.backend import Endorsed, NotOrdered, Ordered, status_of, window_blocks
from sim.http.errors import ApiError
from sim.http.identities import Member
from sim.live import faultlog
from sim.live.chain import NodeChain, first_chain, running
from sim.live.client import Busy, ClientPool
from sim.live.gateway import LiveGateway, fetch_file, proof_of, put_file
from sim.live.gatewayid import require_gateway
from sim.live.host import read_status, socket_errors_in_one_line
from sim.live.netconfig import load_config, node_dir
from sim.live.node import crypto_root

T = TypeVar("T")
SIGNED_READS = ("metadata", "history", "compliance")
"""Reads whose answer depends on who asks (administrators only; a device's own release)."""
CLIENTS = 8
"""PBFT client ids the gateway uses at once (one outstanding request each)."""
CALL_TIMEOUT_S = 60.0
MESSAGE_SAMPLES = 600


class LiveBackend:
    kind = "live"

    def __init__(self, directory: Path) -> None:
        self.root = directory
        self.config = load_config(directory)
        self.own_identity = require_gateway(self.config, str(directory / "network.json"))
        self.crypto_dir = crypto_root(self.config, directory)
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(socket_errors_in_one_line)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.rng = random.SystemRandom()
        self._samples: deque[tuple[int, int]] = deque(maxlen=MESSAGE_SAMPLES)
        try:
            self.pool = self._run(self._open_pool())
        except BaseException:
            self._stop_loop()
            raise
        self.gateway = LiveGateway(self.pool)
        self.msps = self.pool.directory_ids.msps

    async def _open_pool(self) -> ClientPool:
        pool = ClientPool(self.root, self.own_identity, CLIENTS, config=self.config)
        return await pool.__aenter__()

    def _run(self, work: Coroutine[Any, Any, T], timeout_s: float = CALL_TIMEOUT_S) -> T:
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise InputError(f"the live network did not answer within {timeout_s:.0f} s") from None

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    def close(self) -> None:
        self._run(self.pool.__aexit__(None, None, None))
        self._stop_loop()

    # ------------------------------------------------------------------ writes

    def proposal_time(self) -> int:
        return self.pool.clock.now_ms()

    def endorse(self, signed: SignedProposal, header: TxHeader) -> Endorsed:
        try:
            result, endorsements, identities = self._run(
                self.gateway.collect(signed, header.timestamp_ms)
            )
        except Busy as exc:
            raise ApiError(503, f"{header.function}: {exc}") from None
        return Endorsed(result, endorsements, [i.name for i in identities])

    def order(self, envelope: bytes, member: Member, header: TxHeader) -> Ordered:
        try:
            outcome = self._run(self.gateway.order(header.tx_id, envelope))
        except Busy as exc:
            raise ApiError(503, f"{header.function}: {exc}", tx_id=header.tx_id) from None
        if not outcome.valid:
            message = f"{header.function}: transaction {header.tx_id[:12]} is {outcome.name}"
            raise NotOrdered(message, outcome.name)
        return Ordered(outcome.name, None, self._endorsers(envelope))

    def _endorsers(self, envelope: bytes) -> list[str]:
        payload = decode(decode(envelope, Envelope).payload, TxPayload)
        found = []
        for endorsement in payload.endorsements:
            who = endorsement.endorser
            try:
                found.append(self.msps.identity(who.mspid, who.cert_pem).name)
            except MSPError:
                continue
        return sorted(found)

    # ------------------------------------------------------------------ reads

    def query(self, member: Member, function: str, args: Sequence[str]) -> bytes:
        """A read open to every member, evaluated by the peers under the gateway's identity."""
        if function in SIGNED_READS:
            raise ApiError(
                409,
                f"{function} is answered according to who asks, and on a live network the "
                "gateway cannot ask as you: sign it yourself (POST /api/tx with this function, "
                "then POST /api/tx/{tx_id}/endorse; the answer is in 'response', "
                "nothing is ordered)",
                kind="sign-to-read",
            )
        try:
            return self._run(self.gateway.evaluate(function, *args))
        except EndorsementFailed as exc:
            raise ApiError(status_of(str(exc)), f"{function}: {exc}") from None
        except Busy as exc:
            raise ApiError(503, f"{function}: {exc}") from None

    @contextmanager
    def chain(self) -> Iterator[NodeChain]:
        with first_chain(self.root, self.config) as chain:
            yield chain

    def proof_of(self, tx_id: str, name: str, version: str) -> dict[str, Any]:
        return proof_of(self.root, self.config, self.pool.directory_ids, tx_id, name, version)

    # ------------------------------------------------------------------ files

    def publish(self, data: bytes) -> list[str]:
        return self._run(put_file(self.pool, data))

    def fetch(self, ref: FileRef) -> FetchResult:
        return self._run(fetch_file(self.pool, ref, self.rng))

    # ------------------------------------------------------------------ network

    def _statuses(self) -> list[dict[str, Any]]:
        return node_statuses(self.root, self.config.n)

    def nodes(self) -> dict[str, Any]:
        rows = []
        for replica, status in enumerate(self._statuses()):
            up = running(self.root, replica)
            view = status.get("view")
            rows.append(
                {
                    "replica": replica,
                    "peer": self.config.replicas[replica].name,
                    "up": up,
                    "role": "primary"
                    if isinstance(view, int) and replica == view % self.config.n
                    else "backup",
                    "byzantine": None,
                    "view": view,
                    "in_view_change": status.get("in_view_change"),
                    "height": status.get("height") if up else None,
                    "head": status.get("head_hash") if up else None,
                }
            )
        return {
            "kind": self.kind,
            "clock_ms": self.pool.clock.now_ms(),
            "net": self.config.net,
            "nodes": rows,
        }

    def activity(self, seconds: int) -> dict[str, Any]:
        """Blocks per second from a node's store, messages from the nodes' own counters
        (sampled each time this is asked), faults from ``faults.jsonl``, down from the pids."""
        until = self.pool.clock.now_ms()
        since = max(0, until - seconds * SECOND_MS + 1)
        with first_chain(self.root, self.config) as chain:
            blocks = window_blocks(chain, since)
        statuses = self._statuses()
        self._samples.append((until, messages_sent(statuses)))
        down = {
            str(i): "process not running" for i in range(self.config.n) if not running(self.root, i)
        }
        return {
            "clock": "this host's wall-clock milliseconds (the live nodes' block times)",
            "since_ms": since,
            "until_ms": until,
            "window_s": seconds,
            "ledger": ledger_figures(blocks, since, until),
            "gateway_sessions": {
                "per_second": self._message_rates(since, until),
                "events": _fault_events(faultlog.read(self.root, since, until)),
                "sessions": 0,
                "source": "messages sent by all nodes, sampled from their status files",
            },
            "down": down,
            "byzantine": {},
        }

    def _message_rates(self, since: int, until: int) -> list[dict[str, int]]:
        seconds = range(since // SECOND_MS, until // SECOND_MS + 1)
        rates = dict.fromkeys(seconds, 0)
        for (t0, c0), (t1, c1) in itertools.pairwise(self._samples):
            if c1 < c0 or t1 <= t0:
                continue  # a node restarted and its counters began again
            rate = round((c1 - c0) * SECOND_MS / (t1 - t0))
            for second in range(t0 // SECOND_MS, t1 // SECOND_MS + 1):
                if second in rates:
                    rates[second] = rate
        return [{"second": s, "messages": rates[s]} for s in seconds]


def node_statuses(root: Path, n: int) -> list[dict[str, Any]]:
    """Each node's ``status.json``; ``{}`` for one missing, garbled or not a JSON object
    (the network view must answer whatever a node's directory holds)."""
    found: list[dict[str, Any]] = []
    for replica in range(n):
        try:
            status = read_status(node_dir(root, replica))
        except RecursionError:  # nested past the parser's limit
            status = None
        found.append(status if isinstance(status, dict) else {})
    return found


def messages_sent(statuses: list[dict[str, Any]]) -> int:
    """Messages sent by all nodes, by their own counters (what is not a count counts 0)."""
    total = 0
    for status in statuses:
        stats = status.get("stats")
        sent = stats.get("sent") if isinstance(stats, dict) else None
        total += sent if isinstance(sent, int) and not isinstance(sent, bool) else 0
    return total


def _fault_events(logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``faults.jsonl`` lines as the network view's marks (one per node struck)."""
    marks = []
    for event in logged:
        replicas = event.get("replicas") or [None]
        for replica in replicas if isinstance(replicas, list) else [None]:
            marks.append(
                {
                    "t_ms": event["t_ms"],
                    "kind": "fault",
                    "source": str(event.get("source", "")),
                    "replica": replica if isinstance(replica, int) else None,
                    "view": None,
                    "detail": f"{event.get('kind', '?')} ({event.get('phase', '?')})",
                }
            )
    return marks
