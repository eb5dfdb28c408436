"""The simulator's machinery (clock, network, faults, disks, traces) with a toy protocol.

These tests drive the simulator with a deliberately trivial "primary orders
everything" replica and client defined here, so they check the host side —
routing, loss, partitions, crash and restore, persistence, determinism,
traces — independently of the real PBFT replica.
"""

from __future__ import annotations

import collections
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from ledger.codec import CodecError, decode, encode
from pbft.api import BROADCAST, Output, PBFTConfig, Send, Tick
from pbft.messages import CommittedBatch, PrePrepare, Reply, Request, batch_digest
from sim.scenario.model import Expect, Fault, Latency, NetworkSpec, Scenario, WorkloadSpec
from sim.world.disk import RECORDS_FILE, read_records
from sim.world.results import percentiles
from sim.world.simulation import run_scenario


class ToyReplica:
    """Replica 0 numbers requests and broadcasts them; everyone executes and replies."""

    def __init__(self, replica_id: int, config: PBFTConfig, auth: Any, app: Any) -> None:
        self.id = replica_id
        self.config = config
        self.auth = auth
        self.app = app
        self.view = 0
        self.stable_checkpoint = 0
        self.stats: collections.Counter[str] = collections.Counter()
        self.pending: dict[int, PrePrepare] = {}
        self.ordered: dict[tuple[int, int], PrePrepare] = {}
        self.results: dict[int, list[bytes]] = {}
        self.next_seq = app.last_executed + 1

    @classmethod
    def restore(
        cls, replica_id: int, config: PBFTConfig, auth: Any, app: Any, records: Sequence[bytes]
    ) -> ToyReplica:
        replica = cls(replica_id, config, auth, app)
        replica.next_seq = max([app.last_executed, *(decode(r).seq for r in records)]) + 1
        return replica

    def step(self, event: Any) -> Output:
        out = Output()
        if isinstance(event, Tick):
            return out
        try:
            message: Any = decode(event.data)
        except CodecError as exc:
            self.stats["drop.codec-" + exc.reason] += 1
            return out
        if isinstance(message, Request) and self.id == 0:
            key = (message.client, message.timestamp)
            pp = self.ordered.get(key)
            if pp is None:
                requests = (message,)
                pp = PrePrepare(
                    0, self.next_seq, batch_digest(requests), event.now_ms, requests, 0, b""
                )
                self.ordered[key] = pp
                self.next_seq += 1
                out.persist.append(encode(pp))
            out.send.append(Send(BROADCAST, pp))  # a retry re-sends what was lost
            self._accept(pp, out)
        elif isinstance(message, PrePrepare) and event.sender == 0:
            self._accept(message, out)
        else:
            self.stats["drop.unexpected"] += 1
        return out

    def _accept(self, pp: PrePrepare, out: Output) -> None:
        if pp.seq <= self.app.last_executed:
            self._reply(pp, self.results[pp.seq], out)
            return
        self.pending[pp.seq] = pp
        while (nxt := self.pending.pop(self.app.last_executed + 1, None)) is not None:
            batch = CommittedBatch(nxt.seq, 0, nxt.timestamp_ms, nxt.requests, ())
            self.results[nxt.seq] = list(self.app.execute(batch))
            out.executed.append(batch)
            self._reply(nxt, self.results[nxt.seq], out)

    def _reply(self, pp: PrePrepare, results: list[bytes], out: Output) -> None:
        for request, result in zip(pp.requests, results, strict=True):
            reply = Reply(0, request.timestamp, request.client, self.id, result, b"")
            out.send.append(Send(request.client, reply))


@dataclass
class ToyOutput:
    send: list[Send] = field(default_factory=list)
    completed: list[Any] = field(default_factory=list)
    wake_at_ms: int | None = None


@dataclass(frozen=True)
class Done:
    timestamp: int
    operation: bytes
    result: bytes
    latency_ms: int


class ToyClient:
    """Sends to replica 0, retries every 200 ms, accepts f+1 matching replies."""

    def __init__(self, client_id: int, config: PBFTConfig, auth: Any) -> None:
        self.id = client_id
        self.config = config
        self.timestamp = 0
        self.current: Request | None = None
        self.sent_at = 0
        self.votes: dict[bytes, set[int]] = {}

    @property
    def busy(self) -> bool:
        return self.current is not None

    def submit(self, operation: bytes, now_ms: int) -> ToyOutput:
        self.timestamp += 1
        self.current = Request(self.id, self.timestamp, operation, b"")
        self.sent_at = now_ms
        self.votes = {}
        return ToyOutput([Send(0, self.current)], wake_at_ms=now_ms + 200)

    def step(self, event: Any) -> ToyOutput:
        current = self.current
        if current is None:
            return ToyOutput()
        if isinstance(event, Tick):
            return ToyOutput([Send(0, current)], wake_at_ms=event.now_ms + 200)
        reply = decode(event.data, Reply)
        if reply.timestamp != current.timestamp:
            return ToyOutput()
        voters = self.votes.setdefault(reply.result, set())
        voters.add(reply.replica)
        if len(voters) <= self.config.f:
            return ToyOutput()
        self.current = None
        done = Done(current.timestamp, current.operation, reply.result, event.now_ms - self.sent_at)
        return ToyOutput(completed=[done])


def toy(**changes: Any) -> Scenario:
    base = Scenario(
        name="toy",
        seed=3,
        duration_ms=20_000,
        network=NetworkSpec(
            replicas=4, crypto="modelled", latency=Latency(kind="uniform", min_ms=1, max_ms=10)
        ),
        workload=WorkloadSpec(clients=2, requests=20, rate_per_s=200, chaincode="none"),
    )
    return replace(base, **changes)


def run(scenario: Scenario, **kwargs: Any) -> Any:
    return run_scenario(scenario, replica_class=ToyReplica, client_class=ToyClient, **kwargs)


def test_every_request_commits_on_a_clean_network() -> None:
    result = run(toy(expect=Expect(safety=True, all_committed=True)))
    assert (result.submitted, result.committed) == (20, 20)
    assert result.ok and result.safe
    assert result.messages["PrePrepare"] == 3 * 20
    assert result.messages["Reply"] == 4 * 20
    heads = {r.head_hash for r in result.replicas}
    assert len(heads) == 1 and all(r.height == 21 for r in result.replicas)


def test_same_seed_same_run_other_seed_other_run() -> None:
    scenario = toy(
        network=replace(
            toy().network,
            latency=Latency(
                kind="exponential",
                min_ms=1,
                max_ms=30,
                mean_ms=8,
                duplicate_rate=0.2,
                drop_rate=0.1,
            ),
        )
    )
    one, two, other = run(scenario), run(scenario), run(scenario, seed=99)
    strip = lambda r: {k: v for k, v in r.to_json().items() if k != "wall_s"}  # noqa: E731
    assert strip(one) == strip(two)
    assert one.commits == two.commits
    assert strip(one) != strip(other)


def test_loss_and_duplication_are_counted() -> None:
    result = run(
        toy(
            network=replace(
                toy().network,
                latency=Latency(
                    kind="fixed", min_ms=2, max_ms=2, drop_rate=0.2, duplicate_rate=0.3
                ),
            )
        )
    )
    assert result.network_drops["loss"] > 0
    assert result.committed == 20  # the client's retries get through
    assert sum(r.dropped.get("net.loss", 0) for r in result.replicas) > 0


def test_partition_cuts_only_across_groups_and_heals() -> None:
    fault = Fault("partition", at_ms=0, until_ms=3000, groups=((0, 1), (2, 3)))
    result = run(toy(faults=(fault,)))
    assert result.network_drops["partition"] == 2 * 20  # pre-prepares to 2 and 3
    assert result.committed == 20  # clients are not cut, and 0 and 1 are f+1 repliers
    assert [r.height for r in result.replicas] == [21, 21, 1, 1]
    assert result.fault_model["gst_ms"] == 3000 and result.fault_model["within"]


def test_partition_without_end_never_heals() -> None:
    fault = Fault("partition", at_ms=0, groups=((0, 1), (2, 3)))
    result = run(toy(faults=(fault,), duration_ms=2000))
    assert result.fault_model["gst_ms"] is None
    assert not result.liveness_checked
    assert result.replicas[3].height == 1 and result.replicas[1].height == 21


def test_one_way_link_fault() -> None:
    fault = Fault("link", at_ms=0, until_ms=20_000, src=0, dst=3, drop_rate=1.0)
    result = run(toy(faults=(fault,)))
    assert result.network_drops["link"] == 20
    assert result.replicas[3].height == 1
    assert result.committed == 20


def test_crash_loses_messages_and_recovery_restores_from_disk(tmp_path: Path) -> None:
    faults = (Fault("crash", at_ms=10, replica=0), Fault("recover", at_ms=400, replica=0))
    result = run(toy(faults=faults, duration_ms=5000), data_dir=tmp_path)
    assert result.network_drops["crashed"] > 0
    assert result.committed == 20 and result.safe
    assert not result.replicas[0].crashed
    stored = list(read_records(tmp_path / "replica-0" / RECORDS_FILE))
    assert [decode(r).seq for r in stored] == list(range(1, 21))


def test_crash_beyond_f_is_reported_outside_the_model() -> None:
    faults = (Fault("crash", at_ms=0, replica=0), Fault("crash", at_ms=0, replica=2))
    result = run(toy(faults=faults, duration_ms=3000))
    assert not result.fault_model["within"] and result.fault_model["max_faulty"] == 2
    assert result.committed == 0


def test_trace_follows_the_contract_schema(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    faults = (Fault("crash", at_ms=50, replica=3),)
    result = run(
        toy(
            faults=faults,
            network=replace(
                toy().network, latency=Latency(kind="fixed", min_ms=1, max_ms=1, drop_rate=0.1)
            ),
        ),
        trace=path,
    )
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert events[0] == {
        "ev": "meta",
        "scenario": "toy",
        "seed": 3,
        "n": 4,
        "f": 1,
        "clients": [1000, 1001],
    }
    kinds = collections.Counter(e["ev"] for e in events)
    assert kinds["send"] == sum(result.messages.values())
    assert kinds["deliver"] + kinds["drop"] == kinds["send"]
    sends = {e["id"]: e for e in events if e["ev"] == "send"}
    for e in events:
        if e["ev"] in ("deliver", "drop"):
            assert sends[e["id"]]["to"] == e["to"] and sends[e["id"]]["type"] == e["type"]
    assert {e["reason"] for e in events if e["ev"] == "drop"} == {"loss", "crashed"}
    assert [e["kind"] for e in events if e["ev"] == "fault"] == ["crash"]
    commits = [e for e in events if e["ev"] == "commit"]
    assert len(commits) == sum(r.height - 1 for r in result.replicas)
    assert all(len(c["digest"]) == 16 for c in commits)


def test_fifo_links_keep_send_order() -> None:
    latency = Latency(kind="exponential", min_ms=1, max_ms=50, mean_ms=20, reorder=False)
    result = run(toy(network=replace(toy().network, latency=latency)))
    assert result.committed == 20  # ToyReplica buffers, so this is about not crashing...
    # ...and the real check: with FIFO links no pre-prepare overtakes another.
    import random

    from sim.world.network import Network

    net = Network(latency, random.Random(1), 4)
    times = [net.route(0, 1, float(t))[0][0] for t in range(200)]
    assert times == sorted(times)
    net2 = Network(replace(latency, reorder=True), random.Random(1), 4)
    times2 = [net2.route(0, 1, float(t))[0][0] for t in range(200)]
    assert times2 != sorted(times2)


def test_percentiles_nearest_rank() -> None:
    assert percentiles([]) == {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}


def test_unknown_fault_kind_is_an_input_error() -> None:
    from sim.errors import InputError

    with pytest.raises(InputError, match=r"fault\[0\]\.kind"):
        run(toy(faults=(Fault("meteor", at_ms=0),)))


def _continued(faults: tuple[Fault, ...] = ()) -> Scenario:
    """Real PBFT replicas and the kv chaincode, so views, blocks and timestamps are real."""
    return replace(
        toy(faults=faults, duration_ms=30_000),
        workload=WorkloadSpec(clients=2, requests=6, rate_per_s=50, chaincode="kv"),
    )


def _block_times(data: Path, replica: int) -> list[int]:
    from sim.fabric.app import open_ledger_dir
    from sim.fabric.channel import channel_config, parse_policy
    from sim.world.auth import network_crypto

    scenario = _continued()
    config = channel_config(network_crypto(scenario), parse_policy(scenario))
    ledger = open_ledger_dir(data / f"replica-{replica}" / "ledger", config)
    try:
        return [ledger.block(i).metadata.timestamp_ms for i in range(1, ledger.height)]
    finally:
        ledger.close()


def test_a_resumed_run_continues_the_view_the_chain_and_the_clock(tmp_path: Path) -> None:
    byzantine_primary = (Fault("byzantine", at_ms=0, replica=0, behavior="silent"),)
    first = run_scenario(_continued(byzantine_primary), data_dir=tmp_path)
    assert first.view_changes >= 1 and first.committed == 6 and first.safe
    view = first.replicas[1].view
    start = int(first.end_ms) + 1000
    copy = tmp_path.parent / "copy"
    shutil.copytree(tmp_path, copy)

    second = run_scenario(
        _continued(byzantine_primary), seed=5, data_dir=tmp_path, start_ms=start, resume=True
    )
    assert second.safe and second.committed == 6
    assert second.view_changes == 0  # the silent replica is no longer primary
    assert [r.view for r in second.replicas[1:]] == [view] * 3
    assert second.first_submit_ms is not None and second.first_submit_ms >= start
    assert all(r.height > first.replicas[r.id].height for r in second.replicas[1:])
    times = _block_times(tmp_path, 2)
    assert times == sorted(times) and times[-1] >= start
    again = run_scenario(
        _continued(byzantine_primary), seed=5, data_dir=copy, start_ms=start, resume=True
    )
    assert again.commits == second.commits  # same directory history, same run


def test_resume_needs_a_data_dir_and_start_is_not_negative() -> None:
    with pytest.raises(ValueError, match="data_dir"):
        run_scenario(_continued(), resume=True)
    with pytest.raises(ValueError, match="start_ms"):
        run_scenario(_continued(), start_ms=-1)
