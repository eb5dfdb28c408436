"""Choosing the pre-prepares a NEW-VIEW re-issues (OSDI'99 section 4.4, TOCS'02 section 4.5).

Both the new primary (to build NEW-VIEW) and every backup (to check it) run
this same deterministic function over the same Q VIEW-CHANGE messages V (Q is
the quorum, 2f+1 for n = 3f+1); a backup rejects a NEW-VIEW whose O differs
from its own result. That recomputation is what stops a faulty new primary from
dropping a request that may already have committed somewhere. The two choices
the result rests on, min-s and which certificate wins a sequence number, are
rules (``ReplicaRules.new_view_min_s`` and ``certificate_wins``); this module
assembles O from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pbft.messages import PrePrepare, Request, ViewChange, batch_digest

NULL_DIGEST = batch_digest(())
"""Digest of the null request (an empty batch) that fills gaps in O."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """The content of one pre-prepare in O (the new primary signs it for the new view)."""

    seq: int
    digest: bytes
    timestamp_ms: int
    requests: tuple[Request, ...]

    def matches(self, pre_prepare: PrePrepare) -> bool:
        return (
            pre_prepare.seq == self.seq
            and pre_prepare.digest == self.digest
            and pre_prepare.timestamp_ms == self.timestamp_ms
            and pre_prepare.requests == self.requests
        )


@dataclass(frozen=True, slots=True)
class NewViewPlan:
    """min-s, max-s and O, as the paper defines them."""

    min_s: int
    max_s: int
    proposals: tuple[Proposal, ...]


Wins = Callable[[PrePrepare, PrePrepare], bool]
"""(candidate, held) -> True if ``candidate``'s certificate replaces ``held``'s in O."""


def plan_new_view(view_changes: Iterable[ViewChange], min_s: int, wins: Wins) -> NewViewPlan:
    """Compute max-s and O from V, given min-s and the rule that picks a certificate.

    max-s is the highest sequence number of any prepared certificate in V.
    Each sequence number in (min-s, max-s] gets the batch of the certificate
    that ``wins`` over all others for it, or a null batch if none prepared. A
    null batch borrows the agreed time of the nearest real batch below it (or
    above, if none) so block timestamps stay monotone and every replica
    computes the same value.
    """
    vcs = list(view_changes)
    best: dict[int, PrePrepare] = {}
    for vc in vcs:
        for proof in vc.prepared:
            pp = proof.pre_prepare
            if pp.seq <= min_s:
                continue
            held = best.get(pp.seq)
            if held is None or wins(pp, held):
                best[pp.seq] = pp
    max_s = max(best, default=min_s)
    proposals: list[Proposal] = []
    last_time: int | None = None
    for seq in range(min_s + 1, max_s + 1):
        chosen = best.get(seq)
        if chosen is not None:
            last_time = chosen.timestamp_ms
            proposals.append(Proposal(seq, chosen.digest, chosen.timestamp_ms, chosen.requests))
        else:
            if last_time is None:
                last_time = best[min(s for s in best if s > seq)].timestamp_ms
            proposals.append(Proposal(seq, NULL_DIGEST, last_time, ()))
    return NewViewPlan(min_s, max_s, tuple(proposals))
