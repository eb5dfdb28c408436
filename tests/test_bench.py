"""The benchmark suite's plumbing: what it prints, never how fast it is.

Figures depend on the machine, so nothing here asserts a rate; it checks the
``--quick --json`` output is complete and well typed, that sections whose
dependencies exist actually ran, and that the counting and the formulas the
figures are derived from are right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from sim.bench import SECTIONS, TARGETS, Options, run_suite
from sim.bench.counting import CryptoCounter
from sim.bench.live import live_unavailable_reason
from sim.bench.report import render
from sim.bench.simruns import crypto_bound, have_module, paper_messages_per_batch
from sim.bench.sweeps import SWEEP_SCENARIOS, seeds_for
from sim.bench.timing import Budget, measure_rate


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@pytest.mark.slow
def test_quick_has_machine_and_every_section(quick: dict[str, Any]) -> None:
    assert quick["quick"] is True
    machine = quick["machine"]
    assert _positive(machine["nproc"])
    assert machine["cpu_model"] and machine["python"].startswith("3.")
    assert set(quick["sections"]) == set(SECTIONS)
    for name, section in quick["sections"].items():
        assert section["status"] in ("ok", "unavailable"), (name, section)
    assert [t["name"] for t in quick["targets"]] == [t.name for t in TARGETS]
    for target in quick["targets"]:
        assert (target["met"] is None) == (target["value"] is None), target
        if target["value"] is not None:
            assert isinstance(target["value"], (int, float)) and target["met"] in (True, False)
        elif quick["sections"][target["section"]]["status"] == "ok":
            # --quick stops at n=16; the peer is timed only with --peer-bftsim
            assert "n=100" in target["name"] or "BFT-Simulator" in target["name"], target


def test_sections_run_once_their_dependencies_exist(quick: dict[str, Any]) -> None:
    sections = quick["sections"]
    assert sections["limits"]["status"] == "ok"
    if have_module("sim.world.simulation") and have_module("msp.identity"):
        assert sections["sim-real"]["status"] == "ok", sections["sim-real"]
    if have_module("sim.world.simulation"):
        assert sections["sim-modelled"]["status"] == "ok", sections["sim-modelled"]
    if os.environ.get("LEDGERSIM_REQUIRE_LIVE") == "1" or live_unavailable_reason() is None:
        assert sections["live"]["status"] == "ok", sections["live"]


def test_limits_figures(quick: dict[str, Any]) -> None:
    limits = quick["sections"]["limits"]
    rows = {(r["scheme"], r["via"]): r for r in limits["signatures"]}
    for scheme in ("ecdsa-p256", "ed25519", "hmac-sha256"):
        raw = next(
            r for (s, via), r in rows.items() if s == scheme and via not in ("msp", "pbft.auth")
        )
        assert _positive(raw["sign_per_s"]) and _positive(raw["verify_per_s"])
    for row in limits["signatures"]:
        measured = row["sign_per_s"] is not None
        assert measured == (row["verify_per_s"] is not None)
        assert measured or row["note"].startswith(("not available", "failed"))
    if have_module("msp.ca"):
        assert _positive(rows[("ecdsa-p256", "msp")]["verify_per_s"])
    assert _positive(limits["sha256"]["mb_per_s"]) and _positive(limits["sha256"]["small_per_s"])
    for name in ("pre_prepare_batch", "commit"):
        codec = limits["codec"][name]
        assert _positive(codec["bytes"])
        for key in ("encode_per_s", "decode_per_s", "decode_repeat_per_s"):
            assert _positive(codec[key]), (name, key)


def test_sim_real_figures(quick: dict[str, Any]) -> None:
    real = quick["sections"]["sim-real"]
    if real["status"] != "ok":
        return
    assert real["n"] == 4 and real["batch_size"] == 100
    assert real["committed"] == real["requests"]
    for key in ("tx_per_s", "verifies_per_tx", "signs_per_tx", "bound_tx_per_s", "efficiency"):
        assert _positive(real[key]), key
    # Every request is signed by its client and checked by each of the n replicas, and
    # the client checks f+1 signed replies: n + f + 1 checks at least, of at least
    # 1 + (f+1) distinct signatures (the cache answers repeats of one signature).
    n, f = real["n"], (real["n"] - 1) // 3
    assert real["signs_per_tx"] >= 1 + n
    assert real["deployment_verifies_per_tx"] >= n + f + 1
    assert real["verifies_per_tx"] >= 1 + f + 1
    assert real["wrapped"], "no sign/verify method was instrumented"
    assert real["bound_tx_per_s"] == pytest.approx(
        crypto_bound(
            real["verifies_per_tx"], real["signs_per_tx"], real["sign_per_s"], real["verify_per_s"]
        )
    )


def test_sim_modelled_figures(quick: dict[str, Any]) -> None:
    modelled = quick["sections"]["sim-modelled"]
    if modelled["status"] != "ok":
        return
    assert [row["n"] for row in modelled["sizes"]] == [4, 16]
    for row in modelled["sizes"]:
        n = row["n"]
        assert row["committed"] == row["requests"]
        assert row["batches"] >= row["requests"] / modelled["batch_size"]
        for key in ("wall_s", "messages_per_s", "tx_per_s", "maxrss_mib"):
            assert _positive(row[key]), key
        # Fault-free normal case: exactly the paper's point-to-point pattern per batch.
        assert row["per_batch"]["PrePrepare"] == n - 1
        assert row["per_batch"]["Prepare"] == (n - 1) ** 2
        assert row["per_batch"]["Commit"] == n * (n - 1)
    # Seeds per minute of a real sweep, for both shipped scenarios, at 1 and 2 workers.
    sweeps = modelled["sweeps"]
    assert [row["scenario"] for row in sweeps] == list(SWEEP_SCENARIOS)
    for row in sweeps:
        assert row["status"] == "ok"
        assert [run["workers"] for run in row["runs"]] == [1, 2]
        for run in row["runs"]:
            assert run["seeds"] == len(seeds_for(True))
            assert _positive(run["seeds_per_min"])
        assert _positive(row["scaling"])


def test_live_figures(quick: dict[str, Any]) -> None:
    live = quick["sections"]["live"]
    if live["status"] != "ok":
        return
    assert live["n"] == 4 and live["runs"]
    for key in ("tx_per_s", "p50_ms", "p99_ms", "cpu_s_per_tx", "latency_at_per_s"):
        assert _positive(live[key]), key
    assert live["p50_ms"] <= live["p99_ms"]
    for run in live["runs"]:
        assert run["committed"] + run["invalid"] + run["failed"] == run["submitted"]
        assert run["failed"] == run["refused"] + run["timed_out"] + run["error"]
        assert run["server_cpu_s"] > 0  # the nodes' CPU was read from /proc
        assert run["client_cpu_s"] > 0  # and the load generator reported its own
        # Every process counted its broker messages and signature work.
        for key in ("mqtt_per_tx", "signs_per_tx", "verifies_per_tx", "signature_ms_per_tx"):
            assert _positive(run[key]), key
        # A transaction is signed by its client, two endorsers and every replica's reply.
        assert run["signs_per_tx"] >= 3 + 2 + live["n"]
        assert 0 < run["efficiency"] < 1 and run["cpu_vs_signatures"] > 1
    assert live["tx_per_s"] == max(run["tx_per_s"] for run in live["runs"])


def test_render_names_every_section_and_target(quick: dict[str, Any]) -> None:
    text = render(quick)
    for name in SECTIONS:
        assert f"\n{name}" in text
    for target in TARGETS:
        assert target.name in text


@pytest.mark.slow
def test_only_skips_other_sections() -> None:
    result = run_suite(Options(quick=True, only=("limits",)))
    assert result["sections"]["limits"]["status"] == "ok"
    for name in SECTIONS[1:]:
        assert result["sections"][name]["status"] == "skipped"
        assert result["sections"][name]["reason"]


# ------------------------------------------------------------------ pieces


@pytest.fixture()
def fake_crypto_module() -> Iterator[Any]:
    module = types.ModuleType("bench_fake_crypto")

    class Signer:
        def sign(self, data: bytes) -> bytes:
            return data[::-1]

        def verify(self, data: bytes, signature: bytes) -> bool:
            return signature == self.sign(data)

    class Child(Signer):
        def verify(self, data: bytes, signature: bytes) -> bool:
            return super().verify(data, signature)  # nested: must count once

    Signer.__module__ = Child.__module__ = module.__name__
    module.__dict__.update(Signer=Signer, Child=Child)
    sys.modules[module.__name__] = module
    yield Child
    del sys.modules[module.__name__]


def test_counter_counts_outermost_calls_and_restores(fake_crypto_module: Any) -> None:
    child = fake_crypto_module()
    original = fake_crypto_module.verify
    counter = CryptoCounter({"fake": ("bench_fake_crypto",)})
    with counter.installed():
        for _ in range(3):
            assert child.verify(b"ab", child.sign(b"ab"))
        assert not child.verify(b"ab", b"xx")
    # The sign calls made inside verify are nested in the same layer: not counted.
    assert counter.counts == {"fake.sign": 3, "fake.verify": 4}
    assert fake_crypto_module.verify is original
    child.verify(b"ab", b"ba")
    assert counter.counts["fake.verify"] == 4


def test_crypto_bound_weighs_signs_by_their_cost() -> None:
    # 10 verifies at 1000/s = 10 ms, 2 signs at 500/s = 4 ms: 1/0.014 tx/s.
    assert crypto_bound(10, 2, sign_per_s=500, verify_per_s=1000) == pytest.approx(1 / 0.014)
    assert crypto_bound(10, 0, sign_per_s=1, verify_per_s=1000) == pytest.approx(100)


def test_paper_formula_at_n4() -> None:
    counts = paper_messages_per_batch(4, checkpoint_interval=10)
    assert counts == {"PrePrepare": 3, "Prepare": 9, "Commit": 12, "Checkpoint": 1.2}


def test_measure_rate_counts_calls() -> None:
    calls = []
    rate = measure_rate(lambda: calls.append(1), Budget(min_seconds=0.01, repeats=2))
    assert rate > 0 and len(calls) > 2
