"""The live processes' signature counting (``sim.live.cryptocount``), used by the bench."""

from __future__ import annotations

import pytest

import msp.identity
from msp.ca import generate_network
from sim.bench.counting import FUNCTION_LAYERS
from sim.live.cryptocount import ENV, KEY_OPERATIONS, counting_if_asked


def test_counts_the_bench_crypto_layer() -> None:
    bench = {(name, f"crypto.{op}") for module, name, op in FUNCTION_LAYERS["crypto"]}
    assert {m for m, _, _ in FUNCTION_LAYERS["crypto"]} == {"msp.identity"}
    assert set(KEY_OPERATIONS) == bench


def test_nothing_is_wrapped_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    sign = msp.identity.sign
    with counting_if_asked() as counts:
        assert counts is None
        assert msp.identity.sign is sign


def test_counts_real_signatures_and_checks_then_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "1")
    signer = generate_network(1, 1, 1, seed=b"cryptocount").signer("peer0.org1.example.com")
    originals = (msp.identity.sign, msp.identity.signature_problem)
    with counting_if_asked() as counts:
        assert counts is not None
        signature = signer.sign(b"payload")
        verifier = signer.public()
        assert verifier.verify(b"payload", signature)
        assert counts["crypto.sign"] == 1
        assert counts["crypto.verify"] == 1
    assert (msp.identity.sign, msp.identity.signature_problem) == originals
