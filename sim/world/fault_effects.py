"""What each fault action does to the world when its time comes.

``sim.world.faults`` turns a scenario's faults into a timeline; here each
action takes effect: a Byzantine behaviour wraps a replica (with an RNG of its
own, derived from the seed and the fault's position), a replica crashes or
recovers, a partition or a link fault switches on or off in the network.
Every action is traced.
"""

from __future__ import annotations

from sim.world.catalogue import Context, make_behaviour
from sim.world.config import derive_rng
from sim.world.faults import FaultAction
from sim.world.network import LinkFault
from sim.world.state import WorldState


class FaultEffects(WorldState):
    def _fault(self, action: FaultAction) -> None:
        self._faults_pending -= 1
        fault = action.fault
        kind = action.kind
        replica = fault.replica
        detail = kind
        if kind == "byzantine" and replica is not None:
            node = self.nodes[replica]
            ctx = Context(
                replica_id=replica,
                config=self.config,
                auth=node.auth,
                rng=derive_rng(self.seed, f"byzantine/{replica}/{action.index}"),
                params=dict(fault.params),
                view=node.current_view,
            )
            node.behaviour = make_behaviour(str(fault.behavior), ctx)
            # Every step behind a behaviour is handled in full (``Hosting._step_replicas``).
            node.settled = None
            detail = f"byzantine {fault.behavior}"
        elif kind == "byzantine-end" and replica is not None:
            self.nodes[replica].behaviour = None
        elif kind == "crash" and replica is not None:
            self._crash(self.nodes[replica])
        elif kind == "recover" and replica is not None:
            self._recover(self.nodes[replica])
        elif kind == "partition-start":
            self.network.start_partition(action.index, fault.groups)
            detail = f"partition {[list(g) for g in fault.groups]}"
        elif kind == "partition-end":
            self.network.end_partition(action.index)
        elif kind == "link-start" and fault.src is not None and fault.dst is not None:
            self.network.start_link_fault(
                action.index,
                LinkFault(fault.src, fault.dst, fault.drop_rate, fault.extra_delay_ms),
            )
            detail = (
                f"link {fault.src}->{fault.dst} drop {fault.drop_rate} +{fault.extra_delay_ms}ms"
            )
        elif kind == "link-end" and fault.src is not None and fault.dst is not None:
            self.network.end_link_fault(action.index, fault.src, fault.dst)
        if self.trace is not None:
            self.trace.fault(self.now, kind, replica, detail)
