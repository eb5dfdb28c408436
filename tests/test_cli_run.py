"""``ledgersim run``: exit statuses 0/1/2, the --json keys of docs/design.md, replay from a seed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli.main import main as cli_main
from sim.progress import ProgressBar

ROOT = Path(__file__).resolve().parent.parent

SMALL = """
name = "small"
seed = 4
duration_ms = 4000
[network]
replicas = 4
batch_size = 4
batch_timeout_ms = 10
checkpoint_interval = 4
watermark_window = 16
crypto = "modelled"
[network.latency]
kind = "uniform"
min_ms = 1
max_ms = 8
[workload]
clients = 2
requests = 8
rate_per_s = 50
chaincode = "kv"
"""


def scenario_file(tmp_path: Path, expect: str = "", name: str = "small.toml") -> Path:
    path = tmp_path / name
    path.write_text(SMALL + ("\n[expect]\n" + expect if expect else ""))
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = cli_main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_passing_run_prints_table_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario_file(tmp_path, "safety = true\nall_committed = true\nmax_view_changes = 0")
    status, out, err = run(["run", str(path)], capsys)
    assert status == 0, err
    assert err == ""  # no progress bar when stderr is not a terminal
    assert "8 submitted, 8 committed" in out
    assert "✓ safety = true" in out and "✓ all_committed = true" in out and "✗" not in out
    table = out[out.index("replica  view") :].splitlines()
    assert [line.split()[0] for line in table[1:5]] == ["0", "1", "2", "3"]


def test_failed_expectation_exits_1_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario_file(tmp_path, "safety = true\nmin_view_changes = 2")
    status, out, err = run(["run", str(path)], capsys)
    assert status == 1
    assert "✓ safety = true" in out and "✗ min_view_changes = 2  (got 0)" in out
    assert err.strip() == (
        f"ledgersim: {path}: seed 4: expectation failed: min_view_changes: expected 2, got 0"
    )


def test_json_has_designs_keys_and_replays_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scenario_file(tmp_path)
    status, out, _ = run(["run", str(path), "--json", "--seed", "9"], capsys)
    assert status == 0
    first = json.loads(out)
    for key in ("scenario", "seed", "n", "f", "safety", "submitted", "committed", "view_changes",
                "messages", "latency_ms", "throughput_tps", "wall_s", "replicas"):  # fmt: skip
        assert key in first, key
    assert first["seed"] == 9 and (first["n"], first["f"]) == (4, 1)
    assert set(first["safety"]) >= {"ok", "violations"}
    assert set(first["latency_ms"]) >= {"p50", "p99"}
    for replica in first["replicas"]:
        assert set(replica) >= {"id", "view", "height", "head_hash", "byzantine"}
    _, again, _ = run(["run", str(path), "--json", "--seed", "9"], capsys)
    second = json.loads(again)
    first.pop("wall_s")
    second.pop("wall_s")
    assert first == second
    _, other, _ = run(["run", str(path), "--json"], capsys)
    assert json.loads(other)["seed"] == 4


def test_same_seed_same_trace_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario_file(tmp_path)
    traces = [tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"]
    for trace, seed in zip(traces, ("2", "2", "3"), strict=True):
        assert (
            run(["run", str(path), "--seed", seed, "--trace", str(trace), "--quiet"], capsys)[0]
            == 0
        )
    a, b, c = (t.read_bytes() for t in traces)
    assert a == b and a != c


def test_quiet_prints_nothing_on_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(["run", str(scenario_file(tmp_path)), "--quiet"], capsys)
    assert (status, out, err) == (0, "", "")


def test_trace_and_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace, data = tmp_path / "t.jsonl", tmp_path / "data"
    argv = ["run", str(scenario_file(tmp_path)), "--trace", str(trace), "--data-dir", str(data)]
    status, _, err = run([*argv, "--quiet"], capsys)
    assert status == 0, err
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert events[0]["ev"] == "meta" and any(e["ev"] == "commit" for e in events)
    assert sorted(p.name for p in data.iterdir()) == ["crypto"] + [f"replica-{i}" for i in range(4)]


@pytest.mark.slow
@pytest.mark.parametrize("crypto", ["ecdsa-p256", "modelled"])
def test_data_dir_leaves_what_ledger_verify_needs(
    crypto: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "real.toml"
    path.write_text(SMALL.replace('crypto = "modelled"', f'crypto = "{crypto}"'))
    data = tmp_path / "data"
    status, out, err = run(["run", str(path), "--data-dir", str(data)], capsys)
    assert status == 0, err
    command = out.splitlines()[-1].split(":", 1)[1].split()
    flags = [] if crypto == "ecdsa-p256" else ["--no-certificates"]
    assert command == [
        "ledgersim", "ledger", "verify", str(data / "replica-0"), "--msp", str(data / "crypto"),
        *flags,
    ]  # fmt: skip
    heads = set()
    for replica in sorted(data.glob("replica-*")):
        status, verdict, err = run(["ledger", "verify", str(replica), *command[4:]], capsys)
        assert status == 0 and verdict.startswith("ok: "), err
        heads.add(verdict.split()[-1])
        assert run(["ledger", "dump", str(replica), "--json"], capsys)[0] == 0
    assert len(heads) == 1
    # The dump, recomputed by a tool that knows only docs/design.md's "Fixed formats".
    dump = subprocess.run(
        [sys.executable, "-m", "sim", "ledger", "dump", str(data / "replica-1"), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    checked = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "tools" / "recompute_hashes.py")],
        input=dump,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    blocks, head = checked.stdout.split()[1:]
    assert int(blocks) == len(dump.splitlines()) > 1 and head in heads


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "{missing}"], "missing.toml: cannot read scenario file"),
        (["run", "{bad}"], "bad.toml: network.replicas: expected an integer >= 4, got 2"),
        (["run", "{good}", "--seed", "-3"], "--seed: expected an integer >= 0 and < 2**64, got -3"),
        (["run", "{good}", "--replica", "nowhere"], "--replica: expected MODULE:CLASS"),
        (["run", "{good}", "--replica", "no_such_mod:X"], "--replica: cannot import"),
        (["run", "{good}", "--data-dir", "{good}"], "--data-dir: "),
        (["run", "{good}", "--trace", "{missing}/t.jsonl"], "t.jsonl: cannot write"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = scenario_file(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("[network]\nreplicas = 2\n")
    names = {"missing": str(tmp_path / "missing.toml"), "bad": str(bad), "good": str(good)}
    status, out, err = run([a.format(**names) for a in argv], capsys)
    assert status == 2 and out == ""
    assert err.startswith("ledgersim: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_scenarios_meet_their_expectations(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(["run", str(path)], capsys)
    assert "expectations" in out and "✗" not in out, out + err
    assert status == 0, err


def test_progress_bar_draws_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    with ProgressBar("run", 200, stream=tty, interval_s=0, unit="ms") as bar:
        bar(50, 200)
        assert bar.render() == "run [#######.......................]  25%  50/200 ms"
        bar.advance(150)
    assert "100%" in tty.getvalue() and tty.getvalue().endswith("\r\x1b[2K")
    piped = io.StringIO()
    with ProgressBar("run", 10, stream=piped, interval_s=0) as bar:
        bar(5)
    assert piped.getvalue() == ""
