"""The places replicas and clients occupy in a simulated world.

A slot outlives what it hosts: a crash drops the replica object, but its
disk, its application's durable state and its counters stay with the slot,
and recovery puts a rebuilt replica back in it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from pbft.api import CLIENT_ID_BASE, Application, Authenticator, Deliver, HostedReplica, Output
from sim.world.byzantine import Behaviour
from sim.world.disk import NodeDisk


class ReplicaSlot:
    """Replica ``id``: its disk and application, and the replica while it is up."""

    __slots__ = (
        "app",
        "auth",
        "behaviour",
        "changing",
        "disk",
        "id",
        "life",
        "measured",
        "past_stats",
        "replica",
        "settled",
        "stable",
        "ticks",
        "view",
    )

    app: Application
    """Opened when a replica starts, and reopened from durable state at every recovery."""

    def __init__(self, replica_id: int, disk: NodeDisk, auth: Authenticator) -> None:
        self.id = replica_id
        self.disk = disk
        self.auth = auth
        self.replica: HostedReplica | None = None
        """``None`` while crashed."""
        self.measured = False
        """Whether the replica reports its log size (:class:`pbft.api.LogMeasured`)."""
        self.behaviour: Behaviour | None = None
        """The Byzantine rewriting in force, if any."""
        self.life = 0
        """Incarnation: bumped by a crash, so timers set before it never fire after."""
        self.view = 0
        self.changing = False
        """Whether the replica was in a view change after its last step."""
        self.stable = 0
        self.ticks: set[float] = set()
        """Instants a timer event is already queued for (one event per instant)."""
        self.settled: Output | None = None
        """The last output handled that ordered nothing but a timer now queued (or none).

        Handling that very output again would do nothing but track the view, so
        ``Hosting._step_replica`` does only that: a replica answers every vote that
        completes nothing with one shared output (``pbft.replica.Replica.step``),
        most of its steps. Outputs never change once returned; the timer stays
        queued until it fires or the replica crashes, and both reset this. Always
        ``None`` while a Byzantine behaviour rewrites the replica's steps (each is
        handled in full), so the host tests only this, not the behaviour too.
        """
        self.past_stats: dict[str, int] = {}
        """Counters of earlier incarnations, added to the live replica's in results."""

    def current_view(self) -> int:
        """The view as of now; Byzantine behaviours hold this, not a copy."""
        return self.view


class ClientSlot:
    """Client number ``index``: its requests waiting to be submitted and the one in flight."""

    __slots__ = ("client", "id", "index", "pending", "queue", "receive", "settled", "ticks")

    def __init__(self, index: int, client: Any) -> None:
        self.index = index
        self.id = CLIENT_ID_BASE + index
        self.client = client
        receive = getattr(client, "receive", None)
        self.receive: Callable[[int, int, bytes], Any] = (
            receive
            if receive is not None
            else lambda now_ms, sender, data: client.step(Deliver(now_ms, sender, data))
        )
        """``client.step(Deliver(...))``, through ``pbft.client.Client.receive`` when there."""
        self.queue: deque[float] = deque()
        """Arrival times of requests not submitted yet (a client has one outstanding)."""
        self.pending: bytes | None = None
        self.ticks: set[float] = set()
        self.settled: Any = None
        """The last output handled that ordered nothing but a timer now queued (or none).

        Handling that very output again would do nothing, so the loop skips it: a
        client answers every reply that changes nothing with one shared output
        (``pbft.client.Client.receive``), about 13 of the 16 replies per request at
        n = 16. Outputs never change once returned, and the timer stays queued until
        it fires, when the output of that ``Tick`` is handled (and this reset). The
        other thing handling does, submitting the next queued request, is moot: a
        slot with nothing pending has nothing queued between events (a completion
        or an arrival submits at once).
        """
