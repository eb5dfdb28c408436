"""Executing committed batches strictly in order, exactly once, and replying to clients.

Both execution paths, agreement (``_execute_ready``) and state transfer, go
through ``_apply``, so the bookkeeping after a batch (client timestamps,
replies, timers, taking a checkpoint every K) cannot diverge between them.
Freshness is decided from the chain alone, so correct replicas agree on it
(OSDI'99 4.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ledger.codec import constructor, field_signer
from pbft.api import Send
from pbft.log import lowest_numbered
from pbft.messages import (
    CommittedBatch,
    Reply,
    Request,
    signed,
)
from pbft.rules import ReplicaRules


class Execution(ReplicaRules):
    """In-order, exactly-once execution and the reply cache."""

    def _execute_ready(self) -> None:
        while (slot := self.next_executable()) is not None:
            pp = slot.pre_prepare
            assert pp is not None
            votes = slot.commit_votes(pp)
            cert = lowest_numbered(votes, self.commit_quorum())
            slot.executed = True
            self._apply(
                CommittedBatch(pp.seq, pp.view, pp.timestamp_ms, pp.requests, cert), reply=True
            )

    def _apply(self, batch: CommittedBatch, reply: bool) -> None:
        """Execute one batch and do the bookkeeping every execution path shares."""
        fresh = self._freshness(batch.requests)
        results = self.app.execute(batch, fresh)
        self._out.executed.append(batch)
        self._out.fresh.append(fresh)
        self._vc_attempts = 0
        self._last_agreed = max(self._last_agreed, batch.timestamp_ms)
        # Per request of the batch (160 replies per batch at n = 16): the state it
        # touches is looked up once per batch, and each reply is signed and sent as
        # ``_signed`` and ``_send`` would, without two calls per reply, and through
        # the codec's signer for replies, found once (module-level ``_sign_reply``).
        last_ts, proposed, replies = self._last_ts, self._proposed, self._replies
        waiting_for, pending_for = self._waiting, self._pending
        view, me = self.view, self.id
        sign, send, sign_reply = self.auth.sign, self._out.send.append, _sign_reply
        for req, result, new in zip(batch.requests, results, fresh, strict=True):
            if not new:
                continue
            client, timestamp = req.client, req.timestamp
            last_ts[client] = timestamp
            if proposed:  # only the primary's own proposals are in it
                proposed.discard((client, timestamp))
            waiting = waiting_for.get(client)
            if waiting is not None and waiting.timestamp <= timestamp:
                del waiting_for[client]
            pending = pending_for.get(client)
            if pending is not None and pending.timestamp <= timestamp:
                del pending_for[client]
            if reply:
                fields = (view, timestamp, client, me, result)
                answer = sign_reply(fields, sign)
                if answer is None:  # a result of another type than bytes: the general way
                    answer = signed(Reply, fields, sign)
                replies[client] = answer
                send(_make_send(client, answer))
            else:
                replies.pop(client, None)
        self._replies_seq = batch.seq
        if self._status_at is not None:
            self._status_at = self._now + self.config.status_interval_ms
        # The view-change timer runs only while some request waits (OSDI'99 4.4).
        if not self.in_view_change:
            watching = bool(self._waiting) and self._is_backup()
            self._vc_deadline = self._now + self._vc_timeout() if watching else None
        if batch.seq % self.config.checkpoint_interval == 0:
            self._take_checkpoint(batch.seq)

    def _freshness(self, requests: Sequence[Request]) -> tuple[bool, ...]:
        return freshness(requests, self._last_ts)


_sign_reply = field_signer(Reply)
"""``sign_fields(Reply, ...)`` without finding the signer per reply (``signed`` ->
``sign_fields`` -> the signer): ``None`` for fields it does not apply to."""
_make_send = constructor(Send)
"""``Send(to, message)`` without the call of the class (one per reply)."""


def freshness(requests: Sequence[Request], last_executed: Mapping[int, int]) -> tuple[bool, ...]:
    """Exactly-once (OSDI'99 4.1), decided from the chain alone so correct replicas agree.

    A request is stale if its client already had this timestamp or a later one
    executed, earlier in the chain (``last_executed``: client -> timestamp) or
    earlier in the same batch. Public because anyone replaying a chain (``ledger
    verify``) must reach the same verdicts as the replicas did.
    """
    latest: dict[int, int] = {}
    fresh: list[bool] = []
    for req in requests:
        last = latest.get(req.client)
        if last is None:
            last = last_executed.get(req.client, -1)
        new = req.timestamp > last
        fresh.append(new)
        if new:
            latest[req.client] = req.timestamp
    return tuple(fresh)
