"""Byzantine behaviours that forge or mix *proofs*: certificates, checkpoint proofs, V sets.

The behaviours in :mod:`sim.world.byzantine` lie about single messages. The
ones here attack the places where a replica judges evidence another replica
hands it: the commit certificates in a STATE-CHUNK, the checkpoint proof C
and the prepared certificates P in a VIEW-CHANGE, the COMMITs a replica
counts, and the set V a new primary builds its NEW-VIEW from. A Byzantine
replica holds only its own key (``pbft.auth``), so a signature in another
replica's name is garbage and must fail verification; the interesting
attacks staple together *genuinely signed* parts taken from different
contexts (another digest, another view, another sequence number) or repeat
one genuine signature where distinct ones are required.

Each attack is legal on the wire and harmless to a correct replica, which
rejects the forged proof and carries on; a replica missing one of the checks
accepts it and loses safety or liveness (tests/test_adversaries.py shows one
such weakened replica per behaviour, from tests/pbft_proof_mutants.py).

Registered when imported (:mod:`sim.world.catalogue` imports this module):

``forged-state``        a state server answering FETCH-STATE with forged batches.
``forged-view-change``  a primary that stalls, then sends VIEW-CHANGEs with
                        forged or mixed C and P (and, leading a view, a NEW-VIEW
                        built on them).
``forged-commit``       the ``liar`` plus COMMITs in other replicas' names,
                        COMMITs for another batch, and PREPAREs replayed into
                        later views.
``subset-new-view``     a new primary choosing the quorum of VIEW-CHANGEs that
                        carries the least, and forgetting its own certificates.

The module runs past 500 lines, most of it the attack descriptions; it stays
one module so that one import registers every forger and they share
:class:`ProofCollector`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pbft.api import BROADCAST, CLIENT_ID_BASE, Deliver, Event, Send
from pbft.messages import (
    Checkpoint,
    Commit,
    CommittedBatch,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Request,
    StateChunk,
    ViewChange,
    batch_digest,
)
from pbft.newview import NULL_DIGEST
from pbft.rules import honest_new_view_plan
from sim.errors import InputError
from sim.world.behaviour_options import Option
from sim.world.byzantine import Behaviour, Context, Emit, Liar, _peek, behaviour

FORGED_OPERATION = b"forged/"
"""Prefix of every operation these behaviours invent: no client ever submitted one."""


def forged_requests(
    requests: tuple[Request, ...], beat: bytes | None = None
) -> tuple[Request, ...]:
    """Requests no client sent, as a batch whose digest exceeds ``beat`` if one is given.

    Clients and timestamps are kept (so the batch passes the shape checks a
    prepared certificate gets) but the operations are rewritten: executing the
    batch runs something its client never signed, which the validity invariant
    reports. The NEW-VIEW computation breaks ties between certificates of one
    view by the larger digest, so a forged certificate that is meant to win
    one is re-rolled until its digest is larger.
    """
    base = requests or (Request(CLIENT_ID_BASE, 1 << 40, b"", b""),)
    for attempt in range(256):
        tag = FORGED_OPERATION + str(attempt).encode() + b"/"
        forged = tuple(dataclasses.replace(r, operation=tag + r.operation) for r in base)
        if beat is None or batch_digest(forged) > beat:
            return forged
    return forged  # 256 misses in a row: the tie is lost, the forgery still stands


def _signed_by(messages: dict[int, Any], exclude: int) -> list[Any]:
    return [messages[r] for r in sorted(messages) if r != exclude]


def chosen_trick(behaviour: Behaviour, default: str, allowed: tuple[str, ...]) -> str:
    """The ``trick`` option, refused in one line (exit status 2) if it names no trick."""
    value = str(behaviour.ctx.params.get("trick", default))
    if value not in (default, *allowed):
        known = ", ".join((default, *allowed))
        raise InputError(
            f"behaviour {behaviour.name}: trick: expected one of {known}, got {value!r}"
        )
    return value


# ------------------------------------------------------------------- state server


@behaviour("forged-state")
class ForgedStateServer(Behaviour):
    """A state server whose STATE-CHUNKs carry forged batches with forged certificates.

    The attack: a replica that fell behind a stable checkpoint fetches the
    missing batches from f+1 peers and trusts each batch on its commit
    certificate; only the chunk that ends exactly at the proven checkpoint is
    also checked against the checkpoint's chained digest. So every chunk this
    server sends stops ``cut`` batches short of where the genuine one would
    end (it "does not end at the checkpoint"), and in it each batch's
    operations are rewritten (:func:`forged_requests`) and its certificate
    replaced by one trick:

    ``no-certificate``      no COMMITs at all;
    ``repeated-signature``  this replica's own COMMIT for the forged batch,
                            repeated a quorum of times;
    ``other-digest``        the batch's genuine certificate: 2f+1 valid
                            COMMITs, but for the real batch's digest;
    ``unsigned``            a quorum of COMMITs for the forged batch in the
                            names of distinct replicas, unsigned (its own is
                            signed).

    For each FETCH-STATE it answers with one chunk per trick (or only the
    one named by the ``trick`` option); it never sends the genuine chunk.
    Options: ``trick`` (default: all of them), ``cut`` (default 1).
    """

    TRICKS: ClassVar[tuple[str, ...]] = (
        "no-certificate",
        "repeated-signature",
        "other-digest",
        "unsigned",
    )
    OPTIONS = (
        Option.choice("trick", "all", TRICKS, "the forged certificate (all: one chunk per trick)"),
        Option.integer("cut", 1, "batches each forged chunk stops short of the checkpoint"),
    )

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out: list[Emit] = []
        for send in sends:
            message = send.message
            if isinstance(message, StateChunk) and message.replica == self.ctx.replica_id:
                out.extend(Emit(send.to, chunk) for chunk in self.forgeries(message))
            else:
                out.append(Emit(send.to, message))
        return out

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        chosen = chosen_trick(self, "all", self.TRICKS)
        self._tricks = self.TRICKS if chosen == "all" else (chosen,)

    def tricks(self) -> tuple[str, ...]:
        return self._tricks

    def forgeries(self, chunk: StateChunk) -> list[StateChunk]:
        cut = int(self.param("cut", 1))
        batches = chunk.batches[:-cut] if cut and len(chunk.batches) > cut else chunk.batches
        return [
            self.sign(
                StateChunk(
                    chunk.checkpoint_proof,
                    tuple(self.forge_batch(b, trick) for b in batches),
                    self.ctx.replica_id,
                    b"",
                )
            )
            for trick in self.tricks()
        ]

    def forge_batch(self, batch: CommittedBatch, trick: str) -> CommittedBatch:
        requests = forged_requests(batch.requests)
        digest = batch_digest(requests)
        me, quorum = self.ctx.replica_id, self.ctx.config.quorum

        def commit(replica: int) -> Commit:
            return Commit(batch.view, batch.seq, digest, batch.timestamp_ms, replica, b"")

        own: Commit = self.sign(commit(me))
        if trick == "no-certificate":
            certificate: tuple[Commit, ...] = ()
        elif trick == "repeated-signature":
            certificate = (own,) * quorum
        elif trick == "other-digest":
            certificate = batch.certificate
        else:  # unsigned
            names = [me, *(r for r in range(self.ctx.config.n) if r != me)][:quorum]
            certificate = tuple(own if r == me else commit(r) for r in names)
        return dataclasses.replace(batch, requests=requests, certificate=certificate)


# -------------------------------------------------------------- view-change proofs


class ProofCollector(Behaviour):
    """Keeps the genuine evidence a forger staples together: CHECKPOINTs and PREPAREs seen.

    What it keeps is bounded to the last two watermark windows of sequence
    numbers, so a long run does not make the adversary itself grow.
    """

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.checkpoints: dict[int, dict[int, Checkpoint]] = {}
        """seq -> replica -> its CHECKPOINT (ours included)."""
        self.prepares: dict[tuple[int, int], dict[int, Prepare]] = {}
        """(view, seq) -> replica -> its PREPARE, from the other replicas."""
        self.view_changes: dict[int, dict[int, ViewChange]] = {}
        """new view -> replica -> its VIEW-CHANGE, from the other replicas."""

    def incoming(self, event: Event) -> Event | None:
        if isinstance(event, Deliver) and event.sender != self.ctx.replica_id:
            self.collect(_peek(event.data))
        return event

    def collect(self, message: Any) -> None:
        if isinstance(message, Checkpoint):
            self.checkpoints.setdefault(message.seq, {})[message.replica] = message
            self._prune(message.seq)
        elif isinstance(message, Prepare):
            self.prepares.setdefault((message.view, message.seq), {})[message.replica] = message
        elif isinstance(message, ViewChange) and message.replica != self.ctx.replica_id:
            self.view_changes.setdefault(message.new_view, {})[message.replica] = message

    def _prune(self, newest: int) -> None:
        floor = newest - 2 * self.ctx.config.watermark_window
        for seq in [s for s in self.checkpoints if s < floor]:
            del self.checkpoints[seq]
        for key in [k for k in self.prepares if k[1] < floor]:
            del self.prepares[key]

    def stable_proofs(self) -> list[tuple[int, tuple[Checkpoint, ...]]]:
        """Every genuine checkpoint proof it can assemble, oldest first."""
        quorum = self.ctx.config.quorum
        proofs: list[tuple[int, tuple[Checkpoint, ...]]] = []
        for seq in sorted(self.checkpoints):
            by_digest: dict[bytes, list[Checkpoint]] = {}
            for replica in sorted(self.checkpoints[seq]):
                cp = self.checkpoints[seq][replica]
                by_digest.setdefault(cp.digest, []).append(cp)
            for votes in by_digest.values():
                if len(votes) >= quorum:
                    proofs.append((seq, tuple(votes[:quorum])))
                    break
        return proofs

    def rebuild_new_view(self, nv: NewView, view_changes: tuple[ViewChange, ...]) -> NewView:
        """``nv`` with V replaced, and O recomputed from it and signed: what backups recompute."""
        me = self.ctx.replica_id
        plan = honest_new_view_plan(view_changes)
        pre_prepares = tuple(
            self.sign(PrePrepare(nv.view, p.seq, p.digest, p.timestamp_ms, p.requests, me, b""))
            for p in plan.proposals
        )
        rebuilt: NewView = self.sign(NewView(nv.view, view_changes, pre_prepares, me, b""))
        return rebuilt


@behaviour("forged-view-change")
class ForgedViewChange(ProofCollector):
    """A primary that provokes a view change and then lies in its VIEW-CHANGEs' proofs.

    The attack is on how replicas judge C and P, and on what the NEW-VIEW
    computation then makes of them. The set-up: as primary it behaves until
    ``stall_ms`` (default 1000); then it sends its next PRE-PREPARE to all
    backups but one and its own COMMIT for it to the first backup only (so
    that slot can commit there, is prepared at the others it reached, and
    unknown to the last one), and proposes nothing more. With ``quiet`` = 1
    it never sends CHECKPOINTs (so a checkpoint 2f correct replicas reached
    stays unproven without the last one) and stops its PREPAREs, COMMITs and
    STATE-CHUNKs at the stall, so the correct replicas need each other. The
    backups' timers expire and they move to the next view. From then on
    every VIEW-CHANGE it sends, and one it broadcasts on its own half a
    view-change timeout after it stalls (once the PREPAREs it staples have
    come in, and before the next primary picks V), carries one forgery
    (``trick``):

    Checkpoint proof C, all claiming a stable checkpoint a full window above
    the genuine one (where nobody can serve state):

    ``unproven-stable``   a genuine proof, but of the lower checkpoint;
    ``fake-proof``        a quorum of CHECKPOINTs in other replicas' names, unsigned;
    ``duplicate-signer``  its own CHECKPOINT repeated a quorum of times;
    ``mixed-digest``      (at the newest checkpoint 2f others signed) its own
                          CHECKPOINT with a wrong digest, first, beside the
                          others' genuine ones.

    Prepared certificates P, for the half-proposed slot (its own PRE-PREPARE
    with forged operations, re-rolled to win the digest tie-break):

    ``prepared-other-digest``  the 2f genuine PREPAREs backups sent for the real batch;
    ``prepared-other-view``    genuine PREPAREs from another view;
    ``prepared-unsigned``      PREPAREs in the backups' names, unsigned.

    ``mixed-views``  its oldest genuine stable checkpoint instead of its
                     newest, with the genuine certificates still above it:
                     V then holds several stable checkpoints and
                     certificates from several views at once.

    The default, ``cycle``, uses trick number (new view mod 8). When it leads
    a view itself, its NEW-VIEW's V holds its forged VIEW-CHANGE and O is
    recomputed from that V, as a backup that accepted the forgery would.
    Options: ``trick``, ``stall_ms`` (default 1000), ``quiet`` (default 0).
    """

    TRICKS: ClassVar[tuple[str, ...]] = (
        "unproven-stable",
        "fake-proof",
        "duplicate-signer",
        "mixed-digest",
        "prepared-other-digest",
        "prepared-other-view",
        "prepared-unsigned",
        "mixed-views",
    )
    OPTIONS = (
        Option.choice("trick", "cycle", TRICKS, "the forged proof (cycle: one per view)"),
        Option.integer("stall_ms", 1000, "when, as primary, it stalls half-way through a batch"),
        Option.flag("quiet", "withhold its CHECKPOINTs throughout and its votes after the stall"),
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.half: PrePrepare | None = None
        """The PRE-PREPARE it sent to all backups but one when it stalled."""
        self.latest: PrePrepare | None = None
        self._half_at = 0
        self._now_ms = 0
        self._trick = chosen_trick(self, "cycle", self.TRICKS)
        self.sent: dict[int, ViewChange] = {}
        """new view -> the forged VIEW-CHANGE sent for it (receivers keep one per view)."""

    def trick(self, new_view: int) -> str:
        if self._trick == "cycle":
            return self.TRICKS[new_view % len(self.TRICKS)]
        return self._trick

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        me = self.ctx.replica_id
        stalled = now_ms >= self.param("stall_ms", 1000)
        quiet = bool(self.param("quiet", 0))
        self._now_ms = now_ms
        out: list[Emit] = []
        for send in sends:
            message: Any = send.message
            if isinstance(message, Checkpoint):
                self.collect(message)
            if isinstance(message, PrePrepare) and message.replica == me:
                out.extend(self._propose(send, message, stalled))
            elif isinstance(message, Commit) and self._withheld(message):
                out.append(Emit(self.others()[0], message))
            elif quiet and self._silenced(message, stalled):
                continue
            elif isinstance(message, ViewChange) and message.replica == me:
                out.append(Emit(send.to, self.forged(message.new_view, message)))
            elif isinstance(message, NewView) and message.replica == me:
                out.append(Emit(send.to, self._own_new_view(message)))
            else:
                out.append(Emit(send.to, message))
        view = self.ctx.view()
        if self._ready_to_lie(now_ms) and view + 1 not in self.sent:
            out.append(Emit(BROADCAST, self.forged(view + 1, None)))
        return out

    def _ready_to_lie(self, now_ms: int) -> bool:
        """Stalled, and (leading) the half-proposed slot had time to gather its PREPAREs."""
        stall = self.param("stall_ms", 1000)
        if now_ms < stall:
            return False
        if self.ctx.config.primary(self.ctx.view()) != self.ctx.replica_id:
            return True
        settle = self.ctx.config.view_change_timeout_ms / 2
        return self.half is not None and now_ms >= self._half_at + settle

    @staticmethod
    def _silenced(message: Any, stalled: bool) -> bool:
        """What a quiet forger withholds: every CHECKPOINT; its votes and state once stalled."""
        return isinstance(message, Checkpoint) or (
            stalled and isinstance(message, (Prepare, Commit, StateChunk))
        )

    def _propose(self, send: Send, pp: PrePrepare, stalled: bool) -> list[Emit]:
        if not stalled:
            self.latest = pp
            return [Emit(send.to, pp)]
        if self.half is not None:
            return []
        self.half = pp
        self._half_at = self._now_ms
        return [Emit(r, pp) for r in self.others()[:-1]]

    def _withheld(self, commit: Commit) -> bool:
        half = self.half
        return half is not None and (commit.view, commit.seq) == (half.view, half.seq)

    def _own_new_view(self, nv: NewView) -> NewView:
        own = self.forged(nv.view, None)
        chosen = tuple(own if vc.replica == self.ctx.replica_id else vc for vc in nv.view_changes)
        return self.rebuild_new_view(nv, chosen)

    # ------------------------------------------------------------------ forgeries

    def forged(self, new_view: int, genuine: ViewChange | None) -> ViewChange:
        """The VIEW-CHANGE it sends for ``new_view`` (the same one every time it is asked)."""
        sent = self.sent.get(new_view)
        if sent is not None:
            return sent
        proofs = self.stable_proofs()
        stable, proof = proofs[-1] if proofs else (0, ())
        prepared = genuine.prepared if genuine is not None else ()
        trick = self.trick(new_view)
        if trick in ("unproven-stable", "fake-proof", "duplicate-signer", "mixed-digest"):
            stable, proof = self._checkpoint_lie(trick, stable, proof)
            prepared = ()
        elif trick == "mixed-views":
            stable, proof = proofs[0] if proofs else (0, ())
            high = stable + self.ctx.config.watermark_window
            prepared = tuple(p for p in prepared if stable < p.pre_prepare.seq <= high)
        else:
            lie = self._prepared_lie(trick, new_view)
            if lie is not None and stable < lie.pre_prepare.seq:
                prepared = (
                    *(p for p in prepared if p.pre_prepare.seq != lie.pre_prepare.seq),
                    lie,
                )
        me = self.ctx.replica_id
        vc: ViewChange = self.sign(ViewChange(new_view, stable, proof, prepared, me, b""))
        self.sent[new_view] = vc
        return vc

    def _checkpoint_lie(
        self, trick: str, stable: int, proof: tuple[Checkpoint, ...]
    ) -> tuple[int, tuple[Checkpoint, ...]]:
        cfg, me = self.ctx.config, self.ctx.replica_id
        interval = cfg.checkpoint_interval
        high = stable + interval * (cfg.watermark_window // interval)
        bogus = self.garbage_digest()
        own: Checkpoint = self.sign(Checkpoint(high, bogus, me, b""))
        if trick == "unproven-stable":
            return high, proof
        if trick == "duplicate-signer":
            return high, (own,) * cfg.quorum
        if trick == "fake-proof":
            names = [r for r in range(cfg.n) if r != me][: cfg.quorum - 1]
            return high, (own, *(Checkpoint(high, bogus, r, b"") for r in names))
        # mixed-digest: the newest seq enough others signed, our wrong digest leading the proof
        signed = [
            s for s, cps in self.checkpoints.items() if len(_signed_by(cps, me)) >= cfg.quorum - 1
        ]
        if not signed:
            return stable, proof
        seq = max(signed)
        genuine = _signed_by(self.checkpoints[seq], me)[: cfg.quorum - 1]
        wrong: Checkpoint = self.sign(Checkpoint(seq, bogus, me, b""))
        return seq, (wrong, *genuine)

    def _prepared_lie(self, trick: str, new_view: int) -> PreparedProof | None:
        target = self.half or self.latest
        if target is None or target.view >= new_view:
            return None
        me, quorum = self.ctx.replica_id, self.ctx.config.quorum
        requests = forged_requests(target.requests, beat=target.digest)
        digest = batch_digest(requests)
        pp: PrePrepare = self.sign(
            dataclasses.replace(target, digest=digest, requests=requests, signature=b"")
        )
        if trick == "prepared-unsigned":
            backups = [r for r in range(self.ctx.config.n) if r != me][: quorum - 1]
            prepares = tuple(
                Prepare(pp.view, pp.seq, digest, pp.timestamp_ms, r, b"") for r in backups
            )
        elif trick == "prepared-other-digest":
            votes = self.prepares.get((target.view, target.seq), {})
            prepares = tuple(_signed_by(votes, me)[: quorum - 1])
        else:  # prepared-other-view: the same slot's genuine PREPAREs from another view
            others = sorted(k for k in self.prepares if k[1] == target.seq and k[0] != pp.view)
            votes = self.prepares[others[-1]] if others else {}
            prepares = tuple(_signed_by(votes, me)[: quorum - 1])
        return PreparedProof(pp, prepares)


# ------------------------------------------------------------------------- commits


@behaviour("forged-commit")
class ForgedCommit(Liar):
    """The ``liar``'s selective votes, topped up with COMMITs no correct replica sent.

    The attack: the liar (see :class:`sim.world.byzantine.Liar`) leaves its
    victim holding a prepared batch with only f+1 genuine COMMITs (the
    victim's and its own), and then leads a view that never learns of the
    batch. A correct victim waits for 2f+1 and stays safe. This behaviour
    also sends the victim, for each batch it lies about,

    * COMMITs for it in the names of the replicas that stay silent towards
      the victim (garbage signatures: it holds only its own key);
    * its own COMMIT for another batch at the same slot (a wrong digest);
    * once it has moved to a later view, the genuine PREPAREs it saw in
      earlier views, replayed verbatim.

    A victim that skips COMMIT authentication counts the forged votes, reaches
    2f+1, and executes a batch the next view replaces. Options: those of
    ``liar`` (``victim``, ``hollow``).
    """

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._seen_prepares: list[bytes] = []
        self._replayed_in = 0

    def incoming(self, event: Event) -> Event | None:
        keep = isinstance(event, Deliver) and len(self._seen_prepares) < 256
        if keep and isinstance(event, Deliver) and isinstance(_peek(event.data), Prepare):
            self._seen_prepares.append(event.data)
        return super().incoming(event)

    def _confirm(self, prepare: Prepare) -> list[Emit]:
        out = super()._confirm(prepare)
        if not out:
            return out
        me, victim = self.ctx.replica_id, self.victim
        fields = {f.name: getattr(prepare, f.name) for f in dataclasses.fields(prepare)}
        for r in range(self.ctx.config.n):
            if r not in (me, victim):
                forged = Commit(**{**fields, "replica": r, "signature": self.garbage_digest()})
                out.append(Emit(victim, forged))
        other: Commit = self.sign(Commit(**{**fields, "digest": self.garbage_digest()}))
        out.append(Emit(victim, other))
        return out

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out = super().outgoing(now_ms, sends)
        view = self.ctx.view()
        if view > self._replayed_in and self._seen_prepares:
            self._replayed_in = view
            out.extend(Emit(BROADCAST, data) for data in self._seen_prepares)
            self._seen_prepares.clear()
        return out


# ------------------------------------------------------------------ the new primary


@behaviour("subset-new-view")
class SubsetNewView(ProofCollector):
    """A new primary that builds NEW-VIEW from the quorum of VIEW-CHANGEs carrying least.

    The attack: PBFT lets the new primary pick *any* 2f+1 valid
    VIEW-CHANGEs (a quorum, ceil((n+f+1)/2) in general) for V, and O is
    recomputed from V by every backup. When its NEW-VIEW goes out, this
    primary picks, among all the VIEW-CHANGEs it holds, its own, emptied of
    prepared certificates and reporting its oldest provable stable
    checkpoint, plus the others' that carry the fewest certificates, the
    oldest views and the lowest stable checkpoints: O is as small as V can
    make it, and V mixes stable checkpoints and views. It is still a valid
    quorum, so correct backups must accept it; safety holds because any
    quorum meets every commit quorum in a correct replica that prepared what
    committed. Then it also proposes null batches, in the new view, for
    every slot above V's stable checkpoint that it saw voted on: O covers
    every batch that may have committed, so a correct replica refuses them
    as conflicting with O, while one that built a smaller O executes a null
    batch where others executed a real one.

    Option ``strip`` (default 0): when 1, the others' VIEW-CHANGEs in V also
    lose their prepared certificates (keeping their now invalid
    signatures), so V still looks like a quorum of distinct replicas for the
    right view but O loses what they prepared: only a replica that checks
    every VIEW-CHANGE a NEW-VIEW carries notices.
    """

    OPTIONS = (
        Option.flag("strip", "also strip the others' VIEW-CHANGEs in V of their certificates"),
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._hollowed: set[int] = set()

    def outgoing(self, now_ms: int, sends: list[Send]) -> list[Emit]:
        out: list[Emit] = []
        for send in sends:
            message: Any = send.message
            if isinstance(message, Checkpoint):
                self.collect(message)
            if isinstance(message, ViewChange) and message.replica == self.ctx.replica_id:
                message = self._forgetful(message)
            elif isinstance(message, NewView) and message.replica == self.ctx.replica_id:
                message = self.rebuild_new_view(message, self.choose(message))
                out.extend(Emit(BROADCAST, pp) for pp in self._hollow(now_ms, message))
            out.append(Emit(send.to, message))
        return out

    def _hollow(self, now_ms: int, nv: NewView) -> list[PrePrepare]:
        """Null batches for the slots above V's checkpoint that it saw voted on (O's included)."""
        if nv.view in self._hollowed:
            return []
        self._hollowed.add(nv.view)
        top = max((seq for _view, seq in self.prepares), default=0)
        start = max((vc.stable_seq for vc in nv.view_changes), default=0) + 1
        me = self.ctx.replica_id
        return [
            self.sign(PrePrepare(nv.view, seq, NULL_DIGEST, now_ms, (), me, b""))
            for seq in range(start, top + 1)
        ]

    def _forgetful(self, vc: ViewChange) -> ViewChange:
        proofs = self.stable_proofs()
        stable, proof = vc.stable_seq, vc.checkpoint_proof
        older = [(s, p) for s, p in proofs if s <= stable]
        if older:
            stable, proof = older[0]
        forgetful: ViewChange = self.sign(
            dataclasses.replace(vc, stable_seq=stable, checkpoint_proof=proof, prepared=())
        )
        return forgetful

    def choose(self, nv: NewView) -> tuple[ViewChange, ...]:
        me = self.ctx.replica_id
        own = next(vc for vc in nv.view_changes if vc.replica == me)
        pool = {vc.replica: vc for vc in nv.view_changes if vc.replica != me}
        pool.update(self.view_changes.get(nv.view, {}))

        def weight(vc: ViewChange) -> tuple[int, int, int, int]:
            views = sum(p.pre_prepare.view for p in vc.prepared)
            return (len(vc.prepared), views, vc.stable_seq, vc.replica)

        others = sorted(pool.values(), key=weight)[: self.ctx.config.quorum - 1]
        if self.param("strip", 0):
            # Their signatures stay as they were: they no longer match what they sign.
            others = [dataclasses.replace(vc, prepared=()) for vc in others]
        return (self._forgetful(own), *others)
