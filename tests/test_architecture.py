"""The structural rules of DESIGN.md (../shared/DESIGN.md; summarised in
docs/architecture.md), checked on the source so they cannot rot.

* Imports flow down the package table (msp, pbft, ledger, chaincode, sim).
* The protocol packages read no clock, no global RNG and do no network I/O:
  time and randomness are inputs, which is what makes a seed replay a run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("msp", "pbft", "ledger", "chaincode", "sim")

# package -> project modules it may import (its own package is always allowed)
ALLOWED: dict[str, tuple[str, ...]] = {
    "msp": (),
    "pbft": ("ledger.codec", "ledger.hashing"),
    "ledger": ("msp",),
    "chaincode": ("ledger", "msp"),
    "sim": PROJECT,
}
WIRE_LAYER = ("ledger/codec.py", "ledger/hashing.py")  # imported by pbft: must import nothing

FORBIDDEN_MODULES = {"time", "socket", "asyncio", "aiomqtt", "threading", "subprocess", "secrets"}
FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("os", "urandom"),
}


def sources(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def project_root(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in PROJECT else None


@pytest.mark.parametrize("package", PROJECT)
def test_imports_flow_down(package: str) -> None:
    bad = []
    for path in sources(package):
        rel = path.relative_to(ROOT).as_posix()
        for line, module in imported_modules(path):
            top = project_root(module)
            if top is None or (top == package and rel not in WIRE_LAYER):
                continue
            allowed = () if rel in WIRE_LAYER else ALLOWED[package]
            if not any(module == a or module.startswith(a + ".") for a in allowed):
                bad.append(f"{rel}:{line} imports {module}")
    assert not bad, "imports against the layering of DESIGN.md:\n" + "\n".join(bad)


def purity_violations(path: Path, package: str) -> list[str]:
    """Clock, global RNG or I/O uses in one protocol-package file."""
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    bad = []
    tree = ast.parse(path.read_text(), filename=rel)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                if name.split(".")[0] in FORBIDDEN_MODULES:
                    bad.append(f"{rel}:{node.lineno} imports {name}")
            if isinstance(node, ast.ImportFrom) and node.module == "random":
                extra = [a.name for a in node.names if a.name != "Random"]
                if extra:
                    bad.append(f"{rel}:{node.lineno} imports random.{extra}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            key_generation = package == "msp" and node.attr == "urandom"
            if (node.value.id, node.attr) in FORBIDDEN_CALLS and not key_generation:
                bad.append(f"{rel}:{node.lineno} uses {node.value.id}.{node.attr}")
            if node.value.id == "random" and node.attr != "Random":
                bad.append(f"{rel}:{node.lineno} uses the global random.{node.attr}")
    return bad


@pytest.mark.parametrize("package", ["msp", "pbft", "ledger", "chaincode"])
def test_protocol_packages_are_pure(package: str) -> None:
    bad = [v for path in sources(package) for v in purity_violations(path, package)]
    assert not bad, "clock, global RNG or I/O in a protocol package:\n" + "\n".join(bad)


def test_the_checks_see_violations(tmp_path: Path) -> None:
    """The scanners above must flag a known-bad file (a check that cannot fail is no check)."""
    sample = tmp_path / "bad.py"
    sample.write_text(
        "import time\nimport random\nimport os\nx = random.random()\ny = os.urandom(4)\n"
        "from sim import cli\nfrom random import Random\n"
    )
    assert [m for _, m in imported_modules(sample)] == ["time", "random", "os", "sim", "random"]
    assert project_root("sim.cli.main") == "sim"
    found = purity_violations(sample, "pbft")
    assert any("imports time" in v for v in found)
    assert any("global random.random" in v for v in found)
    assert any("os.urandom" in v for v in found)
    assert not any("Random" in v for v in found)  # a seeded random.Random is allowed
    assert not any("urandom" in v for v in purity_violations(sample, "msp"))  # key generation
