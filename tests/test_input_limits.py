"""Sizes and ids a run cannot honour are refused up front, in one line with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli.main import main as cli_main


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert cli_main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    return err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[network]\nreplicas = 10000\n", "network.replicas: expected an integer in 4..100"),
        ("[workload]\nclients = 100000\n", "workload.clients: expected an integer in 1..1000"),
        (
            "seed = 100000000000000000000000\n",
            "seed: expected an integer >= 0 and < 2**64, got 100000000000000000000000",
        ),
    ],
)
def test_sizes_beyond_the_limits_are_refused(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.toml"
    path.write_text(text)
    assert f"ledgersim: error: {path}: {message}" in refused(["run", str(path)], capsys)


def test_a_toml_seed_is_refused_exactly_as_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text("duration_ms = 10\n")
    flag = refused(["run", str(path), "--seed", str(2**64)], capsys)
    path.write_text(f"duration_ms = 10\nseed = {2**64}\n")
    toml = refused(["run", str(path)], capsys)
    assert (
        flag.split(": ")[-1]
        == toml.split(": ")[-1]
        == f"expected an integer >= 0 and < 2**64, got {2**64}\n"
    )
    path.write_text(f"duration_ms = 10\nseed = {2**64 - 1}\n[workload]\nrequests = 0\n")
    assert cli_main(["run", str(path), "--quiet"]) == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("9:equivocate", "--byzantine: 9:equivocate: expected a replica id in 0..3, got 9"),
        ("0:dance", "--byzantine: 0:dance: unknown behaviour 'dance' (known: "),
        ("x:silent", "--byzantine: expected ID:BEHAVIOUR, got 'x:silent'"),
    ],
)
def test_net_init_refuses_a_byzantine_replica_it_cannot_make(
    spec: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "net"
    err = refused(["net", "init", "--sim", str(target), "--byzantine", spec], capsys)
    assert err.startswith(f"ledgersim: error: {message}")
    assert not target.exists()
