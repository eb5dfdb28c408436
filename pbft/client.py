"""The PBFT client (OSDI'99 section 4.1), as a pure state machine like the replica.

A client has one request outstanding. It sends it to the primary of the view
it believes current; if no result arrives within ``client_retry_ms`` it
broadcasts to every replica (so backups start their view-change timers if the
primary is faulty), doubling the wait each time. A result counts once f+1
distinct replicas sent matching signed replies: at least one of them is correct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.codec import CodecError, constructor, decode
from pbft.api import BROADCAST, Authenticator, Deliver, Event, PBFTConfig, Send, Tally
from pbft.checked_init import checked
from pbft.messages import Reply, Request, signed, wire_signing_bytes

MAX_RETRY_DOUBLINGS = 6

_UNDECODABLE: Any = object()
"""What ``Client.receive`` takes a reply the codec refused for (counted once, as such)."""


@checked()  # one per request: the generated constructor skips object.__setattr__ per field
@dataclass(frozen=True, slots=True)
class Completed:
    """A request whose result f+1 replicas vouched for."""

    timestamp: int
    operation: bytes
    result: bytes
    latency_ms: int


_completed = constructor(Completed)
"""``Completed(...)``, the same object and checks without a call of the class."""


@dataclass(slots=True)
class ClientOutput:
    send: list[Send] = field(default_factory=list)
    completed: list[Completed] = field(default_factory=list)
    wake_at_ms: int | None = None


class Client:
    """One client principal; see the module docstring."""

    def __init__(
        self,
        client_id: int,
        config: PBFTConfig,
        auth: Authenticator,
        *,
        first_timestamp: int = 1,
    ) -> None:
        """``first_timestamp`` is the lowest timestamp the first request may carry.

        Replicas ignore a client's request unless its timestamp exceeds the last
        one they executed for it, so a client restarted against a ledger that
        outlived it must begin above every timestamp it used before.
        """
        if first_timestamp < 1:
            raise ValueError(f"first_timestamp must be >= 1, got {first_timestamp}")
        self.id = client_id
        self.config = config
        self.auth = auth
        self._n = config.n
        self._f = config.f
        self.view = 0
        """The view the client believes current, learned from replies."""
        self._stats = Tally()
        self._stale = 0
        """Stale replies not yet added to ``stats``: about ten per request at n = 16, and
        an int costs a fraction of a counter update (see ``stats``)."""
        self._timestamp = first_timestamp - 1
        self._request: Request | None = None
        self._sent_at = 0
        self._retries = 0
        self._deadline: int | None = None
        self._replied: set[int] = set()
        """Replicas whose reply to the outstanding request was accepted."""
        self._views: dict[bytes, list[int]] = {}
        """Per result those replies carry, the views they were sent in."""
        self._idle = ClientOutput([], [], None)
        """What the last reply that changed nothing returned (``receive``)."""

    @property
    def stats(self) -> Tally:
        """What the client counted: retransmissions and dropped replies, by reason.

        Stale replies (for a request already completed, most of them) are kept in
        an int and added here when the counters are read.
        """
        if self._stale:
            self._stats["drop.stale-reply"] += self._stale
            self._stale = 0
        return self._stats

    @property
    def busy(self) -> bool:
        return self._request is not None

    @property
    def outstanding(self) -> Request | None:
        return self._request

    def submit(self, operation: bytes, now_ms: int) -> ClientOutput:
        if self._request is not None:
            raise RuntimeError("client already has a request outstanding (one at a time)")
        # Timestamps only need to grow per client; tying them to time keeps them
        # growing across a client restart too.
        self._timestamp = max(self._timestamp + 1, now_ms)
        # The bytes and message of ``sign_message(Request(..., b""), sign)``, without
        # building the unsigned request first.
        request = signed(Request, (self.id, self._timestamp, operation), self.auth.sign)
        self._request = request
        self._sent_at = now_ms
        self._retries = 0
        self._replied = set()
        self._views = {}
        self._deadline = deadline = now_ms + self.config.client_retry_ms
        # Lists given, not defaulted: the factories cost twice the rest.
        return ClientOutput([Send(self.config.primary(self.view), request)], [], deadline)

    def step(self, event: Event) -> ClientOutput:
        if type(event) is Deliver:
            return self.receive(event.now_ms, event.sender, event.data)
        return self._timers(event.now_ms, ClientOutput([], [], None))

    def receive(self, now_ms: int, sender: int, data: bytes) -> ClientOutput:
        """``step(Deliver(now_ms, sender, data))`` without building the event.

        A host delivers a reply per replica per request, so it may skip the
        event object. ``sender`` is what the transport claims, unused: only the
        reply's signature says who sent it. A result counts once f+1 matching
        replies came in: at least one of them is from a correct replica (OSDI'99
        4.1). Every other reply is counted as dropped (why, in ``stats``) or kept.

        Most replies (all but the f+1st) change nothing: as ``pbft.replica.Replica.step``
        does for idle steps, such a reply gets the previous idle answer again while it
        names the same timer and is untouched, so no output is built per reply.
        Returned outputs never change. This runs for every reply (16 per request at
        n = 16), so the checks are written out here, one branch each, rather than in
        a helper whose call would cost about as much as a stale reply's checks.
        """
        done: Completed | None = None
        request = self._request
        try:
            reply: Any = decode(data)
        except CodecError as exc:
            self._stats["drop.undecodable." + exc.reason] += 1
            reply = _UNDECODABLE
        if reply is _UNDECODABLE:
            pass  # counted above
        elif type(reply) is not Reply:
            self._stats["drop.unexpected-type"] += 1
        elif request is None or reply.timestamp != request.timestamp or reply.client != self.id:
            self._stale += 1  # "drop.stale-reply", added to ``stats`` when it is read
        elif not 0 <= reply.replica < self._n:
            self._stats["drop.unknown-sender"] += 1
        elif not self.auth.verify(
            reply.replica, wire_signing_bytes(data, reply.signature), reply.signature
        ):
            self._stats["drop.bad-signature"] += 1
        elif reply.replica in self._replied:
            self._stats["drop.duplicate"] += 1
        else:
            self._replied.add(reply.replica)
            result = reply.result
            matching = self._views.get(result)
            if matching is None:  # not setdefault: it would build a list for every reply
                matching = self._views[result] = []
            matching.append(reply.view)
            f = self._f
            if len(matching) > f:
                # The (f+1)-th highest view among the f+1 matching replies is one a
                # correct replica has reached.
                self.view = max(self.view, sorted(matching, reverse=True)[f])
                self._request = None
                self._deadline = None
                self._replied = set()
                self._views = {}
                done = _completed(
                    request.timestamp, request.operation, result, now_ms - self._sent_at
                )
        deadline = self._deadline
        if done is None and (deadline is None or now_ms < deadline):
            # Nothing to send or report (most replies): the idle answer, rebuilt only
            # when the timer it names moved. (``_timers`` would find nothing due.)
            idle = self._idle
            if idle.wake_at_ms != deadline or idle.send or idle.completed:
                idle = self._idle = ClientOutput([], [], deadline)
            return idle
        # Lists given, not defaulted: the factories cost twice the rest.
        out = ClientOutput([], [] if done is None else [done], deadline)
        if deadline is not None and now_ms >= deadline:
            self._timers(now_ms, out)
        return out

    def _timers(self, now: int, out: ClientOutput) -> ClientOutput:
        """Retransmit if the request's deadline passed; say when to be woken next.

        ``_deadline`` is None exactly when no request is outstanding, so the
        wake-up it gives is the deadline itself (``receive`` relies on that).
        """
        if self._deadline is not None and now >= self._deadline and self._request is not None:
            self._retries += 1
            self._stats["retransmit"] += 1
            out.send.append(Send(BROADCAST, self._request))
            wait = self.config.client_retry_ms << min(self._retries, MAX_RETRY_DOUBLINGS)
            self._deadline = now + wait
        out.wake_at_ms = self._deadline if self._request is not None else None
        return out
