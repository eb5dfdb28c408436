"""Deliberately broken replicas: the property suite must catch every one of them.

Each subclass breaks exactly one rule of Castro & Liskov's protocol by
overriding the hook on :class:`pbft.replica.Replica` that holds it. Every
docstring names the rule and a fault pattern that exposes the break; tests in
tests/test_pbft_mutants.py stage such a pattern in the direct-delivery harness
to show the break is observable, and sim's property suite runs its own
scenarios against ``MUTANTS``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pbft.log import Slot
from pbft.messages import NewView, PrePrepare, ViewChange
from pbft.newview import NULL_DIGEST, NewViewPlan
from pbft.replica import Replica


class CommitQuorumFPlusOne(Replica):
    """Commits with f+1 COMMITs instead of 2f+1 (OSDI'99 4.2).

    Exposed by: a partition that lets one replica commit with f+1 votes, then a
    view change decided by the other side, whose O never saw the batch.
    """

    def commit_quorum(self) -> int:
        return self.f + 1


class AcceptsPrePrepareFromAnyone(Replica):
    """Accepts a PRE-PREPARE (and prepared certificates) signed by any replica (OSDI'99 4.2).

    Exposed by: a Byzantine backup that issues its own pre-prepares ahead of the
    primary; together with its own prepares the fake batch prepares and commits,
    or a forged prepared certificate wins the NEW-VIEW tie-break.
    """

    def accepts_pre_prepare_from(self, pre_prepare: PrePrepare) -> bool:
        return True


class NewViewDropsPrepared(Replica):
    """Builds and checks NEW-VIEW as if no VIEW-CHANGE carried a prepared certificate.

    Exposed by: any view change after some replicas committed a batch the others
    had not: the new view fills that sequence number with a null batch.
    """

    def compute_new_view(self, view_changes: Iterable[ViewChange]) -> NewViewPlan:
        plan = super().compute_new_view(view_changes)
        nulls = tuple(p.__class__(p.seq, NULL_DIGEST, p.timestamp_ms, ()) for p in plan.proposals)
        return NewViewPlan(plan.min_s, plan.max_s, nulls)


class SkipsViewChangeSignatures(Replica):
    """Trusts VIEW-CHANGE messages without checking their signatures (TOCS'02 4.5).

    Exposed by: a Byzantine replica forging VIEW-CHANGEs in other replicas' names
    (empty P sets) so its NEW-VIEW drops committed batches, or to drag correct
    replicas into endless view changes through the f+1 join rule.
    """

    def view_change_signature_ok(self, vc: ViewChange, payload: bytes | None = None) -> bool:
        return True


class TrustsNewView(Replica):
    """Installs a NEW-VIEW's O without recomputing it from V (OSDI'99 4.4).

    Exposed by: a Byzantine new primary that leaves out (or swaps) a batch
    prepared in the previous view.
    """

    def new_view_o_ok(self, nv: NewView, plan: NewViewPlan) -> bool:
        return True


class SkipsGaps(Replica):
    """Executes past a missing sequence number, filling the gap with a null batch.

    Breaks in-order execution (OSDI'99 4.2). Exposed by: message loss or
    reordering that leaves one replica without a commit certificate for n while
    it has one for n+1; its block n then differs from everyone else's.
    """

    def next_executable(self) -> Slot | None:
        slot = super().next_executable()
        if slot is not None:
            return slot
        gap = self.app.last_executed + 1
        ahead = any(s.committed and not s.executed for n, s in self._log.items() if n > gap)
        if not ahead:
            return None
        filler = self._slot(gap)
        filler.pre_prepare = PrePrepare(
            self.view, gap, NULL_DIGEST, 0, (), self.config.primary(self.view), b""
        )
        filler.prepared = filler.committed = True
        return filler


class IgnoresWatermarks(Replica):
    """Accepts any sequence number above h, however far (OSDI'99 4.2).

    Exposed by: a Byzantine primary proposing far above H; the log grows without
    bound (memory invariant) and the replica commits batches it cannot checkpoint.
    """

    def in_watermarks(self, seq: int) -> bool:
        return seq > self.stable_checkpoint


class QuorumTwoFPlusOneForAnyN(Replica):
    """Uses 2f+1 as the quorum whatever n is (OSDI'99 assumes n = 3f+1).

    For n = 5, f = 1, two quorums of 3 can meet only in the Byzantine replica,
    so an equivocating primary can get two batches committed at one sequence
    number (tests/scenarios/equivocate-n5.toml). The right size is
    ceil((n+f+1)/2), which ``PBFTConfig.quorum`` gives.
    """

    def prepared_quorum(self) -> int:
        return 2 * self.f

    def commit_quorum(self) -> int:
        return 2 * self.f + 1

    def checkpoint_quorum(self) -> int:
        return 2 * self.f + 1


MUTANTS: dict[str, type[Replica]] = {
    "commit-quorum-f+1": CommitQuorumFPlusOne,
    "pre-prepare-from-anyone": AcceptsPrePrepareFromAnyone,
    "new-view-drops-prepared": NewViewDropsPrepared,
    "skips-view-change-signatures": SkipsViewChangeSignatures,
    "trusts-new-view": TrustsNewView,
    "skips-gaps": SkipsGaps,
    "ignores-watermarks": IgnoresWatermarks,
    "quorum-2f+1-for-any-n": QuorumTwoFPlusOneForAnyN,
}
