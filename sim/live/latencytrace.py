"""Where a request's time goes on a live node: an opt-in trace of its milestones.

Set ``LEDGERSIM_LATENCY_TRACE=1`` in a node's environment and the host appends
one JSON line per group of steps to ``<data dir>/latency.trace``: when the group
began, when its blocks and PBFT records were durable, when its messages were
handed to the broker, and which requests it saw reach this node, be put in a
PRE-PREPARE, be prepared (this node's COMMIT) and be executed (its REPLY).
The clock is the host's (wall-anchored milliseconds), the same on every node of
one machine, so ``sim.live.latencyreport`` can line the nodes up against the
proposal's own creation time (``TxHeader.timestamp_ms``, the client's clock).

Tracing decodes each request's transaction once more and writes a file per
group of steps: it is for finding latency, never for measuring CPU.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ledger.codec import CodecError, decode
from ledger.transaction import Envelope, SignedProposal, TxHeader, TxPayload
from pbft.messages import Commit, PrePrepare, Reply, Request

ENV = "LEDGERSIM_LATENCY_TRACE"
TRACE_FILE = "latency.trace"


def tracing_asked() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def _key(request: Request) -> str:
    return f"{request.client}:{request.timestamp}"


def created_ms(request: Request) -> int | None:
    """The proposal's creation time on the client's clock, if the request carries one."""
    try:
        payload = decode(decode(request.operation, Envelope).payload, TxPayload)
    except CodecError:
        return None
    return payload.header.timestamp_ms


class LatencyTrace:
    """Milestones of one group of steps, written as one line when the group is carried out."""

    def __init__(self, node_dir: Path) -> None:
        self._file: TextIO = open(node_dir / TRACE_FILE, "a", encoding="ascii")  # noqa: SIM115
        self._group: dict[str, Any] = {}
        self.begin(0)

    def begin(self, now_ms: int, queued: tuple[int, int] = (0, 0)) -> None:
        """A group of steps starts, with (replica, client) messages still queued."""
        self._group = {
            "begin": now_ms,
            "queued": list(queued),
            "arrived": [],
            "pp_in": [],
            "events": [],
            "endorsed": [],
        }

    def endorsing(self, now_ms: int, proposal: bytes) -> None:
        """This node starts endorsing a proposal (created when, on the client's clock)."""
        try:
            header = decode(decode(proposal, SignedProposal).proposal, TxHeader)
        except CodecError:
            return
        self._group["endorsed"].append([now_ms, header.timestamp_ms])

    def delivered(self, now_ms: int, message: object) -> None:
        """A message reached the replica: a client's request, or a PRE-PREPARE."""
        if isinstance(message, Request):
            self._group["arrived"].append([now_ms, _key(message), created_ms(message)])
        elif isinstance(message, PrePrepare):
            self._group["pp_in"].append([now_ms, message.seq, [_key(r) for r in message.requests]])

    def carried_out(self, sent: Sequence[object], durable_ms: int, published_ms: int) -> None:
        group = self._group
        for message in sent:
            if isinstance(message, PrePrepare):
                group["events"].append(["pp", message.seq, [_key(r) for r in message.requests]])
            elif isinstance(message, Commit):
                group["events"].append(["commit", message.seq])
            elif isinstance(message, Reply):
                group["events"].append(["reply", f"{message.client}:{message.timestamp}"])
        group["durable"] = durable_ms
        group["published"] = published_ms
        if group["arrived"] or group["pp_in"] or group["events"] or group["endorsed"]:
            self._file.write(json.dumps(group, separators=(",", ":")) + "\n")
        self.begin(published_ms)

    def close(self) -> None:
        self._file.close()
