"""The message log of one sequence number: the pre-prepare, its votes, and their certificates.

Votes are kept per ``(view, digest, timestamp_ms)`` and per sender, so counting a quorum is a
dict length (no scans), a duplicate vote is a key collision, and a primary that
equivocates simply splits its backups' votes over two keys that never reach a
quorum together (OSDI'99 section 4.2).
"""

from __future__ import annotations

from typing import TypeVar

from pbft.messages import Commit, Prepare, PreparedProof, PrePrepare

V = TypeVar("V", Prepare, Commit)
T = TypeVar("T")
VoteKey = tuple[int, bytes, int]
"""(view, digest, timestamp_ms): what a PREPARE or COMMIT votes for at one sequence number."""


def lowest_numbered(votes: dict[int, T], count: int) -> tuple[T, ...]:
    """The votes of the ``count`` lowest-numbered replicas in ``votes``.

    How a certificate is picked from more votes than it needs, so that every
    replica holding the same votes keeps the same certificate (and bytes).
    """
    # map() over the dict's own lookup: no comprehension frame and no list in between.
    return tuple(map(votes.__getitem__, sorted(votes)[:count]))


def vote_key(message: PrePrepare | Prepare | Commit) -> VoteKey:
    """What ``message`` proposes or votes for: a vote matches a pre-prepare iff keys are equal."""
    return (message.view, message.digest, message.timestamp_ms)


class Slot:
    """One sequence number's share of the log, for the replica's current view."""

    __slots__ = (
        "commits",
        "committed",
        "executed",
        "pre_prepare",
        "prepared",
        "prepared_proof",
        "prepares",
        "sent_commit",
        "sent_prepare",
        "seq",
    )

    def __init__(self, seq: int, executed: bool) -> None:
        self.seq = seq
        self.pre_prepare: PrePrepare | None = None
        """The pre-prepare accepted in the current view."""
        self.prepares: dict[VoteKey, dict[int, Prepare]] = {}
        self.commits: dict[VoteKey, dict[int, Commit]] = {}
        self.prepared = False
        """prepared(m, v, n, i) for the current view (OSDI'99 4.2)."""
        self.committed = False
        """committed-local(m, v, n, i) for the current view."""
        self.executed = executed
        self.prepared_proof: PreparedProof | None = None
        """The prepared certificate of the highest view seen: this slot's entry in P."""
        self.sent_prepare: Prepare | None = None
        self.sent_commit: Commit | None = None

    def enter_view(self, view: int) -> None:
        """Forget per-view progress and votes of earlier views (they can no longer complete)."""
        self.pre_prepare = None
        self.prepared = False
        self.committed = False
        if self.sent_prepare is not None and self.sent_prepare.view < view:
            self.sent_prepare = None
        if self.sent_commit is not None and self.sent_commit.view < view:
            self.sent_commit = None
        for votes in (self.prepares, self.commits):
            for key in [k for k in votes if k[0] < view]:
                del votes[key]

    def add_prepare(self, prepare: Prepare) -> bool:
        """Record a vote; False if this sender already voted in this view (for any digest).

        One vote per sender and view keeps a slot's memory bounded whatever a
        Byzantine replica sends; a correct replica never votes twice in a view.
        """
        return record_vote(self.prepares, prepare) is not None

    def add_commit(self, commit: Commit) -> bool:
        return record_vote(self.commits, commit) is not None

    def record_prepare(self, prepare: Prepare) -> dict[int, Prepare] | None:
        """``add_prepare`` returning the votes now held for its key (None if refused).

        The caller can then tell from that count alone whether this vote could
        complete a certificate, instead of looking the pre-prepare's key up again.
        """
        return record_vote(self.prepares, prepare)

    def record_commit(self, commit: Commit) -> dict[int, Commit] | None:
        return record_vote(self.commits, commit)

    def prepare_votes(self, pp: PrePrepare) -> dict[int, Prepare]:
        """PREPAREs matching ``pp`` in view, digest and agreed time."""
        votes = self.prepares.get(vote_key(pp))
        return {} if votes is None else votes  # a fresh empty dict only when there are none

    def commit_votes(self, pp: PrePrepare) -> dict[int, Commit]:
        votes = self.commits.get(vote_key(pp))
        return {} if votes is None else votes

    def voters(self, view: int) -> int:
        """Distinct replicas that sent a PREPARE or COMMIT here in ``view`` (one vote each)."""
        senders: set[int] = set()
        for table in (self.prepares, self.commits):
            for (v, _digest, _ts), voters in table.items():
                if v == view:
                    senders.update(voters)
        return len(senders)

    def size(self) -> int:
        """Messages held (for memory-bound checks)."""
        held = sum(len(v) for v in self.prepares.values())
        held += sum(len(v) for v in self.commits.values())
        return held + (self.pre_prepare is not None) + (self.prepared_proof is not None)


def record_vote(table: dict[VoteKey, dict[int, V]], vote: V) -> dict[int, V] | None:
    """Add ``vote`` to ``table`` (a slot's PREPAREs or COMMITs); its key's voters, or None.

    None when its sender already voted in this view, for any key (``Slot.add_prepare``).
    The general case: ``NormalCase._on_agreement`` settles the usual received vote
    (its key the only one voted for, its sender new) without this call, and comes
    here for everything else.
    """
    replica, view = vote.replica, vote.view
    for (voted_view, _digest, _ts), voters in table.items():
        if voted_view == view and replica in voters:
            return None
    key = vote_key(vote)
    held = table.get(key)
    if held is None:
        held = table[key] = {}
    held[replica] = vote
    return held
