"""The state every part of a replica shares, and the helpers they all use to act on it.

The replica is one object assembled from mixins (see ``pbft.replica``); this
base class creates all of its state, so each part reads and writes the same
fields, and the per-step output (``_out``) is filled by whichever part acts.
It also declares, for the type checker only, the operations one part calls in
another, which makes the coupling between the parts explicit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ledger.codec import encode_unshared
from pbft.api import (
    BROADCAST,
    Application,
    Authenticator,
    Output,
    PBFTConfig,
    Send,
)
from pbft.log import Slot
from pbft.messages import (
    Checkpoint,
    Commit,
    CommittedBatch,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    Reply,
    Request,
    Status,
    ViewChange,
    sign_message,
    signed,
)
from pbft.records import Snapshot

M = TypeVar("M")

VoteMessage = PrePrepare | Prepare | Commit


class ReplicaState:
    """The fields of one replica, its read-only views, and the output helpers."""

    _handlers: dict[type, Callable[[Any, int], None]]
    """Message type -> handler; filled in by ``Replica``, which holds every handler."""

    def __init__(
        self, replica_id: int, config: PBFTConfig, auth: Authenticator, app: Application
    ) -> None:
        if not 0 <= replica_id < config.n:
            raise ValueError(f"replica_id {replica_id} not in 0..{config.n - 1}")
        self.id = replica_id
        self.config = config
        self._quorum = config.quorum
        """``config.quorum``, read for every vote: the config is frozen, so it is kept here."""
        self.auth = auth
        self.app = app
        self.stats: Counter[str] = Counter()
        self.n = config.n
        self.f = config.f
        # Plain attributes, not properties: the host reads both after every step.
        self.view = 0
        """The current view; read by hosts between steps, written only by the replica."""
        self.in_view_change = False
        """Collecting VIEW-CHANGEs for ``view`` (not yet installed by a NEW-VIEW)."""
        # Stable checkpoint: low watermark h and its quorum proof (OSDI'99 4.3).
        self._h = 0
        self._stable_proof: tuple[Checkpoint, ...] = ()
        self._log: dict[int, Slot] = {}
        # Primary side of batching.
        self._seq_next = app.last_executed + 1
        # Agreed time of the newest executed batch: the floor for the next one.
        head = app.batch_at(app.last_executed) if app.last_executed else None
        self._last_agreed = head.timestamp_ms if head is not None else 0
        self._last_pp_time = self._last_agreed
        self._pending: dict[int, Request] = {}
        self._proposed: set[tuple[int, int]] = set()
        self._batch_deadline: int | None = None
        self._flush_owed = False
        # Requests known and not yet executed (one per client: PBFT clients have one
        # outstanding request); they keep the view-change timer running.
        self._waiting: dict[int, Request] = {}
        # Waiting requests whose first request-timer expiry has passed (forwarded to all).
        self._forwarded: set[tuple[int, int]] = set()
        self._last_ts: dict[int, int] = {}
        self._replies: dict[int, Reply] = {}
        self._replies_seq = 0
        # Checkpoint votes: seq -> digest -> replica -> message.
        self._cp_votes: dict[int, dict[bytes, dict[int, Checkpoint]]] = {}
        self._far_cp: dict[int, int] = {}
        self._my_cp: dict[int, Checkpoint] = {}
        # View change.
        self._vc_latest: dict[int, ViewChange] = {}
        self._new_view: NewView | None = None
        self._vc_deadline: int | None = None
        self._vc_attempts = 0
        self._vc_resend_at: int | None = None
        self._ahead: dict[int, int] = {}
        """Replica -> highest view it was seen working in (validly signed evidence)."""
        self._active_in_view: set[int] = set()
        """Replicas seen working in the view we are changing to (this view change, last timeout)."""
        self._catch_up_asked = 0
        """Highest view whose NEW-VIEW we asked the replicas seen in it for (one ask per view)."""
        self._stash: list[VoteMessage] = []
        self._stash_limit = 4 * config.n * config.watermark_window
        self._stash_quota = 2 * config.watermark_window
        """Per sender: a correct replica has at most a pre-prepare/prepare/commit... per slot
        of one window ahead of us; 2L leaves room for two views' worth of PREPARE+COMMIT."""
        # State transfer.
        self._fetch_seq = 0
        self._fetch_attempt = 0
        self._fetch_deadline: int | None = None
        # Retransmission (TOCS'02 5.2): STATUS every R while stalled.
        self._status_at: int | None = None
        self._seen_above = False
        self._status_answered: dict[int, int] = {}
        """Sender -> when we last answered its STATUS (one answer per sender per R)."""
        self._late_vc_answered: dict[int, int] = {}
        """Sender -> when we last answered its late VIEW-CHANGE with our NEW-VIEW."""
        # Per-step context.
        self._now = 0
        self._out = Output()
        self._wire = b""
        self._arm_pending = False

    if TYPE_CHECKING:
        # Operations one part calls in another (each defined once, in the mixin named).

        # normal_case.NormalCase
        def _try_propose(self, flush: bool = False) -> None: ...
        def _check_prepared(self, slot: Slot) -> None: ...

        # execution.Execution
        def _execute_ready(self) -> None: ...
        def _apply(self, batch: CommittedBatch, reply: bool) -> None: ...
        def _freshness(self, requests: Sequence[Request]) -> tuple[bool, ...]: ...

        # checkpoints.Checkpointing
        def _take_checkpoint(self, seq: int) -> None: ...
        def _make_stable(self, seq: int, digest: bytes, proof: tuple[Checkpoint, ...]) -> None: ...

        # state_transfer.StateTransfer
        def _start_fetch(self) -> None: ...

        # retransmit.Retransmission
        def _arm_status(self) -> None: ...
        def _status(self, ask: bool) -> Status: ...
        def _may_answer(self, peer: int, answered: dict[int, int] | None = None) -> bool: ...
        def _status_due(self) -> bool: ...

        # view_change.ViewChanging
        def _vc_timeout(self) -> int: ...
        def _start_view_change(self, new_view: int) -> None: ...
        def _arm_view_change_timer(self) -> None: ...
        def _view_change_expired(self) -> None: ...

        # catch_up.CatchUp
        def _stash_message(self, msg: VoteMessage) -> None: ...
        def _notice_view_ahead(self, replica: int, view: int) -> None: ...
        def _view_behind(self) -> int | None: ...
        def _replay_stash(self) -> None: ...

        # persistence.Persistence
        def _snapshot(self) -> Snapshot: ...

    @property
    def last_executed(self) -> int:
        return self.app.last_executed

    @property
    def stable_checkpoint(self) -> int:
        return self._h

    @property
    def primary(self) -> int:
        return self.config.primary(self.view)

    def log_slots(self) -> int:
        """``memory_footprint()["slots"]`` alone, for hosts that sample it often."""
        return len(self._log)

    def memory_footprint(self) -> dict[str, int]:
        """Sizes of every growing structure, for bounded-memory tests."""
        return {
            "slots": self.log_slots(),
            "slot_messages": sum(s.size() for s in self._log.values()),
            "checkpoint_votes": sum(
                len(v) for by_d in self._cp_votes.values() for v in by_d.values()
            ),
            "my_checkpoints": len(self._my_cp),
            "stash": len(self._stash),
            "waiting": len(self._waiting),
            "pending": len(self._pending),
            "proposed": len(self._proposed),
            "replies": len(self._replies),
            "view_changes": len(self._vc_latest),
        }

    def _drop(self, reason: str) -> None:
        self.stats["drop." + reason] += 1

    def _sign(self, msg: M) -> M:
        return sign_message(msg, self.auth.sign)

    def _signed(self, cls: Callable[..., M], *fields: Any) -> M:
        """``cls(*fields, signature)`` signed as this replica (see ``pbft.messages.signed``)."""
        return signed(cls, fields, self.auth.sign)

    def _broadcast(self, msg: Message) -> None:
        self._out.send.append(Send(BROADCAST, msg))

    def _send(self, to: int, msg: Message) -> None:
        self._out.send.append(Send(to, msg))

    def _persist(self, record: Any) -> None:
        self._out.persist.append(encode_unshared(record))

    def _slot(self, seq: int) -> Slot:
        slot = self._log.get(seq)
        if slot is None:
            slot = self._log[seq] = Slot(seq, seq <= self.app.last_executed)
        return slot

    def _is_backup(self) -> bool:
        return self.in_view_change or self.config.primary(self.view) != self.id
