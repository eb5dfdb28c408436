"""Choosing the pre-prepares a NEW-VIEW re-issues (OSDI'99 section 4.4, TOCS'02 section 4.5).

Both the new primary (to build NEW-VIEW) and every backup (to check it) run
this same deterministic function over the same 2f+1 VIEW-CHANGE messages V; a
backup rejects a NEW-VIEW whose O differs from its own result. That recomputation
is what stops a faulty new primary from dropping a request that may already have
committed somewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def plan_new_view(view_changes: Iterable[ViewChange]) -> NewViewPlan:
    """Compute min-s, max-s and O from V.

    min-s is the latest stable checkpoint in V; max-s the highest sequence number
    of any prepared certificate in V. Each sequence number in (min-s, max-s]
    gets the batch of its prepared certificate with the highest view, or a null
    batch if none prepared. A null batch borrows the agreed time of the nearest
    real batch below it (or above, if none) so block timestamps stay monotone
    and every replica computes the same value.
    """
    vcs = list(view_changes)
    min_s = max((vc.stable_seq for vc in vcs), default=0)
    best: dict[int, PrePrepare] = {}
    for vc in vcs:
        for proof in vc.prepared:
            pp = proof.pre_prepare
            if pp.seq <= min_s:
                continue
            held = best.get(pp.seq)
            if held is None or (pp.view, pp.digest) > (held.view, held.digest):
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
