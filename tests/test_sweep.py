"""``ledgersim sweep``: seeds in parallel, a summary, and every failure with its replay command."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pbft.api import Event, Output
from pbft.messages import ViewChange
from pbft.replica import Replica
from sim.cli.main import main as cli_main
from sim.errors import InputError
from sim.explore.sweep import (
    MAX_CHUNK,
    SeedOutcome,
    chunk_sizes,
    chunks,
    parse_seeds,
    parse_shard,
    reproduce_command,
    shard_seeds,
    sweep,
)
from sim.progress import ProgressBar
from sim.scenario.model import NetworkSpec, Scenario, WorkloadSpec

ROOT = Path(__file__).resolve().parent.parent
BYZANTINE_PRIMARY = ROOT / "scenarios" / "byzantine-primary.toml"


class MuteViewChangeReplica(Replica):
    """Mutant: never lets a VIEW-CHANGE out, so a faulty primary is never replaced."""

    def step(self, event: Event) -> Output:
        out = super().step(event)
        out.send = [s for s in out.send if not isinstance(s.message, ViewChange)]
        return out


MUTANT = f"{__name__}:MuteViewChangeReplica"


def fake_runner(scenario: Scenario, seed: int, replica_spec: str | None) -> SeedOutcome:
    """Fails every seed divisible by 3; a stand-in for the simulator (module level: picklable)."""
    bad = seed % 3 == 0
    return SeedOutcome(
        seed=seed,
        ok=not bad,
        failures=(f"all_committed: expected true, got false ({scenario.name})",) if bad else (),
        view_changes=seed % 4,
        committed=10 * seed,
        latency_p50_ms=float(seed),
        latency_p99_ms=float(2 * seed),
    )


def test_seed_ranges_and_shards() -> None:
    assert list(parse_seeds("3..6")) == [3, 4, 5, 6]
    assert list(parse_seeds(" 7 ")) == [7]
    for bad in ("6..3", "a..b", "1..", "-1..4", "1-4"):
        with pytest.raises(InputError, match=r"--seeds: expected A\.\.B"):
            parse_seeds(bad)
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "1/0", "x/2", "1"):
        with pytest.raises(InputError, match="--shard: expected i/k"):
            parse_shard(bad)
    seeds = range(10, 20)
    shards = [shard_seeds(seeds, (i, 3)) for i in range(3)]
    assert shards[1] == [11, 14, 17]
    assert sorted(s for shard in shards for s in shard) == list(seeds)
    assert shard_seeds(seeds, None) == list(seeds)


def test_reproduce_command_quotes_what_a_shell_would_split() -> None:
    command = reproduce_command("my scenarios/x.toml", 42, "pkg.mod:Cls")
    assert shlex.split(command) == [
        "ledgersim", "run", "my scenarios/x.toml", "--seed", "42", "--replica", "pkg.mod:Cls"
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_sweep_collects_every_seed_in_order(jobs: int) -> None:
    scenario = Scenario(name="fake", source="scen.toml")
    report = sweep(scenario, range(1, 11), jobs=jobs, runner=fake_runner, shard=None)
    assert [o.seed for o in report.outcomes] == list(range(1, 11))
    data = report.to_json()
    assert (data["runs"], data["passed"], data["failures"]) == (10, 7, 3)
    assert [f["seed"] for f in data["failing"]] == [3, 6, 9]
    assert data["failing"][0]["command"] == "ledgersim run scen.toml --seed 3"
    assert data["view_changes"] == {"min": 0, "p50": 1.5, "p90": 3, "max": 3, "mean": 1.5}
    assert data["latency_ms"]["p99"]["max"] == 20.0


@pytest.mark.parametrize(("count", "workers"), [(0, 2), (1, 2), (7, 2), (120, 2), (300, 3)])
def test_chunks_hand_out_every_seed_once_in_order(count: int, workers: int) -> None:
    seeds = list(range(1000, 1000 + count))
    tasks = chunks(fake_runner, Scenario(name="fake"), seeds, None, workers)
    assert [seed for task in tasks for seed in task[2]] == seeds
    sizes = [len(task[2]) for task in tasks]
    assert sizes == chunk_sizes(count, workers)
    assert all(1 <= size <= MAX_CHUNK for size in sizes)
    assert sizes == sorted(sizes, reverse=True)  # large first, single seeds at the end
    if count >= 4 * workers * MAX_CHUNK:
        assert sizes[0] == MAX_CHUNK and sizes[-1] == 1


def test_chunked_sweep_gives_what_one_seed_per_task_gives() -> None:
    """--jobs 2 in chunks = --jobs 2 a seed per task = --jobs 1: every seed once, same outcome."""
    scenario = Scenario(name="fake", source="scen.toml")
    seeds = range(1, 61)
    assert max(chunk_sizes(len(seeds), 2)) > 1  # the run below does chunk
    chunked = sweep(scenario, seeds, jobs=2, runner=fake_runner)
    single = sweep(scenario, seeds, jobs=2, runner=fake_runner, max_chunk=1)
    serial = sweep(scenario, seeds, jobs=1, runner=fake_runner)
    assert [o.seed for o in chunked.outcomes] == list(seeds)
    assert chunked.outcomes == single.outcomes == serial.outcomes
    assert chunked.to_json() | {"wall_s": 0} == single.to_json() | {"wall_s": 0}


def main_file_runner(scenario: Scenario, seed: int, replica_spec: str | None) -> SeedOutcome:
    """Reports, as its failure, the file the worker's ``__main__`` was loaded from (if any)."""
    main_file = getattr(sys.modules["__main__"], "__file__", None)
    return SeedOutcome(seed=seed, ok=main_file is None, failures=(str(main_file),))


def test_workers_do_not_rerun_the_parents_main() -> None:
    """Re-running ``ledgersim``'s main (the whole CLI) cost every worker 0.6 s before its
    first seed; pytest's main stands in for it here."""
    report = sweep(Scenario(name="fake"), range(1, 5), jobs=2, runner=main_file_runner)
    assert [o.failures for o in report.outcomes if not o.ok] == []


def test_a_runner_from_the_parents_main_still_reaches_the_workers(tmp_path: Path) -> None:
    script = tmp_path / "my_sweep.py"
    script.write_text(
        "from sim.explore.sweep import SeedOutcome, sweep\n"
        "from sim.scenario.model import Scenario\n"
        "def runner(scenario, seed, spec):\n"
        "    return SeedOutcome(seed=seed, ok=seed != 3)\n"
        "if __name__ == '__main__':\n"
        "    report = sweep(Scenario(name='mine'), range(1, 7), jobs=2, runner=runner)\n"
        "    print([o.seed for o in report.failed], len(report.outcomes))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stdout) == (0, "[3] 6\n"), done.stderr


def test_sweep_shard_runs_only_its_seeds() -> None:
    scenario = Scenario(name="fake", source="scen.toml")
    report = sweep(scenario, range(0, 9), jobs=1, runner=fake_runner, shard=(2, 4))
    assert [o.seed for o in report.outcomes] == [2, 6]
    assert report.to_json()["shard"] == "2/4"


@pytest.mark.slow
def test_sweep_cli_passes_and_summarises(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli_main(["sweep", str(BYZANTINE_PRIMARY), "--seeds", "1..3", "--jobs", "1"])
    out, err = capsys.readouterr()
    assert status == 0, out + err
    assert "runs          3  passed 3  failed 0" in out and "view changes" in out
    assert "failing seeds" not in out
    # Not on a terminal: plain progress lines on stderr (3 seeds: a line per seed).
    lines = err.splitlines()
    assert [line.split(", ETA ")[0] for line in lines] == [
        "byzantine-primary sweep: 1/3 seeds (33%), 0 failed",
        "byzantine-primary sweep: 2/3 seeds (67%), 0 failed",
        "byzantine-primary sweep: 3/3 seeds (100%), 0 failed",
    ]
    assert ", ETA " in lines[0] and ", ETA " not in lines[2]
    argv = ["sweep", str(BYZANTINE_PRIMARY), "--seeds", "1..5", "--shard", "1/2", "--json"]
    assert cli_main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["shard"] == "1/2" and [o["seed"] for o in data["outcomes"]] == [2, 4]


@pytest.mark.slow
def test_sweep_with_mutant_reports_reproducing_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["sweep", str(BYZANTINE_PRIMARY), "--seeds", "1..4", "--jobs", "2", "--json"]
    status = cli_main([*argv, "--replica", MUTANT])
    out, err = capsys.readouterr()
    assert status == 1
    data = json.loads(out)
    assert data["failures"] == 4 and data["replica"] == MUTANT
    first = data["failing"][0]
    assert first["seed"] == 1 and any("all_committed" in r for r in first["reasons"])
    command = first["command"]
    # The mutant lives in tests/, so the command puts that folder on PYTHONPATH.
    assert command.startswith("PYTHONPATH=")
    assert command.endswith(f"ledgersim run {BYZANTINE_PRIMARY} --seed 1 --replica {MUTANT}")
    assert err.strip().endswith(command)
    # The printed command, pasted into a fresh shell, does reproduce the failure.
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("PYTHONPATH", None)
    replay = subprocess.run(
        command + " --quiet", shell=True, env=env, capture_output=True, text=True, timeout=300
    )
    assert replay.returncode == 1, replay.stderr
    assert "all_committed" in replay.stderr


def test_sweep_table_lists_failing_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli_main(["sweep", str(BYZANTINE_PRIMARY), "--seeds", "5..5", "--replica", MUTANT])
    out, _ = capsys.readouterr()
    assert status == 1
    assert "failing seeds (each line replays one exactly):" in out
    assert f"ledgersim run {BYZANTINE_PRIMARY} --seed 5 --replica {MUTANT}" in out


def test_crashing_runs_are_failures_not_aborts() -> None:
    scenario = Scenario(
        name="boom",
        network=NetworkSpec(crypto="modelled"),
        workload=WorkloadSpec(requests=2, chaincode="kv"),
        source="scen.toml",
    )
    report = sweep(scenario, [1, 2], jobs=1, replica_spec=f"{__name__}:Exploding")
    assert [o.ok for o in report.outcomes] == [False, False]
    assert report.outcomes[0].error == "RuntimeError: boom"


@pytest.mark.slow
def test_bad_input_stops_the_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input fails every seed alike: exit 2 at once, also from a worker process."""
    argv = ["sweep", str(BYZANTINE_PRIMARY), "--seeds", "1..4", "--jobs", "2"]
    assert cli_main([*argv, "--replica", f"{__name__}:BadInput"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "ledgersim: error: boom-input\n"


class Exploding(Replica):
    """Not a replica at all: its construction fails, as a badly broken experiment would."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")


class BadInput(Replica):
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise InputError("boom-input")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "9..1"], "--seeds: expected A..B with A <= B"),
        (["--seeds", "1..2", "--jobs", "0"], "--jobs: expected an integer >= 1, got 0"),
        (["--seeds", "1..2", "--shard", "2/2"], "--shard: expected i/k"),
        (["--seeds", "1..2", "--replica", "x"], "--replica: expected MODULE:CLASS"),
    ],
)
def test_sweep_bad_input_exits_2(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["sweep", str(BYZANTINE_PRIMARY), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ------------------------------------------------------------------ progress and Ctrl-C


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_failures_and_eta() -> None:
    clock = FakeClock()
    bar = ProgressBar(
        "sweep", stream=Terminal(), interval_s=0, unit="seeds", show_failures=True,
        show_eta=True, clock=clock,
    )  # fmt: skip
    bar.update(0, 200)
    assert bar.render().endswith("0/200 seeds, 0 failed")  # no pace yet, no ETA
    clock.now += 30
    for k in range(50):
        bar.advance(failed=k % 10 == 0)
    # 50 seeds in 30 s: 150 more take 90 s.
    assert (
        bar.render()
        == "sweep [#######.......................]  25%  50/200 seeds, 5 failed, ETA 1m30s"
    )
    clock.now += 90
    for _ in range(150):
        bar.advance()
    assert bar.render().endswith("200/200 seeds, 5 failed")


def test_progress_off_a_terminal_prints_a_line_per_tenth() -> None:
    piped = io.StringIO()
    clock = FakeClock()
    with ProgressBar(
        "sweep", stream=piped, unit="seeds", show_failures=True, plain_every=0.1, clock=clock
    ) as bar:
        bar.update(0, 95)
        for k in range(95):
            clock.now += 1
            bar.advance(failed=k == 3)
    lines = piped.getvalue().splitlines()
    assert "\r" not in piped.getvalue() and "\x1b" not in piped.getvalue()
    assert [line.split(" seeds")[0] for line in lines] == [
        f"sweep: {k}/95" for k in (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
    ]
    assert lines[0] == "sweep: 10/95 seeds (11%), 1 failed"
    # Without plain_every a piped bar stays silent, as before.
    quiet = io.StringIO()
    with ProgressBar("run", 10, stream=quiet, interval_s=0) as bar:
        bar(5)
    assert quiet.getvalue() == ""


def sweep_process(jobs: int) -> subprocess.Popen[str]:
    argv = [str(Path(sys.executable).parent / "ledgersim"), "sweep", str(BYZANTINE_PRIMARY),
            "--seeds", "1..300", "--jobs", str(jobs)]  # fmt: skip
    # Its own session: the signal goes to the whole group, as a terminal's Ctrl-C does.
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def ignores_sigint(pid: str) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(re.search(r"^SigIgn:\s*([0-9a-f]+)", status, re.M).group(1), 16)  # type: ignore[union-attr]
    return bool(ignored & (1 << (signal.SIGINT - 1)))


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_prints_the_partial_summary(jobs: int) -> None:
    process = sweep_process(jobs)
    assert process.stderr is not None
    first = process.stderr.readline()  # the first progress line: 30 seeds are done
    assert first.startswith("byzantine-primary sweep: 30/300 seeds"), first
    workers = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    # Every child (workers, multiprocessing's helper) leaves Ctrl-C to the parent: a
    # worker that took it would print a traceback if it won the race with terminate().
    for pid in workers:
        assert ignores_sigint(pid), f"child {pid} does not ignore SIGINT"
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1].startswith("ledgersim: interrupted: ")
    runs = int(re.search(r"^runs +(\d+) +passed", out, re.M).group(1))  # type: ignore[union-attr]
    assert 30 <= runs < 300
    assert f"interrupted   after {runs} of 300 seeds" in out
    assert "view changes" in out  # the table of the seeds done
    if jobs > 1:
        assert len(workers) >= jobs
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "workers still running after Ctrl-C"
            time.sleep(0.2)


def test_interrupted_report_keeps_the_seeds_done() -> None:
    scenario = Scenario(name="fake", source="scen.toml")
    report = sweep(scenario, range(1, 11), jobs=1, runner=interrupting_runner)
    assert report.interrupted and [o.seed for o in report.outcomes] == [1, 2, 3]
    data = report.to_json()
    assert (data["runs"], data["planned"], data["interrupted"]) == (3, 10, True)
    assert [f["seed"] for f in data["failing"]] == [3]


def interrupting_runner(scenario: Scenario, seed: int, replica_spec: str | None) -> SeedOutcome:
    """Seeds 1-3 finish (3 fails); on seed 4 the user presses Ctrl-C."""
    if seed == 4:
        raise KeyboardInterrupt
    return fake_runner(scenario, seed, replica_spec)
