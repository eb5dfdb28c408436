"""Pinned results: a handful of runs whose exact outcome is recorded here as hashes.

The simulator promises that a scenario and a seed give byte-identical results.
The other tests check properties of runs (safety, counts, expectations); they
would not notice a refactoring that quietly changes *which* run a seed gives,
for instance an extra RNG draw or a different tie order in the event heap.
These pins do: each one is the SHA-256 of the run's JSON result and of its
JSON-lines trace, exactly as ``ledgersim run FILE --seed S --json --trace T``
writes them, less the ``wall_s`` line (the only machine-dependent field), so
``ledgersim run ... --json | grep -v '"wall_s"' | sha256sum`` gives the same.

The runs are chosen to cover the simulator's paths: a Byzantine primary, a
crash and recovery from disk, a lossy network with duplication and two
Byzantine replicas, an equivocating primary at n = 5, and one run with real
ECDSA identities instead of modelled signatures.

Regenerating the pins is a deliberate act, for a change *meant* to alter
runs (a protocol fix, a new RNG draw): run ``python tests/test_pinned_results.py``
from the repository root with the project's environment, paste the lines it
prints over ``PINS`` and say in the commit message why the runs changed. A
refactoring must never need it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pytest

from sim.scenario.model import Scenario
from sim.scenario.reader import load_scenario
from sim.world.simulation import run_scenario

ROOT = Path(__file__).resolve().parent.parent


class Pin(NamedTuple):
    path: str
    """Scenario file, relative to the repository root."""
    seed: int
    crypto: str | None
    """Overrides the file's ``crypto`` (``None``: as written)."""
    result: str
    trace: str


PINS = (
    Pin(
        "scenarios/byzantine-primary.toml",
        2,
        None,
        "f389f96a01020a9e24e2a2b1ffe3ea3ebf3fa814587e0c4b82692679c61be034",
        "2f09f6be01f65992774a14eda9300db273d90435ae0efdb5688d3c8f8555925d",
    ),
    Pin(
        "scenarios/crash-recover.toml",
        1,
        None,
        "c15dac4f6da5ca1a421ac71b826875c740be415bb58af2df9306f43437e72f8c",
        "943b2ef1149895bde16dab58a5b779579837c244e37146b1ead5caf68b889763",
    ),
    Pin(
        "scenarios/n7-two-byzantine-lossy.toml",
        3,
        None,
        "f500e5fd7d681c8c98b3eed17d405ccbea889ec04f404b4c77c51e2978940547",
        "14b634dab63cbaa14c2f1c11c481037b71196f2f305291a104c73b213bba4bbb",
    ),
    Pin(
        "tests/scenarios/equivocate-n5.toml",
        1,
        None,
        "b0c2fc0a2560156443661cad2f2e2342bfab9320eb28294c79115f48e94fa5e8",
        "b692ffd381ad3650822fae4fb1401944e1dabab020c34adecf6ee3bbec82c1de",
    ),
    Pin(
        "scenarios/normal-case.toml",
        1,
        "ecdsa-p256",
        "d571e48a46bc5772adff6ba1f3b89f9bcb2dee2c380a930a76128b871b5d55a1",
        "2583f9e9e088a089cb68a180d54ae163719075f6b883337cc3feac30832d51b7",
    ),
)


def scenario_of(pin: Pin) -> Scenario:
    scenario = load_scenario(ROOT / pin.path)
    if pin.crypto is None:
        return scenario
    return replace(scenario, network=replace(scenario.network, crypto=pin.crypto))


def hashes(pin: Pin, trace_file: Path) -> tuple[str, str]:
    """(result hash, trace hash) of the pinned run, computed as the module docstring says."""
    result = run_scenario(scenario_of(pin), pin.seed, trace=trace_file)
    summary = result.to_json()
    assert "wall_s" in summary  # dropped below: if it were renamed, the pin would flicker
    del summary["wall_s"]
    text = json.dumps(summary, indent=2, sort_keys=False) + "\n"
    return (
        hashlib.sha256(text.encode()).hexdigest(),
        hashlib.sha256(trace_file.read_bytes()).hexdigest(),
    )


@pytest.mark.parametrize("pin", PINS, ids=lambda p: f"{Path(p.path).stem}-{p.seed}")
def test_run_is_byte_identical_to_its_pin(pin: Pin, tmp_path: Path) -> None:
    result, trace = hashes(pin, tmp_path / "trace.jsonl")
    assert (result, trace) == (pin.result, pin.trace), (
        "this run changed; if that is intended, regenerate the pins (see the module docstring)"
    )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for pin in PINS:
            result, trace = hashes(pin, Path(scratch) / "trace.jsonl")
            crypto = "None" if pin.crypto is None else f'"{pin.crypto}"'
            print(f'    Pin(\n        "{pin.path}",\n        {pin.seed},\n        {crypto},')
            print(f'        "{result}",\n        "{trace}",\n    ),')
