"""Hosting replicas: starting, stepping, crashing and recovering them, and the Byzantine hook.

Replicas are the real ``pbft`` state machines (any :class:`pbft.api.ReplicaFactory`),
driven only through ``step()``. The host's duties (``pbft.api``):
``Output.persist`` goes to the replica's disk before its sends are released;
``wake_at_ms`` becomes a timer event. A crash drops the replica object, its
timers and everything delivered to it while down; recovery rebuilds it with
``restore`` from the disk's records and the application reopened by the
workload from durable state.

A Byzantine replica is a correct one behind a :class:`sim.world.byzantine.Behaviour`,
which may rewrite what it receives and what it sends.

What the replicas execute is recorded in the history the invariants judge.
Batches ordered before the run (``resume``) are judged by agreement only:
validity (every request was submitted) was judged in the run that ordered them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from pbft.api import Event, LogMeasured, Output, Tick
from pbft.messages import CommittedBatch
from sim.trace.derive import installs_view
from sim.world.byzantine import Behaviour, Emit
from sim.world.slots import ReplicaSlot
from sim.world.state import WorldState

BATCH_FACTS_KEPT = 256
"""Batches whose digest and executed requests are kept for the other replicas to reuse."""


class Hosting(WorldState):
    def _start_replica(self, node: ReplicaSlot, *, restore: bool) -> None:
        """Open the application and build the replica: new, or rebuilt from its disk."""
        self._live_ids = None
        node.app = self.workload.make_application(node.id, node.disk)
        if restore:
            node.replica = replica = self.replica_class.restore(
                node.id, self.config, node.auth, node.app, list(node.disk.records)
            )
        else:
            node.replica = replica = self.replica_class(node.id, self.config, node.auth, node.app)
        # Asked once here: a check against a runtime protocol is too slow for every sample.
        node.measured = isinstance(replica, LogMeasured)
        self.history.new_incarnation(node.id)
        node.view = replica.view
        node.changing = bool(getattr(replica, "in_view_change", False))
        node.stable = 0
        self.history.record_view(node.id, node.view)

    def _step_replica(self, node: ReplicaSlot, event: Event) -> None:
        """Step one live replica with ``event`` and handle its output (:meth:`_step_replicas`)."""
        self._step_replicas((node.id,), event)

    def _step_replicas(self, ids: Iterable[int], event: Event) -> None:
        """Step the replicas ``ids`` (all live) with ``event`` in turn, handling each output.

        One call per burst part rather than per hop (``sim.world.loop``): a broadcast
        reaches 15 replicas at n = 16, and a call plus the loads of the world's
        attributes cost a few hundred instructions per hop. The steps run in order
        exactly as one call each would: nothing a step does crashes a replica.
        """
        trace = self.trace
        nodes = self.nodes
        for replica_id in ids:  # ids, not slots: indexing here is cheaper than a map()
            node = nodes[replica_id]
            behaviour = node.behaviour
            if behaviour is None:
                received = event
            else:
                rewritten = behaviour.incoming(event)
                if rewritten is None:
                    continue
                received = rewritten  # for this replica only: the next gets ``event``
            replica = node.replica
            assert replica is not None, "a crashed replica is never stepped"
            out: Output = replica.step(received)
            # The output handled last time again (``ReplicaSlot.settled``): it orders nothing
            # and its timer is queued, so only the view can have moved. Most steps are such
            # votes: a replica answers them with one shared idle output (``Replica.step``).
            # Never so behind a behaviour: its slot's ``settled`` is None while it has one.
            fresh = out is not node.settled
            if fresh:
                persist = out.persist
                if persist or out.compact:
                    node.disk.append(persist, out.compact)
                if out.executed:
                    self._executed(node, out)
            # ``sim.trace.writer.view_state`` after the step; the slot holds it from before.
            view = replica.view
            # Made a bool only when it moved: a replica's own flag is one, and this runs every
            # step (hence try, free when the attribute is there, rather than getattr's call).
            try:
                changing = replica.in_view_change  # type: ignore[attr-defined]
            except AttributeError:  # a replica class without view changes
                changing = False
            if view != node.view or changing != node.changing or trace is not None:
                self._view_moved(node, view, bool(changing), judged=behaviour is None)
            if not fresh:
                continue
            if persist:
                stable = replica.stable_checkpoint
                if stable != node.stable:
                    node.stable = stable
                    self.history.record_stable(node.id, stable, None)
            if behaviour is None:
                if out.send:
                    self._send_all(node.id, out.send)
            elif out.send or type(behaviour).outgoing is not Behaviour.outgoing:
                emits: list[Emit] = behaviour.outgoing(int(self.now), out.send)
                for emit in emits:
                    self._send(node.id, emit.to, emit.payload, emit.delay_ms)
            wake = out.wake_at_ms
            now = self.now
            # Usually a timer for that instant is queued already: skip the call then.
            if wake is not None and (wake < now or wake not in node.ticks):
                self._tick_at(node, wake, node.life)
            # Settled: an honest replica's output ordering nothing but a timer queued at
            # ``wake`` itself (one due in the past was queued for now: it must be again).
            if (
                persist
                or out.compact
                or out.executed
                or out.send
                or behaviour is not None
                or (wake is not None and wake < now)
            ):
                node.settled = None
            else:
                node.settled = out

    def _view_moved(self, node: ReplicaSlot, view: int, changing: bool, *, judged: bool) -> None:
        """Record a step's change of view or of view-change state (and trace every step's).

        Only a replica running its own rules (``judged``) can be said to have
        installed a view; a Byzantine one's moves are recorded but not counted.
        """
        history = self.history
        trace = self.trace
        if view != node.view:
            history.record_view(node.id, view)
            if view > node.view:
                history.record_view_attempt(node.id, view)
                if trace is not None:
                    trace.view_change(self.now, node.id, view)
        if judged:
            before = (int(node.view), node.changing)
            after = (int(view), changing)
            if installs_view(before, after):
                history.record_view_install(node.id, view)
            if trace is not None:
                trace.view_installed(self.now, node.id, before, after)
        node.view = view
        node.changing = changing

    def _executed(self, node: ReplicaSlot, out: Output) -> None:
        history = self.history
        last = len(out.executed) - 1
        head = node.app.head_digest
        for i, batch in enumerate(out.executed):
            # Only requests the replica executed: a stale or repeated one in a committed
            # batch stays in the block but is not run (pbft.api.Application).
            fresh = out.fresh[i] if i < len(out.fresh) else None
            if batch.seq <= self.ordered_before:  # validity was judged when it was ordered
                fresh = (False,) * len(batch.requests)
            digest, requests = self._batch_facts(batch, fresh)
            history.record_execution(
                node.id, batch.seq, digest, head if i == last else None, requests
            )
            if self.trace is not None:
                self.trace.commit(
                    self.now, node.id, batch.seq, batch.view, digest, len(batch.requests)
                )

    def _batch_facts(
        self, batch: CommittedBatch, fresh: tuple[bool, ...] | None
    ) -> tuple[bytes, tuple[tuple[int, int, bytes], ...]]:
        """A batch's digest and its executed requests as (client, timestamp, operation).

        Every replica executes the same batch, usually the very same requests
        tuple (decoded once, see ``ledger.codec.decode``): the answer is worked
        out once and shared. Keyed by the tuple's identity, which is sound
        because the entry keeps the tuple alive (its id cannot be reused).
        """
        requests = batch.requests
        known = self._batches.get(id(requests))
        if known is not None and known[0] is requests and known[1] == fresh:
            return known[2], known[3]
        mask = (True,) * len(requests) if fresh is None else fresh
        executed = tuple(
            (r.client, r.timestamp, r.operation)
            for r, new in zip(requests, mask, strict=True)
            if new
        )
        digest = batch.digest
        if len(self._batches) >= BATCH_FACTS_KEPT:
            self._batches.clear()
        self._batches[id(requests)] = (requests, fresh, digest, executed)
        return digest, executed

    def _crash(self, node: ReplicaSlot) -> None:
        if node.replica is None:
            return
        for key, value in node.replica.stats.items():
            node.past_stats[key] = node.past_stats.get(key, 0) + value
        node.replica = None
        self._live_ids = None
        self._down += 1
        node.life += 1
        node.ticks.clear()
        node.settled = None

    def _recover(self, node: ReplicaSlot) -> None:
        if node.replica is not None:
            return
        self._start_replica(node, restore=True)
        self._down -= 1
        self._step_replica(node, Tick(int(self.now)))

    def _sample_logs(self) -> None:
        """Record each live replica's log size, for the bounded-memory invariant."""
        for node in self.nodes:
            replica = node.replica
            if replica is not None and node.measured:
                self.history.record_log_size(node.id, cast(LogMeasured, replica).log_slots())
