"""Hypothesis drives a PBFT replica set as an adversarial network and checks it after every step.

Scenario-level property tests (sim/explore/strategies.py) draw a whole fault schedule
up front; this machine instead decides one move at a time — submit, deliver
one message, lose one, duplicate one, deliver out of order, let time pass,
crash or restore a replica, have a Byzantine replica replay or forge — so
Hypothesis can shrink a failure to the few moves that matter. Safety is
checked after every move with sim.world.invariants; liveness once at the end, after
the network heals (GST), because PBFT promises progress only then.

The fault model is respected: at most f replicas are faulty at once, counting
crashed ones and the one made Byzantine (which stays faulty for the whole
run, so the invariants never count it as correct). Byzantine power is
exactly PBFT's: it signs with its own key only.

Mutants from tests/pbft_mutants.py that this machine catches within its
budget (``test_machine_catches_mutant``): ``skips-gaps`` (a lost or overtaken
message leaves a gap it fills with a null batch: agreement),
``new-view-drops-prepared`` (delayed messages force a view change after a
partial commit: agreement) and ``pre-prepare-from-anyone`` (the Byzantine
backup's own PRE-PREPAREs wedge the slot: liveness after GST). The others need
attacks this machine does not stage (partitions steering a view change,
forged VIEW-CHANGEs or NEW-VIEWs, a primary running far above H); the
simulator's property suite covers them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections import deque
from typing import Any, ClassVar

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pbft_harness import Cluster
from pbft_mutants import MUTANTS

from ledger.codec import decode, encode
from ledger.hashing import GENESIS_HASH, header_hash
from pbft.api import Output
from pbft.messages import Commit, Prepare, PrePrepare, batch_digest, signing_bytes
from pbft.records import Snapshot, StableRecord
from pbft.replica import Replica
from sim.world.invariants import History, safety

PROTOCOL = {
    "batch_size": 2,
    "batch_timeout_ms": 10,
    "checkpoint_interval": 2,
    "watermark_window": 4,
    "view_change_timeout_ms": 200,
    "client_retry_ms": 100,
}
"""Small batches, windows and timeouts, so a few dozen moves reach checkpoints,
watermark limits, retransmission and view changes."""

HEAL_MS = 600_000
"""Virtual time allowed after GST: covers several view changes with backed-off timeouts."""

REMEMBERED_SENDS = 32
"""How many of its own recent messages a Byzantine replica can replay or forge from."""

KEPT_FIELDS = ("replica", "signature")
"""Fields a forgery keeps: the sender is the Byzantine replica, and it re-signs."""

picks = st.integers(0, 63)
"""An index into whatever list a move chooses from (taken modulo its length);
shrinks towards 0, the oldest message or lowest id."""


def _mutated_value(value: Any, delta: int) -> Any:
    """A different value of the same type, ``delta`` (>= 1) steering which one."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + delta
    if isinstance(value, bytes):
        if len(value) == 32:  # a digest: another well-formed one
            return hashlib.sha256(value + bytes([delta])).digest()
        return value + bytes([delta])
    if isinstance(value, tuple):
        return value[:-1] if value else value
    return value


def forge(message: Any, choice: int, delta: int) -> Any | None:
    """``message`` with one field changed, or ``None`` when nothing changes or it is malformed.

    Changing the requests of a PRE-PREPARE recomputes its digest, so the forgery
    is a consistent second batch for the slot: the equivocating primary.
    """
    names = [f.name for f in dataclasses.fields(message) if f.name not in KEPT_FIELDS]
    name = names[choice % len(names)]
    old = getattr(message, name)
    new = _mutated_value(old, delta)
    if new == old:
        return None
    changes: dict[str, Any] = {name: new}
    if isinstance(message, PrePrepare) and name == "requests":
        changes["digest"] = batch_digest(new)
    try:
        return dataclasses.replace(message, **changes)
    except ValueError:  # e.g. a field the message checks for shape
        return None


class PBFTMachine(RuleBasedStateMachine):
    """n replicas (real ``Replica`` unless a subclass names a mutant) and two clients."""

    n: ClassVar[int] = 4
    replica_class: ClassVar[type[Replica]] = Replica

    def __init__(self) -> None:
        super().__init__()
        self.cluster = Cluster(
            n=self.n,
            clients=2,
            latency=(1, 5),
            replica_class=self.replica_class,
            settings=dict(PROTOCOL),
        )
        self.f = self.cluster.config.f
        self.history = History(self.n)
        self.heads = [GENESIS_HASH] * self.n
        self.sent: list[deque[bytes]] = [deque(maxlen=REMEMBERED_SENDS) for _ in range(self.n)]
        self.operations = 0
        for i in range(self.n):
            self.history.new_incarnation(i)
            self._note_replica(i)
        self.cluster.observers.append(self._observe)

    # ------------------------------------------------------------ recording

    def _observe(self, replica: int, out: Output) -> None:
        for batch, fresh in zip(out.executed, out.fresh, strict=True):
            self.heads[replica] = header_hash(batch.seq, self.heads[replica], batch.digest)
            executed = [
                (r.client, r.timestamp, r.operation)
                for r, new in zip(batch.requests, fresh, strict=True)
                if new
            ]
            self.history.record_execution(
                replica, batch.seq, batch.digest, self.heads[replica], executed
            )
        for data in out.persist:
            rec: Any = decode(data)
            if isinstance(rec, StableRecord | Snapshot):
                seq = rec.seq if isinstance(rec, StableRecord) else rec.stable_seq
                self.history.record_stable(replica, seq, rec.proof[0].digest if rec.proof else None)
        self.sent[replica].extend(encode(s.message) for s in out.send)
        self._note_replica(replica)

    def _note_replica(self, replica: int) -> None:
        r = self.cluster.replicas[replica]
        self.history.record_view(replica, r.view)
        self.history.record_log_size(replica, r.memory_footprint()["slots"])

    # ------------------------------------------------------------ fault budget

    @property
    def faulty(self) -> set[int]:
        return self.cluster.crashed | set(self.history.byzantine)

    def _can_fault(self) -> bool:
        return len(self.faulty) < self.f

    def _byzantine(self) -> int:
        (byz,) = self.history.byzantine
        return byz

    # ------------------------------------------------------------ clients

    def _idle_clients(self) -> list[int]:
        return [c for c, obj in self.cluster.client_objs.items() if not obj.busy]

    @initialize()
    def workload(self) -> None:
        """Every client starts with a request, so no run is idle from the start."""
        for client in self._idle_clients():
            self._submit(client)

    @precondition(lambda self: self._idle_clients())
    @rule(pick=picks)
    def submit(self, pick: int) -> None:
        """An idle client sends a new request (PBFT clients have one outstanding at most)."""
        idle = self._idle_clients()
        self._submit(idle[pick % len(idle)])

    def _submit(self, client: int) -> None:
        self.operations += 1
        operation = f"op-{self.operations}".encode()
        self.cluster.submit(client, operation)
        request = self.cluster.client_objs[client].outstanding
        assert request is not None
        self.history.submitted[(client, request.timestamp)] = (operation, self.cluster.now)

    # ------------------------------------------------------------ network

    @rule(ms=st.sampled_from([5, 30, 150]))
    def run_network(self, ms: int) -> None:
        """The network behaves for a while: deliveries in latency order, timers on time."""
        self.cluster.run(max_ms=ms)

    @precondition(lambda self: self.cluster.queue)
    @rule(pick=picks)
    def deliver(self, pick: int) -> None:
        """Deliver any in-flight message now (pick > 0: overtaking older ones)."""
        self.cluster.deliver_now(*self.cluster.take(pick % len(self.cluster.queue)))

    @precondition(lambda self: self.cluster.queue)
    @rule(pick=picks)
    def drop(self, pick: int) -> None:
        self.cluster.take(pick % len(self.cluster.queue))

    @precondition(lambda self: self.cluster.queue)
    @rule(pick=picks)
    def duplicate(self, pick: int) -> None:
        """Deliver a copy now; the original stays in flight."""
        flying = self.cluster.in_flight()
        self.cluster.deliver_now(*flying[pick % len(flying)])

    @rule(ms=st.sampled_from([60, 250, 1000]))
    def advance_time(self, ms: int) -> None:
        """Time passes and nothing arrives: batch, STATUS and view-change timers fire."""
        self.cluster.advance(ms)

    # ------------------------------------------------------------ crashes

    @precondition(lambda self: self._can_fault())
    @rule(pick=picks)
    def crash(self, pick: int) -> None:
        up = [i for i in range(self.n) if i not in self.faulty]
        self.cluster.crash(up[pick % len(up)])

    @precondition(lambda self: self.cluster.crashed)
    @rule(pick=picks)
    def recover(self, pick: int) -> None:
        down = sorted(self.cluster.crashed)
        self._recover(down[pick % len(down)])

    def _recover(self, replica: int) -> None:
        self.cluster.recover(replica)
        self.history.new_incarnation(replica)
        self._note_replica(replica)

    # ------------------------------------------------------------ Byzantine

    @precondition(lambda self: not self.history.byzantine and self._can_fault())
    @rule(pick=picks)
    def turn_byzantine(self, pick: int) -> None:
        """From now on this replica may also send what a correct one never would."""
        up = [i for i in range(self.n) if i not in self.faulty]
        self.history.byzantine = frozenset({up[pick % len(up)]})

    def _others(self, sender: int) -> list[int]:
        return [p for p in range(self.n) if p != sender] + self.cluster.client_ids

    @precondition(lambda self: self.history.byzantine and self.sent[self._byzantine()])
    @rule(pick=picks, to=picks)
    def byzantine_replay(self, pick: int, to: int) -> None:
        """An old message of its own, to anyone (also to whom it was not meant for)."""
        byz = self._byzantine()
        old = self.sent[byz][pick % len(self.sent[byz])]
        others = self._others(byz)
        self.cluster.deliver_raw(byz, others[to % len(others)], old)

    @precondition(lambda self: self.history.byzantine and self.sent[self._byzantine()])
    @rule(pick=picks, to=picks, field=picks, delta=st.integers(1, 3))
    def byzantine_forge(self, pick: int, to: int, field: int, delta: int) -> None:
        """One of its messages with a field changed and a valid signature of its own."""
        byz = self._byzantine()
        message: Any = decode(self.sent[byz][pick % len(self.sent[byz])])
        forged = forge(message, field, delta)
        if forged is not None:
            self._send_forged(byz, to, forged)

    @precondition(lambda self: self.history.byzantine)
    @rule(ahead=st.integers(1, 3), to=picks, keep=picks)
    def byzantine_propose(self, ahead: int, to: int, keep: int) -> None:
        """A PRE-PREPARE of its own making, primary or not, backed by its own votes for it.

        Made from the requests clients await (a replica sees them all once
        clients broadcast their retries).
        """
        byz = self._byzantine()
        me = self.cluster.replicas[byz]
        waiting = [c.outstanding for c in self.cluster.client_objs.values() if c.outstanding]
        batch = tuple(r for k, r in enumerate(waiting) if keep >> k & 1)
        seq = me.last_executed + ahead
        digest, now = batch_digest(batch), self.cluster.now
        self._send_forged(byz, to, PrePrepare(me.view, seq, digest, now, batch, byz, b""))
        for vote in (Prepare, Commit):
            self._send_forged(byz, to, vote(me.view, seq, digest, now, byz, b""))

    def _send_forged(self, byz: int, to: int, message: Any) -> None:
        auth = self.cluster.keyring.authenticator(byz)
        signed = dataclasses.replace(message, signature=auth.sign(signing_bytes(message)))
        others = self._others(byz)
        self.cluster.deliver_raw(byz, others[to % len(others)], encode(signed))

    # ------------------------------------------------------------ checks

    @invariant()
    def safe(self) -> None:
        violations = safety(self.history, PROTOCOL["watermark_window"])
        assert not violations, violations

    def teardown(self) -> None:
        """GST: the network heals, crashed replicas return, the Byzantine one falls silent.

        Skipped when the run already failed (``teardown`` runs in a ``finally``),
        so Hypothesis shrinks the original failure rather than this one.
        """
        if sys.exc_info()[1] is not None:
            return
        for replica in sorted(self.cluster.crashed):
            self._recover(replica)
        self.cluster.run(until=self.cluster.all_done, max_ms=HEAL_MS)
        for client, done in self.cluster.completed.items():
            for c in done:
                self.history.completed[(client, c.timestamp)] = float(self.cluster.now)
        self.safe()
        unanswered = sorted(set(self.history.submitted) - set(self.history.completed))
        assert not unanswered, f"liveness after GST: requests {unanswered} never completed"


class PBFTSevenMachine(PBFTMachine):
    """n = 7, f = 2: a crash and a Byzantine replica at the same time."""

    n = 7


EXAMPLES = max(settings().max_examples, 200)
"""A run costs milliseconds, so even "ci" affords a few hundred; "long" asks for more."""

TestPBFTFour = pytest.mark.slow(PBFTMachine.TestCase)
TestPBFTFour.settings = settings(max_examples=EXAMPLES, stateful_step_count=40)
TestPBFTSeven = pytest.mark.slow(PBFTSevenMachine.TestCase)
TestPBFTSeven.settings = settings(max_examples=EXAMPLES // 2, stateful_step_count=40)


CAUGHT_MUTANTS = ("skips-gaps", "new-view-drops-prepared", "pre-prepare-from-anyone")
VIOLATION = "agreement|validity|views|checkpoints|memory|liveness"
"""What the machine's own checks report (not a crash or an assert inside pbft)."""


@pytest.mark.slow
@pytest.mark.parametrize("name", CAUGHT_MUTANTS)
def test_machine_catches_mutant(name: str) -> None:
    """The machine is not vacuous: against a broken replica it finds a failing schedule.

    Fixed settings (derandomized, no example database) whatever the profile,
    so this asserts the same search every time.
    """
    machine = type(f"Mutant_{name}", (PBFTMachine,), {"replica_class": MUTANTS[name]})
    with pytest.raises(AssertionError, match=VIOLATION):
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=300,
                stateful_step_count=40,
                derandomize=True,
                database=None,
                phases=[Phase.generate],  # finding a failure is the point; shrinking costs
                print_blob=False,
            ),
        )
