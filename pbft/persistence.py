"""What a replica persists and how it comes back after a crash.

The records (``pbft.records`` plus the protocol messages a replica sent or
accepted as proof) are enough to never contradict what it said before the
crash: its view, its sent PRE-PREPAREs, PREPAREs and COMMITs, its prepared
certificates, VIEW-CHANGE and NEW-VIEW, and its stable checkpoint. A stable
checkpoint compacts them into one ``Snapshot``. Client bookkeeping is rebuilt
from the snapshot and the application's chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

from ledger.codec import decode
from pbft.api import (
    Application,
    Authenticator,
    PBFTConfig,
)
from pbft.messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    Request,
    ViewChange,
)
from pbft.records import Snapshot, StableRecord, ViewRecord
from pbft.rules import ReplicaRules


class Persistence(ReplicaRules):
    """Snapshots, restoring from persisted records, and re-arming after a restart."""

    def _snapshot(self) -> Snapshot:
        prepared: list[PreparedProof] = []
        sent: list[PrePrepare | Prepare | Commit] = []
        for seq in sorted(self._log):
            slot = self._log[seq]
            if slot.prepared_proof is not None:
                prepared.append(slot.prepared_proof)
            pp = slot.pre_prepare
            if pp is not None and pp.replica == self.id:
                sent.append(pp)
            if slot.sent_prepare is not None:
                sent.append(slot.sent_prepare)
            if slot.sent_commit is not None:
                sent.append(slot.sent_commit)
        return Snapshot(
            self.view,
            self.in_view_change,
            self._h,
            self._stable_proof,
            tuple(prepared),
            tuple(sent),
            self._vc_latest.get(self.id),
            self._new_view,
            tuple(self._replies[c] for c in sorted(self._replies)),
            self._replies_seq,
            tuple(sorted(self._last_ts.items())),
        )

    def _rescan_clients(self, after: int) -> None:
        """Rebuild each client's last executed timestamp, and its reply, from the application.

        Replies to requests executed after ``after`` were never persisted. If the
        application can say what those requests returned (the optional
        ``results_at(seq)``, see ``pbft.api.Application``) the reply cache is
        rebuilt, so a client retransmitting after our restart is answered
        rather than ignored. Otherwise the entry is dropped, which is still
        safe and live: with at most f faulty (crashed ones included), f+1
        correct replicas that did not restart hold the reply.
        """
        results_at = getattr(self.app, "results_at", None)
        latest: dict[int, tuple[Request, bytes]] = {}
        for seq in range(after + 1, self.app.last_executed + 1):
            batch = self.app.batch_at(seq)
            if batch is None:
                continue
            results = results_at(seq) if results_at is not None else None
            fresh = self._freshness(batch.requests)
            for k, req in enumerate(batch.requests):
                if not fresh[k]:
                    continue
                self._last_ts[req.client] = req.timestamp
                self._replies.pop(req.client, None)
                if results is not None and len(results) == len(batch.requests):
                    latest[req.client] = (req, results[k])
                else:
                    latest.pop(req.client, None)
        for client in sorted(latest):
            req, result = latest[client]
            self._replies[client] = self._sign(
                Reply(self.view, req.timestamp, client, self.id, result, b"")
            )
        self._replies_seq = self.app.last_executed

    @classmethod
    def restore(
        cls,
        replica_id: int,
        config: PBFTConfig,
        auth: Authenticator,
        app: Application,
        records: Iterable[bytes],
    ) -> Self:
        """Rebuild a replica from what it persisted (a storage error raises: the node stops)."""
        replica = cls(replica_id, config, auth, app)
        # Client bookkeeping comes from the snapshot (if any) plus a rescan after it.
        replica._last_ts.clear()
        replica._replies.clear()
        replica._replies_seq = 0
        for data in records:
            replica._load_record(decode(data))
        if replica._replies_seq > app.last_executed:
            # The snapshot's client table is ahead of the application: its store was cut
            # back below the checkpoint (a torn tail repaired). Trusted, it would make the
            # refilled batches' requests look executed already; the application decides.
            replica._last_ts.clear()
            replica._replies.clear()
            replica._replies_seq = 0
        replica._rescan_clients(replica._replies_seq)
        if not replica.in_view_change and replica.primary == replica.id:
            top = max(
                (
                    s.seq
                    for s in replica._log.values()
                    if s.pre_prepare is not None and s.pre_prepare.view == replica.view
                ),
                default=0,
            )
            replica._seq_next = max(top, replica._h, app.last_executed) + 1
            held = (s.pre_prepare for s in replica._log.values() if s.pre_prepare is not None)
            mine = [pp.timestamp_ms for pp in held if pp.replica == replica.id]
            replica._last_pp_time = max([replica._last_agreed, *mine])
        replica._arm_pending = True
        return replica

    def _load_record(self, rec: Any) -> None:
        kind = type(rec)
        if kind is Snapshot:
            self._log.clear()
            self.view, self.in_view_change = rec.view, rec.in_view_change
            self._set_stable(rec.stable_seq, rec.proof)
            self._replies = {r.client: r for r in rec.replies}
            self._last_ts = dict(rec.client_timestamps)
            self._replies_seq = rec.replies_seq
            self._vc_latest.clear()
            if rec.view_change is not None:
                self._vc_latest[self.id] = rec.view_change
            self._new_view = rec.new_view
            for proof in rec.prepared:
                self._load_record(proof)
            for msg in rec.sent:
                self._load_record(msg)
        elif kind is ViewRecord:
            if rec.view != self.view:
                for slot in self._log.values():
                    slot.enter_view(rec.view)
            self.view, self.in_view_change = rec.view, rec.in_view_change
        elif kind is StableRecord:
            self._set_stable(rec.seq, rec.proof)
        elif kind is PreparedProof:
            pp = rec.pre_prepare
            if pp.seq <= self._h:
                return
            slot = self._slot(pp.seq)
            held = slot.prepared_proof
            if held is None or held.pre_prepare.view <= pp.view:
                slot.prepared_proof = rec
            if pp.view == self.view:
                slot.pre_prepare = pp
                for p in rec.prepares:
                    slot.add_prepare(p)
                slot.prepared = True
        elif kind in (PrePrepare, Prepare, Commit):
            if rec.seq <= self._h or rec.view != self.view:
                return
            slot = self._slot(rec.seq)
            if kind is PrePrepare:
                slot.pre_prepare = rec
            elif kind is Prepare:
                slot.sent_prepare = rec
                slot.add_prepare(rec)
            else:
                slot.sent_commit = rec
                slot.add_commit(rec)
        elif kind is ViewChange:
            self._vc_latest[self.id] = rec
        elif kind is NewView:
            self._new_view = rec
            for pp in rec.pre_prepares:
                if pp.seq > self._h and rec.view == self.view:
                    self._slot(pp.seq).pre_prepare = pp
        else:
            raise ValueError(f"unexpected persisted record {kind.__name__}")

    def _set_stable(self, seq: int, proof: tuple[Checkpoint, ...]) -> None:
        self._h = seq
        self._stable_proof = proof
        for s in [s for s in self._log if s <= seq]:
            del self._log[s]

    def _arm_after_restore(self) -> None:
        self._arm_pending = False
        own = self._vc_latest.get(self.id)
        if self.in_view_change and own is not None and own.new_view == self.view:
            # Others may have moved on while we were down: announce where we are, so
            # the primary of that view answers with its NEW-VIEW.
            self._broadcast(own)
            self._vc_resend_at = self._now + self.config.view_change_timeout_ms
            self._arm_view_change_timer()
        if self.app.last_executed < self._h:
            self._start_fetch()
        self._arm_status()
