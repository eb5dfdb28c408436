"""What a replica asks its host to persist, so a restart cannot make it lie (tags 30-49).

PBFT's safety argument assumes a correct replica never contradicts a message
it signed earlier (TOCS'02 section 4.1 keeps the log in stable storage for
this reason). After a crash, the replica would otherwise happily send a second,
different PRE-PREPARE or PREPARE for a slot. So the replica persists:

* every PRE-PREPARE, PREPARE and COMMIT it sent, and every VIEW-CHANGE and
  NEW-VIEW (these are ordinary signed message records, no wrapper needed);
* each prepared certificate it formed (``PreparedProof``), so its VIEW-CHANGE
  after a restart still carries the P set it owes the other replicas;
* its view (:class:`ViewRecord`) and stable checkpoint (:class:`StableRecord`).

At each new stable checkpoint the log below it is garbage, so the replica emits
one :class:`Snapshot` superseding all earlier records (``Output.compact``);
this keeps the persisted log as bounded as the in-memory one. Execution
progress is not recorded here: the application is durable on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.codec import record
from pbft.messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    ViewChange,
)


@record(30)
@dataclass(frozen=True, slots=True)
class ViewRecord:
    """The replica entered ``view`` (still collecting VIEW-CHANGEs if ``in_view_change``)."""

    view: int
    in_view_change: bool


@record(31)
@dataclass(frozen=True, slots=True)
class StableRecord:
    """A checkpoint became stable, with the Q CHECKPOINT messages that prove it (Q = quorum)."""

    seq: int
    proof: tuple[Checkpoint, ...]


@record(32)
@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything safety needs at the moment a checkpoint became stable."""

    view: int
    in_view_change: bool
    stable_seq: int
    proof: tuple[Checkpoint, ...]
    prepared: tuple[PreparedProof, ...]
    sent: tuple[PrePrepare | Prepare | Commit, ...]
    view_change: ViewChange | None
    new_view: NewView | None
    replies: tuple[Reply, ...]
    """Last reply per client, so a retransmission after restart is answered, not re-run."""
    replies_seq: int
    """The execution height ``replies`` reflect; later batches are rescanned on restore."""
    client_timestamps: tuple[tuple[int, int], ...]
    """(client, last executed timestamp) for every client, sorted: exactly-once needs all
    of them, including clients whose reply is not cached (executed via state transfer)."""


PersistedRecord = (
    (ViewRecord | StableRecord | Snapshot | PrePrepare | Prepare | Commit | PreparedProof)
    | ViewChange
    | NewView
)
