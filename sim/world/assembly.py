"""Assembling a run's result: the invariants' verdicts, per-replica reports and the totals.

Safety is always judged. Liveness is judged only when the fault schedule is
inside PBFT's fault model and the network heals (a GST exists) with no
replica still down at the end: then every request must complete within a
bound after GST.
"""

from __future__ import annotations

from sim.world import invariants
from sim.world.results import ReplicaReport, RunResult, check_expectations
from sim.world.state import WorldState


class ResultAssembly(WorldState):
    def result(self, wall_s: float) -> RunResult:
        history = self.history
        fm = self.fault_model
        violations = invariants.safety(history, self.config.watermark_window)
        gst = fm["gst_ms"]
        live_checked = bool(fm["within"]) and gst is not None and not fm["down_at_end"]
        liveness: list[str] = []
        if live_checked:
            latency = self.scenario.network.latency
            bound = self.liveness_bound_ms
            if bound is None:
                bound = invariants.liveness_bound_ms(
                    self.config.view_change_timeout_ms, self.f, float(latency.max_ms)
                )
            liveness = invariants.liveness(history, self.start_ms + gst, bound, self.now)
        replicas: list[ReplicaReport] = []
        for node in self.nodes:
            stats = dict(node.past_stats)
            if node.replica is not None:
                for key, value in node.replica.stats.items():
                    stats[key] = stats.get(key, 0) + value
            dropped = {k[5:]: v for k, v in stats.items() if k.startswith("drop.") and v}
            dropped.update(self.drops_to[node.id])
            replicas.append(
                ReplicaReport(
                    id=node.id,
                    view=node.view,
                    height=node.app.last_executed + 1,
                    head_hash=node.app.head_digest,
                    byzantine=node.id in history.byzantine,
                    crashed=node.replica is None,
                    dropped=dropped,
                    stable_checkpoint=node.stable,
                )
            )
        views = history.view_figures
        commits = {
            r: [(s, d.hex()) for s, d in sorted(seqs.items())]
            for r, seqs in sorted(history.executed.items())
        }
        result = RunResult(
            scenario=self.scenario.name,
            seed=self.seed,
            n=self.n,
            f=self.f,
            safety_violations=violations,
            liveness_checked=live_checked,
            liveness_violations=liveness,
            requested=self.scenario.workload.requests,
            submitted=self.submitted,
            committed=self.committed,
            view_changes=views.installed,
            highest_view=max(views.highest, self.start_view),
            view_change_attempts=views.attempts,
            messages=dict(self.messages),
            bytes=dict(self.bytes),
            latencies_ms=self.latencies,
            end_ms=self.now,
            first_submit_ms=self.first_submit,
            last_commit_ms=self.last_commit,
            wall_s=wall_s,
            replicas=replicas,
            fault_model=fm,
            network_drops=dict(self.net_drops),
            workload=self.workload.summary(),
            commits=commits,
            events=self.events,
        )
        result.expectations = check_expectations(self.scenario.expect, result)
        return result
