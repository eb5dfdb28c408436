"""What a host (the simulator, the MQTT runtime, a test) sees of a replica or client.

A replica is driven by events and answers with plain data (docs/design.md,
"Sans-IO protocol packages", after etcd-io/raft): ``Replica.step(event) -> Output``.
It never reads a clock (time arrives in every event as ``now_ms``), never draws
from a global RNG, never touches a socket or a file. Two things are injected:

* an :class:`Authenticator`, which signs as this replica and verifies anyone;
* an :class:`Application`, the deterministic state machine that executes
  committed batches in sequence order (the ledger, or a plain in-memory log).

The host's duty, in this order, for each ``Output``: durably append
``persist`` records, then send ``send`` messages (persist before send).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pbft.checked_init import checked
from pbft.messages import CommittedBatch, Message

BROADCAST = -1
"""``Send.to`` value meaning: every replica except the sender."""


class Authenticator(Protocol):
    """Signs as one principal and verifies any principal's signature.

    Principals are integers: replicas ``0..n-1``, clients their own ids
    (``>= CLIENT_ID_BASE`` by convention). ``verify`` never raises: garbage in,
    ``False`` out.
    """

    def sign(self, payload: bytes) -> bytes: ...

    def verify(self, signer: int, payload: bytes, signature: bytes) -> bool: ...


class Application(Protocol):
    """The replicated state machine behind a replica.

    ``execute`` is called exactly once per sequence number, in order, and must
    be deterministic: every correct replica returns the same results (one per
    request, returned to the client in its REPLY). ``batch_at`` serves state
    transfer from what the application has kept (the block store).

    ``fresh[k]`` says whether request ``k`` is new: False for a request whose
    client already had one with this or a later timestamp executed (earlier in
    the chain or earlier in this batch). A faulty primary can get such stale or
    duplicate requests ordered; the batch (and its digest) still holds them, so
    the application keeps them as data but must not apply their effects, and
    no reply carries their results (exactly-once, OSDI'99 4.1). The replica
    decides ``fresh`` from the chain alone, so every correct replica passes
    the same mask. ``None`` means all fresh (callers outside a replica).

    Optionally ``results_at(seq)`` returns what ``execute`` returned for an
    executed ``seq``; a restarted replica uses it to rebuild its reply cache.
    """

    @property
    def last_executed(self) -> int: ...

    @property
    def head_digest(self) -> bytes:
        """Chained digest after ``last_executed`` (the header hash of that block)."""
        ...

    def execute(
        self, batch: CommittedBatch, fresh: Sequence[bool] | None = None
    ) -> Sequence[bytes]: ...

    def batch_at(self, seq: int) -> CommittedBatch | None: ...


def quorum_size(n: int) -> int:
    """ceil((n + f + 1) / 2) with f = (n - 1) // 3: see ``PBFTConfig.quorum``.

    A function of n alone, so tools that check certificates (``ledger verify``)
    use the very rule the replicas used.
    """
    f = (n - 1) // 3
    return (n + f) // 2 + 1


CLIENT_ID_BASE = 1000
"""Client principals start here so they never collide with replica ids."""


class Tally(Counter[str]):
    """A :class:`collections.Counter` of events (``stats``) that is cheap to count into.

    ``Counter`` defines ``__delitem__`` in Python (deleting a missing key is no
    error), and a type with any Python-level ``__setitem__``/``__delitem__``
    stores every item through a slot that looks the method up by name: one
    ``stats[key] += 1`` costs about 1,650 CPU instructions (CPython 3.11)
    instead of about 700. Taking dict's own ``__delitem__`` back restores the
    C slot for both; the only difference is that deleting a missing key raises
    ``KeyError``, as for a dict. A client counts every stale reply (about ten
    per request at n = 16), which made this worth a class.
    """

    __slots__ = ()
    __delitem__ = dict.__delitem__  # type: ignore[assignment]  # (dict: any key type)


@dataclass(frozen=True, slots=True)
class PBFTConfig:
    """Protocol parameters shared by every replica and client of one network."""

    n: int
    batch_size: int = 10
    batch_timeout_ms: int = 50
    checkpoint_interval: int = 10
    watermark_window: int = 40
    view_change_timeout_ms: int = 2000
    client_retry_ms: int = 1000
    retransmit_ms: int | None = None
    """Stall time before a replica broadcasts STATUS; ``None``: a quarter of the view-change
    timeout, so a lost message is repaired before anyone suspects the primary."""
    state_chunk_batches: int | None = None
    """Most batches one STATE-CHUNK carries (``None``: one watermark window); a replica
    further behind fetches chunk after chunk."""
    clock_skew_ms: int | None = None
    """How far ahead of a backup's clock the primary's agreed time may be (``None``: the
    view-change timeout). Bounds what a faulty primary can stamp on a block."""
    stash_views_ahead: int = 2
    """Messages for views up to this many above ours are kept for later; beyond, only the
    sender's view is noted (for catching up), so a faulty sender cannot fill the stash."""
    max_batches_in_flight: int | None = None
    """Bounded pipelining (``None``: off, a batch is cut whenever it is full or its
    timeout passes). With a bound, the primary keeps at most this many batches
    proposed but not executed; a partial batch is cut when one of them executes, or
    when the batch timeout passes with none in flight. Under load the requests that
    arrive while a batch is being agreed ride in the next one, so blocks grow with
    the load and per-block costs (fsyncs, signatures on votes) are shared."""

    two_stage_request_timer: bool = False
    """BFT-SMaRt's request timeout (DSN 2014): a backup's first expiry forwards the
    requests it waits for to every replica and only a second one suspects the primary,
    so a request only it held (its relay lost) does not send it alone into a view change
    (``ReplicaRules.suspects_primary``). Off: PBFT's one-stage timer, which the pinned
    simulator results and the mutant battery's attacks were tuned with; live networks
    turn it on. Detecting a faulty primary then takes about two timeouts."""

    def __post_init__(self) -> None:
        if self.n < 4:
            raise ValueError(f"n must be >= 4 (3f+1 with f >= 1), got {self.n}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.checkpoint_interval < 1:
            raise ValueError("checkpoint_interval must be >= 1")
        if self.watermark_window < 2 * self.checkpoint_interval:
            raise ValueError("watermark_window must be >= 2 * checkpoint_interval")
        if self.batch_timeout_ms < 0 or self.view_change_timeout_ms <= 0:
            raise ValueError("timeouts must be positive")
        if self.retransmit_ms is not None and self.retransmit_ms <= 0:
            raise ValueError("retransmit_ms must be positive")
        if self.state_chunk_batches is not None and self.state_chunk_batches < 1:
            raise ValueError("state_chunk_batches must be >= 1")
        if self.clock_skew_ms is not None and self.clock_skew_ms < 0:
            raise ValueError("clock_skew_ms must be >= 0")
        if self.stash_views_ahead < 1:
            raise ValueError("stash_views_ahead must be >= 1")
        if self.max_batches_in_flight is not None and self.max_batches_in_flight < 1:
            raise ValueError("max_batches_in_flight must be >= 1")

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def quorum(self) -> int:
        """Certificates' size: prepared/committed, stable checkpoints, NEW-VIEW's V.

        Any two quorums must share at least f+1 replicas, so that they share a
        correct one: 2Q - n >= f + 1, i.e. Q = ceil((n + f + 1) / 2). For
        n = 3f + 1, the paper's setting, that is exactly 2f+1; for other n
        (say n = 5, f = 1) 2f+1 would be too small: two sets of 3 out of 5
        can meet in the one Byzantine replica and commit different batches.
        """
        return quorum_size(self.n)

    @property
    def status_interval_ms(self) -> int:
        if self.retransmit_ms is not None:
            return self.retransmit_ms
        return max(1, self.view_change_timeout_ms // 4)

    @property
    def max_skew_ms(self) -> int:
        if self.clock_skew_ms is not None:
            return self.clock_skew_ms
        return self.view_change_timeout_ms

    @property
    def chunk_batches(self) -> int:
        if self.state_chunk_batches is not None:
            return self.state_chunk_batches
        return self.watermark_window

    def primary(self, view: int) -> int:
        return view % self.n


# ----------------------------------------------------------------------- events


@checked()  # one per message delivered: the generated constructor is the cheaper one
@dataclass(frozen=True, slots=True)
class Deliver:
    """Bytes arrived from ``sender`` (as the transport claims: only signatures are trusted)."""

    now_ms: int
    sender: int
    data: bytes


@checked()
@dataclass(frozen=True, slots=True)
class Tick:
    """Virtual time advanced to ``now_ms``; fire whatever timers are due."""

    now_ms: int


Event = Deliver | Tick


# ----------------------------------------------------------------------- output


@checked()  # one per message sent: the generated constructor is the cheaper one
@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to principal ``to`` (a replica, a client, or ``BROADCAST``)."""

    to: int
    message: Message


@dataclass(slots=True)
class Output:
    """Everything one step asks of the host. Empty lists mean nothing to do."""

    persist: list[bytes] = field(default_factory=list)
    """Codec records to append durably before any send; see ``Replica.restore``."""
    compact: bool = False
    """True when ``persist[0]`` is a snapshot superseding every earlier record."""
    send: list[Send] = field(default_factory=list)
    executed: list[CommittedBatch] = field(default_factory=list)
    """Batches executed during this step, in sequence order."""
    fresh: list[tuple[bool, ...]] = field(default_factory=list)
    """Per batch in ``executed``, which of its requests were executed (the rest were stale)."""
    wake_at_ms: int | None = None
    """Deliver a ``Tick`` no later than this (``None``: no timer pending)."""

    def __init__(
        self,
        persist: list[bytes] | None = None,
        compact: bool = False,
        send: list[Send] | None = None,
        executed: list[CommittedBatch] | None = None,
        fresh: list[tuple[bool, ...]] | None = None,
        wake_at_ms: int | None = None,
    ) -> None:
        # Written out rather than generated: every replica step builds one, and the
        # generated __init__ tests each default-factory sentinel and calls ``list``.
        self.persist = [] if persist is None else persist
        self.compact = compact
        self.send = [] if send is None else send
        self.executed = [] if executed is None else executed
        self.fresh = [] if fresh is None else fresh
        self.wake_at_ms = wake_at_ms

    def extend(self, other: Output) -> None:
        if other.compact:
            self.persist = list(other.persist)
            self.compact = True
        else:
            self.persist.extend(other.persist)
        self.send.extend(other.send)
        self.executed.extend(other.executed)
        self.fresh.extend(other.fresh)
        if other.wake_at_ms is not None and (
            self.wake_at_ms is None or other.wake_at_ms < self.wake_at_ms
        ):
            self.wake_at_ms = other.wake_at_ms


# ----------------------------------------------------------------------- hosting


class HostedReplica(Protocol):
    """What a host drives and reads of a replica (the simulator, the MQTT node, a test).

    ``step`` is the only way in. Everything else is read between steps, never
    written: the view (traces, view-change counts), the low watermark of the
    stable checkpoint (the simulator checks it never goes back) and counters
    whose ``drop.*`` entries say why messages were refused. ``pbft.replica.Replica``
    is the implementation; mutants and toy protocols in tests are others.
    """

    @property
    def id(self) -> int: ...

    @property
    def view(self) -> int: ...

    @property
    def stable_checkpoint(self) -> int: ...

    @property
    def stats(self) -> Mapping[str, int]: ...

    def step(self, event: Event) -> Output: ...


class ReplicaFactory(Protocol):
    """A replica class as a host uses it: a fresh replica, or one rebuilt after a crash.

    ``restore`` gets the records the replica persisted (``Output.persist``, in
    order, from its latest compacting snapshot on) and the application reopened
    from durable state; the rebuilt replica carries on where the crashed one was.
    """

    def __call__(
        self, replica_id: int, config: PBFTConfig, auth: Authenticator, app: Application
    ) -> HostedReplica: ...

    def restore(
        self,
        replica_id: int,
        config: PBFTConfig,
        auth: Authenticator,
        app: Application,
        records: Sequence[bytes],
    ) -> HostedReplica: ...


@runtime_checkable
class LogMeasured(Protocol):
    """Optional for a hosted replica: how many sequence-number slots its log holds now.

    A host that checks memory stays bounded samples it; a replica without it
    (a toy protocol in a test) is simply not sampled.
    """

    def log_slots(self) -> int: ...
