"""Byzantine behaviours: a real replica whose outgoing messages are rewritten.

A Byzantine replica runs the genuine :class:`pbft.replica.Replica` (so it
knows the protocol state it needs to lie convincingly) and a
:class:`Behaviour` rewrites what it sends. It holds only its *own* signing
key: anything it fabricates is signed as itself, and a message claiming
another replica carries a garbage signature (``forge-signature``). Correct
replicas must survive all of it: safety always, liveness with at most f such
replicas once the network is healthy.

Researchers add behaviours by subclassing :class:`Behaviour` and decorating
it with :func:`behaviour`; a scenario then names it in ``behavior = "..."``
and passes options through the fault's ``params`` (``Behaviour.param``).
Behaviours draw randomness only from ``ctx.rng`` (the run's "byzantine"
RNG), so runs stay reproducible.

Built in:

``silent``            sends nothing at all (a crash that keeps listening).
``equivocate``        as primary, sends one batch to half the backups and the
                      same requests in another order (another digest) to the
                      rest; as a backup, proposes rival PRE-PREPAREs of its
                      own; in PREPARE/COMMIT, tells half the replicas a bogus
                      digest.
``bad-digest``        PRE-PREPARE/PREPARE/COMMIT/CHECKPOINT with a wrong digest.
``forge-signature``   claims to be replica ``as`` (default: the next one) with
                      garbage signatures.
``replay``            also re-sends old messages, its own and others' (param
                      ``rate``, default 0.3 per step, to a random replica).
``fake-view-change``  every ``interval_ms`` (default 500) broadcasts a
                      VIEW-CHANGE with a fabricated prepared certificate, and a
                      bogus NEW-VIEW for the next view it would lead.
``delay``             holds every message for ``delay_ms`` (default 1000).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ledger.codec import CodecError, decode
from pbft.api import BROADCAST, Authenticator, Deliver, Event, PBFTConfig, Send
from pbft.messages import (
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
    batch_digest,
    signing_bytes,
)


@dataclass(frozen=True, slots=True)
class Emit:
    """One outgoing hop of a Byzantine replica: to whom, what, and how much later.

    ``payload`` is a message (encoded by the host) or raw bytes (sent as is,
    e.g. a replayed message someone else signed).
    """

    to: int
    payload: Message | bytes
    delay_ms: float = 0.0


@dataclass(slots=True)
class Context:
    """What a behaviour may use: its own identity and key, the config, its RNG."""

    replica_id: int
    config: PBFTConfig
    auth: Authenticator
    rng: random.Random
    params: dict[str, float | int | str]
    view: Callable[[], int]
    """The wrapped replica's current view (it changes as the run goes)."""


class Behaviour:
    """Base class: behaves correctly. Override :meth:`incoming` and/or :meth:`outgoing`."""

    name: ClassVar[str] = "correct"
    OPTIONS: ClassVar[tuple[str, ...]] = ()
    """Option keys a scenario may give this behaviour (``sim.scenario`` accepts them)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def param(self, key: str, default: float) -> float:
        value = self.ctx.params.get(key, default)
        return float(value)

    def incoming(self, event: Event) -> Event | None:
        """The event the wrapped replica gets (``None``: it never sees it)."""
        return event

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        return [Emit(s.to, s.message) for s in sends]

    # ------------------------------------------------------------------ helpers

    def sign(self, message: Any) -> Any:
        """``message`` re-signed with this replica's own key (all it has)."""
        return dataclasses.replace(message, signature=self.ctx.auth.sign(signing_bytes(message)))

    def others(self) -> list[int]:
        me = self.ctx.replica_id
        return [r for r in range(self.ctx.config.n) if r != me]

    def garbage_digest(self) -> bytes:
        return self.ctx.rng.getrandbits(256).to_bytes(32, "big")


BEHAVIOURS: dict[str, type[Behaviour]] = {}

B = TypeVar("B", bound=type[Behaviour])


def behaviour(name: str) -> Callable[[B], B]:
    """Register a behaviour class under the name scenarios use."""

    def register(cls: B) -> B:
        if name in BEHAVIOURS and BEHAVIOURS[name] is not cls:
            raise ValueError(f"behaviour {name!r} already registered")
        cls.name = name
        BEHAVIOURS[name] = cls
        return cls

    return register


def make_behaviour(name: str, ctx: Context) -> Behaviour:
    try:
        cls = BEHAVIOURS[name]
    except KeyError:
        raise ValueError(f"unknown behaviour {name!r}; known: {sorted(BEHAVIOURS)}") from None
    return cls(ctx)


# ---------------------------------------------------------------------- built in


@behaviour("silent")
class Silent(Behaviour):
    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        return []


@behaviour("equivocate")
class Equivocate(Behaviour):
    """Tells different replicas different things, in every phase it can.

    As primary it splits each batch's PRE-PREPARE; as a backup, on seeing the
    primary's PRE-PREPARE it also proposes its own rival one for that slot
    (which correct replicas must refuse: it is not the primary), and its
    PREPAREs and COMMITs name a bogus digest for half the replicas.
    """

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._rivals: list[PrePrepare] = []

    def incoming(self, event: Event) -> Event | None:
        if isinstance(event, Deliver) and event.sender != self.ctx.replica_id:
            try:
                message = decode(event.data)
            except CodecError:
                return event
            if isinstance(message, PrePrepare) and message.replica != self.ctx.replica_id:
                self._rivals.append(message)
        return event

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out: list[Emit] = []
        others = self.others()
        half = len(others) // 2
        for rival in self._rivals:
            twin = self._twin(dataclasses.replace(rival, replica=self.ctx.replica_id))
            out.extend(Emit(r, twin) for r in others[half:] if r != rival.replica)
        self._rivals.clear()
        for send in sends:
            message = send.message
            if send.to != BROADCAST or not isinstance(message, (PrePrepare, Prepare, Commit)):
                out.append(Emit(send.to, message))
                continue
            twin = self._twin(message)
            for i, replica in enumerate(others):
                out.append(Emit(replica, message if i < half else twin))
        return out

    def _twin(self, message: PrePrepare | Prepare | Commit) -> Any:
        if isinstance(message, PrePrepare):
            requests = message.requests
            other = requests[::-1] if len(requests) > 1 else ()
            if other == requests:
                return self.sign(message)
            return self.sign(
                dataclasses.replace(message, requests=other, digest=batch_digest(other))
            )
        return self.sign(dataclasses.replace(message, digest=self.garbage_digest()))


@behaviour("bad-digest")
class BadDigest(Behaviour):
    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out: list[Emit] = []
        for send in sends:
            message: Any = send.message
            if isinstance(message, (PrePrepare, Prepare, Commit, Checkpoint)):
                message = self.sign(dataclasses.replace(message, digest=self.garbage_digest()))
            out.append(Emit(send.to, message))
        return out


@behaviour("forge-signature")
class ForgeSignature(Behaviour):
    OPTIONS = ("as",)

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        n = self.ctx.config.n
        victim = int(self.param("as", (self.ctx.replica_id + 1) % n)) % n
        out: list[Emit] = []
        for send in sends:
            message: Any = send.message
            if hasattr(message, "replica"):
                size = len(message.signature) or 32
                fake = self.ctx.rng.getrandbits(8 * size).to_bytes(size, "big")
                message = dataclasses.replace(message, replica=victim, signature=fake)
            out.append(Emit(send.to, message))
        return out


@behaviour("replay")
class Replay(Behaviour):
    OPTIONS = ("rate",)
    KEEP = 64

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._old: list[bytes | Message] = []

    def _remember(self, item: bytes | Message) -> None:
        self._old.append(item)
        if len(self._old) > self.KEEP:
            del self._old[0]

    def incoming(self, event: Event) -> Event | None:
        if isinstance(event, Deliver):
            self._remember(event.data)
        return event

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out = super().outgoing(now_ms, sends)
        rng = self.ctx.rng
        if self._old and rng.random() < self.param("rate", 0.3):
            old = self._old[rng.randrange(len(self._old))]
            out.append(Emit(rng.choice(self.others()), old))
        for send in sends:
            self._remember(send.message)
        return out


@behaviour("fake-view-change")
class FakeViewChange(Behaviour):
    OPTIONS = ("interval_ms",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._next_ms = 0

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out = super().outgoing(now_ms, sends)
        if now_ms >= self._next_ms:
            self._next_ms = now_ms + int(self.param("interval_ms", 500))
            out.extend(Emit(BROADCAST, m) for m in self._lies(now_ms))
        return out

    def _lies(self, now_ms: int) -> list[Any]:
        ctx = self.ctx
        me, n = ctx.replica_id, ctx.config.n
        view = ctx.view() + 1
        seq = ctx.rng.randrange(1, ctx.config.watermark_window + 1)
        digest = self.garbage_digest()
        fake_pp = self.sign(PrePrepare(view - 1, seq, digest, now_ms, (), me, b""))
        fake_prepares = tuple(
            Prepare(view - 1, seq, digest, r, self.garbage_digest()) for r in range(n) if r != me
        )[: 2 * ctx.config.f]
        proof = PreparedProof(fake_pp, fake_prepares)
        change = self.sign(ViewChange(view, 0, (), (proof,), me, b""))
        lies: list[Any] = [change]
        lead = view + (me - view) % n  # next view >= `view` this replica is primary of
        bogus_pp = self.sign(PrePrepare(lead, seq, digest, now_ms, (), me, b""))
        own_change = self.sign(ViewChange(lead, 0, (), (proof,), me, b""))
        lies.append(self.sign(NewView(lead, (own_change,), (bogus_pp,), me, b"")))
        return lies


@behaviour("delay")
class Delay(Behaviour):
    OPTIONS = ("delay_ms",)

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        hold = self.param("delay_ms", 1000.0)
        return [Emit(s.to, s.message, hold) for s in sends]
