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
``fake-view-change``  fabricated prepared certificates, NEW-VIEWs built on
                      forged VIEW-CHANGEs, and hollowed-out NEW-VIEWs when it
                      really leads (see the class).
``rogue-primary``     a backup re-proposing seen batches for the next slots itself.
``far-sequence``      a primary also proposing far above the high watermark.
``delay``             holds every message for ``delay_ms`` (default 1000).
``liar``              votes truthfully to one ``victim`` replica only, keeps
                      everyone else in the dark (no votes, no STATUS answers,
                      no prepared certificates in its VIEW-CHANGEs), leaves
                      the victim's VIEW-CHANGE out of its NEW-VIEWs and, as
                      primary, reuses the slots it lied about for empty
                      batches (see the class).

Options reach a behaviour as the fault's ``params`` (a ``params = { ... }``
sub-table in a scenario file). Each class declares them in ``OPTIONS`` with
their types and ranges (:class:`sim.world.behaviour_options.Option`); the
scenario reader refuses a value out of range or an undeclared key, and
``ledgersim run --list-behaviours`` lists them with the first line of each
class's docstring (the attack it mounts).

The module runs past 500 lines on purpose: it is the base class and registry
plus ten classic behaviours of a few dozen lines each, and a researcher writing
a new one reads them side by side (the proof forgers have their own module).
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
    Status,
    ViewChange,
    batch_digest,
    signing_bytes,
)
from pbft.newview import NULL_DIGEST
from sim.world.behaviour_options import Option


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
    OPTIONS: ClassVar[tuple[Option | str, ...]] = ()
    """The options a scenario may give this behaviour, with types and ranges
    (``sim.scenario.reader`` checks them; a bare name accepts any number or string)."""

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

    def rival_pre_prepare(self, event: Event) -> PrePrepare | None:
        """Another replica's proposal carried by ``event``: what the attacks copy or race."""
        if not isinstance(event, Deliver):
            return None
        message = _peek(event.data)
        if isinstance(message, PrePrepare) and message.replica != self.ctx.replica_id:
            return message
        return None


BEHAVIOURS: dict[str, type[Behaviour]] = {}
"""Filled as behaviour modules are imported: read the full set from :mod:`sim.world.catalogue`."""

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
    """Sends nothing but keeps receiving: a crash the others cannot tell apart. No options."""

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
            rival = self.rival_pre_prepare(event)
            if rival is not None:
                self._rivals.append(rival)
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
    """Signs its PRE-PREPAREs, PREPAREs, COMMITs and CHECKPOINTs over random digests.

    The messages are genuinely signed, so only the digest check stops them. No options.
    """

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
    """Sends every message in another replica's name, with a random signature.

    Options: ``as``, the replica it impersonates (default: the next replica id).
    """

    OPTIONS = (Option.replica("as", "the replica it impersonates (default: the next id)"),)

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
    """Besides behaving correctly, re-sends old messages (its own and others') verbatim.

    It keeps the last ``KEEP`` messages it saw or sent. Options: ``rate``, the
    chance per step of one replay to a random replica (default 0.3).
    """

    OPTIONS = (Option.probability("rate", 0.3, "chance per step of re-sending an old message"),)
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
    """Lies about view changes in every way its own key allows.

    Every ``interval_ms`` (default 500), on seeing the primary's PRE-PREPARE
    for seq s, it broadcasts (1) a VIEW-CHANGE with a fabricated prepared
    certificate (its own pre-prepare, other replicas' prepares with garbage
    signatures), and (2) a NEW-VIEW for the next view it would lead, built
    from its own VIEW-CHANGE plus 2f forged in other replicas' names (empty P
    sets, so O is empty), followed by its PRE-PREPAREs of null batches for
    every slot up to s: a replica that skips VIEW-CHANGE signatures would
    install that view and overwrite committed slots. And (3) when it really
    is the new primary, it replaces every batch in its NEW-VIEW's O by a null
    batch, which only a replica that does not recompute O would accept. (4)
    Its own genuine VIEW-CHANGEs "forget" every prepared certificate, so a
    batch it helped commit can drop out of the next view.
    """

    OPTIONS = (
        Option.integer("interval_ms", 500, "time between fabricated VIEW-CHANGEs", minimum=1),
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._next_ms = 0
        self._seen: PrePrepare | None = None
        self._my_views: set[int] = set()

    def incoming(self, event: Event) -> Event | None:
        rival = self.rival_pre_prepare(event)
        if rival is not None:
            self._seen = rival
        return event

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out: list[Emit] = []
        for send in sends:
            message: Any = send.message
            if isinstance(message, NewView) and message.replica == self.ctx.replica_id:
                message = self._hollow(message)
            elif isinstance(message, ViewChange) and message.prepared:
                message = self.sign(dataclasses.replace(message, prepared=()))
            out.append(Emit(send.to, message))
        seen = self._seen
        if seen is not None and now_ms >= self._next_ms:
            self._next_ms = now_ms + int(self.param("interval_ms", 500))
            out.extend(Emit(BROADCAST, m) for m in self._lies(now_ms, seen))
            self._seen = None
        return out

    def _hollow(self, nv: NewView) -> NewView:
        nulls = tuple(
            self.sign(dataclasses.replace(pp, requests=(), digest=NULL_DIGEST))
            for pp in nv.pre_prepares
        )
        signed: NewView = self.sign(dataclasses.replace(nv, pre_prepares=nulls))
        return signed

    def _lies(self, now_ms: int, seen: PrePrepare) -> list[Any]:
        ctx = self.ctx
        me, n = ctx.replica_id, ctx.config.n
        view = max(ctx.view(), seen.view) + 1
        digest = self.garbage_digest()
        fake_pp = self.sign(PrePrepare(view - 1, seen.seq, digest, now_ms, (), me, b""))
        fake_prepares = tuple(
            Prepare(
                view=view - 1,
                seq=seen.seq,
                digest=digest,
                timestamp_ms=now_ms,
                replica=r,
                signature=self.garbage_digest(),
            )
            for r in range(n)
            if r != me
        )[: ctx.config.quorum - 1]
        lies: list[Any] = [
            self.sign(ViewChange(view, 0, (), (PreparedProof(fake_pp, fake_prepares),), me, b""))
        ]
        lead = view + (me - view) % n  # the next view >= `view` this replica leads
        if lead in self._my_views:
            return lies
        self._my_views.add(lead)
        own = self.sign(ViewChange(lead, 0, (), (), me, b""))
        forged = tuple(
            ViewChange(lead, 0, (), (), r, self.garbage_digest()) for r in range(n) if r != me
        )[: ctx.config.quorum - 1]
        lies.append(self.sign(NewView(lead, (own, *forged), (), me, b"")))
        first = max(1, seen.seq - ctx.config.watermark_window + 1)
        lies.extend(
            self.sign(PrePrepare(lead, seq, NULL_DIGEST, now_ms, (), me, b""))
            for seq in range(first, seen.seq + 1)
        )
        return lies


@behaviour("rogue-primary")
class RoguePrimary(Behaviour):
    """A backup that acts as primary: on seeing PRE-PREPARE s, proposes the same batch
    again for the next ``ahead`` slots (default 2) itself, to everyone, before the
    primary gets there; executing it would run those requests twice."""

    OPTIONS = (Option.integer("ahead", 2, "slots past each seen batch it proposes", minimum=1),)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._seen: list[PrePrepare] = []
        self._claimed: set[tuple[int, int]] = set()

    def incoming(self, event: Event) -> Event | None:
        rival = self.rival_pre_prepare(event)
        if rival is not None:
            self._seen.append(rival)
        return event

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out = super().outgoing(now_ms, sends)
        me = self.ctx.replica_id
        for pp in self._seen:
            for seq in range(pp.seq + 1, pp.seq + 1 + int(self.param("ahead", 2))):
                if (pp.view, seq) in self._claimed:
                    continue
                self._claimed.add((pp.view, seq))
                rival = dataclasses.replace(pp, seq=seq, replica=me)
                out.append(Emit(BROADCAST, self.sign(rival)))
        self._seen.clear()
        return out


@behaviour("far-sequence")
class FarSequence(Behaviour):
    """As primary, also proposes each batch again ``copies`` times (default 4) at sequence
    numbers whole watermark windows ahead: far above H, where no correct replica looks."""

    OPTIONS = (Option.integer("copies", 4, "far-away copies of each batch it proposes", minimum=1),)

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out = super().outgoing(now_ms, sends)
        window = self.ctx.config.watermark_window
        for send in sends:
            message = send.message
            if isinstance(message, PrePrepare) and send.to == BROADCAST:
                for k in range(1, int(self.param("copies", 4)) + 1):
                    far = dataclasses.replace(message, seq=message.seq + k * window)
                    out.append(Emit(BROADCAST, self.sign(far)))
        return out


def _peek(data: bytes) -> Any:
    """Decode a received message for a behaviour's curiosity; garbage is just ignored."""
    try:
        return decode(data)
    except CodecError:
        return None


@behaviour("delay")
class Delay(Behaviour):
    """Correct but slow: holds every outgoing message before sending it.

    Options: ``delay_ms``, how long (default 1000).
    """

    OPTIONS = (Option.integer("delay_ms", 1000, "how long each message is held"),)

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        hold = self.param("delay_ms", 1000.0)
        return [Emit(s.to, s.message, hold) for s in sends]


@behaviour("liar")
class Liar(Behaviour):
    """Lets one replica commit a batch that the others are never told about.

    The attack behind it (n = 3f+1, a correct primary, link faults that keep
    the victim's own messages from the other correct replicas): the victim
    receives the PRE-PREPARE, this replica's PREPARE and its COMMIT, so it
    holds 2f matching PREPAREs but only f+1 COMMITs; everyone else holds at
    most the PRE-PREPARE. A correct victim waits for 2f+1 COMMITs; a victim
    that commits on fewer executes a batch that the next view may fill
    differently, because the liar, leading that view, builds its NEW-VIEW
    from 2f+1 VIEW-CHANGEs none of which carries the batch (its own, which
    "forgets" it, and those of replicas that never prepared it). A NEW-VIEW
    built that way is one correct backups must accept: V is 2f+1 genuine,
    valid VIEW-CHANGEs and O is exactly what they recompute.

    What it does while active:

    * its PREPAREs, and a COMMIT it adds for every PREPARE, go to the victim
      only; PRE-PREPAREs it would relay to anyone else are withheld;
    * it never answers STATUS (retransmission would hand the batch to the
      replicas that missed it), and its wrapped replica never sees anyone's
      PREPAREs or COMMITs, so it never prepares: its VIEW-CHANGEs carry no
      prepared certificate, and the requests keep its view-change timer
      running so it takes part in the view change that follows;
    * the victim's VIEW-CHANGEs are hidden from it, so its NEW-VIEW's V is
      chosen among the other replicas';
    * as primary, it proposes empty batches for sequence numbers it voted on
      to the victim (``hollow``), so those slots commit a batch that differs
      from the one the victim may already have executed.

    Options (``params``):

    ``victim``  the one replica told the truth (default: the next replica id).
    ``hollow``  1 (default) to reuse the lied-about slots for empty batches as
                primary, 0 to propose whatever the wrapped replica proposes.

    A correct replica set stays safe: the victim never commits on f+1
    COMMITs, so nothing it executes can be dropped by the next view.
    """

    OPTIONS = (
        Option.replica("victim", "the one replica told the truth (default: the next id)"),
        Option.flag(
            "hollow", "as primary, reuse the lied-about slots for empty batches", default=1
        ),
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        n = ctx.config.n
        self.victim = int(self.param("victim", (ctx.replica_id + 1) % n)) % n
        self.hollow = bool(self.param("hollow", 1))
        self._confirmed: set[tuple[int, int]] = set()
        self._lied_up_to = 0

    def incoming(self, event: Event) -> Event | None:
        if not isinstance(event, Deliver) or event.sender == self.ctx.replica_id:
            return event
        message = _peek(event.data)
        if isinstance(message, (Prepare, Commit, Status)):
            return None
        if isinstance(message, ViewChange) and message.replica == self.victim:
            return None
        return event

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        me, victim = self.ctx.replica_id, self.victim
        out: list[Emit] = []
        for send in sends:
            message: Any = send.message
            if isinstance(message, PrePrepare) and message.replica == me:
                out.append(Emit(send.to, self._hollowed(message)))
            elif isinstance(message, (PrePrepare, Prepare, Commit)):
                if send.to in (victim, BROADCAST) and victim != me:
                    out.append(Emit(victim, message))
                if isinstance(message, Prepare) and victim != me:
                    out.extend(self._confirm(message))
            elif isinstance(message, ViewChange) and message.prepared:
                out.append(Emit(send.to, self.sign(dataclasses.replace(message, prepared=()))))
            else:
                out.append(Emit(send.to, message))
        return out

    def _confirm(self, prepare: Prepare) -> list[Emit]:
        """The COMMIT that, with the victim's own, makes f+1 for ``prepare``'s batch."""
        key = (prepare.view, prepare.seq)
        if key in self._confirmed:
            return []
        self._confirmed.add(key)
        self._lied_up_to = max(self._lied_up_to, prepare.seq)
        # A COMMIT names exactly what the PREPARE voted for: the two carry the same fields.
        commit = Commit(**{f.name: getattr(prepare, f.name) for f in dataclasses.fields(prepare)})
        return [Emit(self.victim, self.sign(commit))]

    def _hollowed(self, pp: PrePrepare) -> PrePrepare:
        if not self.hollow or not pp.requests or pp.seq > self._lied_up_to:
            return pp
        empty: PrePrepare = self.sign(dataclasses.replace(pp, requests=(), digest=NULL_DIGEST))
        return empty
