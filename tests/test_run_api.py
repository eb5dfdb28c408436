"""The property-test API: ``simulate`` hands back the run, ``failure_report`` a command that fails.

``simulate`` must be the very run ``run_scenario`` gives (same seed, same
result), with the history, the replicas' final states and every message
sent; a report printed for a failing check must fail again when followed,
including the replica class the check used.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pbft.messages import NewView, PrePrepare, ViewChange
from pbft.replica import Replica
from sim.cli.main import main as cli_main
from sim.scenario.model import Expect, Fault
from sim.scenario.reader import load_scenario, parse_scenario
from sim.scenario.reproduce import failure_report
from sim.world.runs import Run, simulate
from sim.world.simulation import run_scenario

ROOT = Path(__file__).resolve().parent.parent

STUCK = """
name = "stuck"
seed = 0
duration_ms = 6000
[network]
replicas = 4
orgs = 1
batch_size = 1
batch_timeout_ms = 5
checkpoint_interval = 2
watermark_window = 4
view_change_timeout_ms = 300
crypto = "modelled"
[network.latency]
kind = "fixed"
min_ms = 0
max_ms = 1
reorder = false
[workload]
clients = 1
requests = 5
rate_per_s = 50
chaincode = "none"
[[fault]]
kind = "byzantine"
replica = 0
behavior = "bad-digest"
"""


class MuteViewChangeReplica(Replica):
    """Never lets a VIEW-CHANGE out, so a faulty primary is never replaced."""

    def step(self, event: Any) -> Any:
        out = super().step(event)
        out.send = [s for s in out.send if not isinstance(s.message, ViewChange)]
        return out


def without_wall(result: Any) -> dict[str, Any]:
    data = result.to_json()
    data.pop("wall_s")
    return dict(data)


def unproposed(run: Run) -> list[str]:
    """A user's invariant: correct replicas execute only batches someone proposed."""
    proposed = set()
    for sent in run.messages:
        if isinstance(sent.message, PrePrepare):
            proposed.add((sent.message.seq, sent.message.digest))
        elif isinstance(sent.message, NewView):
            proposed.update((pp.seq, pp.digest) for pp in sent.message.pre_prepares)
    return [
        f"replica {r.id} seq {seq}"
        for r in run.correct
        for seq, digest in run.history.executed.get(r.id, {}).items()
        if (seq, digest) not in proposed
    ]


def test_simulate_is_the_run_run_scenario_gives_with_its_insides() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "crash-recover.toml")
    run = simulate(scenario)
    assert without_wall(run.result) == without_wall(run_scenario(scenario))
    assert [r.id for r in run.replicas] == list(range(scenario.network.replicas))
    for state, report in zip(run.replicas, run.result.replicas, strict=True):
        assert state.crashed == report.crashed
        assert state.application.last_executed + 1 == report.height
        if state.replica is not None:
            assert state.replica.view == report.view
    assert run.history.executed and run.messages
    kinds = {type(m.message).__name__ for m in run.messages}
    assert {"PrePrepare", "Prepare", "Commit", "Request", "Reply"} <= kinds
    assert all(m.t_ms <= run.result.end_ms for m in run.messages)
    assert unproposed(run) == []


def test_an_invariant_over_the_run_sees_a_tampered_history() -> None:
    run = simulate(parse_scenario(STUCK.split("[[fault]]")[0]))
    assert run.result.committed == 5 and unproposed(run) == []
    run.history.executed[1][99] = b"\x00" * 32
    assert unproposed(run) == ["replica 1 seq 99"]


def test_failure_report_prints_a_command_that_fails_when_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = parse_scenario(STUCK, "stuck.toml")
    result = run_scenario(scenario, replica_class=MuteViewChangeReplica)
    assert result.committed < scenario.workload.requests
    report = failure_report(scenario, result, replica_class=MuteViewChangeReplica)
    command = report.split("`")[1]
    assert command == (
        "PYTHONPATH=. ledgersim run repro.toml --seed 0"
        " --replica test_run_api:MuteViewChangeReplica"
    )
    toml = report.split(":\n\n", 1)[1].split("\nsafety: ")[0]
    assert "[expect]\nall_committed = true" in toml
    monkeypatch.chdir(tmp_path)
    Path("repro.toml").write_text(toml)
    argv = shlex.split(command)[2:]  # after PYTHONPATH=. ledgersim
    assert cli_main(argv) == 1
    assert "expectation failed: all_committed" in capsys.readouterr().err
    assert cli_main([a for a in argv if "Mute" not in a and a != "--replica"]) == 0


def test_failure_report_states_the_broken_claim_or_the_given_one() -> None:
    scenario = parse_scenario(STUCK, "stuck.toml")
    result = run_scenario(scenario, replica_class=MuteViewChangeReplica)
    assert "[expect]\nall_committed = true" in failure_report(scenario, result)
    claim = failure_report(scenario, result, claim=Expect(min_committed=5))
    assert "[expect]\nmin_committed = 5" in claim and "all_committed" not in claim
    healthy = replace(scenario, faults=(Fault("crash", at_ms=5000, replica=3),))
    fine = run_scenario(healthy)
    assert "your own" in failure_report(healthy, fine)
