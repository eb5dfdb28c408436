"""The structural rules of docs/design.md ("Sans-IO protocol packages",
"Determinism") and docs/architecture.md, checked on the source so they cannot rot.

* Imports flow down the package table (msp, pbft, ledger, chaincode, sim),
  and inside ``sim/`` down the sub-package table (``SIM_LAYERS``).
* No module takes part in an import cycle.
* The protocol packages read no clock, no global RNG and do no network I/O:
  time and randomness are inputs, which is what makes a seed replay a run.

Every import counts, wherever it stands (in a function, under
``TYPE_CHECKING``) and however it is spelled (``importlib.import_module`` with
a literal name too): a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
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
        else:
            target = import_module_target(node)
            if target is not None:
                yield node.lineno, target


def import_module_target(node: ast.AST) -> str | None:
    """The module ``importlib.import_module("literal")`` (or ``import_module(...)``) names."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    first = node.args[0]
    if name == "import_module" and isinstance(first, ast.Constant):
        return first.value if isinstance(first.value, str) else None
    return None


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
    assert not bad, "imports against the package table of docs/architecture.md:\n" + "\n".join(bad)


# ------------------------------------------------------------------ inside sim/

SIM_BASE = ("sim", "sim.errors", "sim.closing", "sim.progress", "sim.collector")
"""Modules every part of ``sim/`` may import: the error kinds, clean-up, progress bars."""

# unit -> what it may import besides itself and SIM_BASE (module names or package
# prefixes). The longest matching key is a module's unit, so ``sim.scenario.model``
# (the scenario format's data classes, which every layer shares) stands apart
# from the rest of ``sim.scenario`` (the reader, which checks names against the
# world's fault kinds, behaviours and latency models, so it sits above the world).
SIM_LAYERS: dict[str, tuple[str, ...]] = {
    "sim.errors": (),
    "sim.closing": (),
    "sim.progress": (),
    "sim.collector": (),
    "sim.trace": (),
    "sim.scenario.model": (),
    "sim.world": ("sim.scenario.model", "sim.trace"),
    "sim.scenario": ("sim.scenario.model", "sim.world"),
    "sim.fabric": ("sim.scenario.model", "sim.world", "sim.trace"),
    "sim.explore": ("sim.scenario", "sim.world", "sim.fabric"),
    "sim.live": ("sim.scenario", "sim.world", "sim.fabric"),
    "sim.bench": ("sim.scenario", "sim.world", "sim.fabric", "sim.live"),
    "sim.http": ("sim.fabric", "sim.live"),
    "sim.cli": ("sim",),
    "sim.__main__": ("sim.cli",),
}

Graph = Mapping[str, Mapping[str, int]]
"""module -> {project module it imports: line of the first such import}."""


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, packages: Iterable[str] = PROJECT) -> dict[str, dict[str, int]]:
    """Every import between the modules under ``root``'s ``packages``, resolved to modules.

    ``from sim.fabric import simnet`` is an arrow to ``sim.fabric.simnet``;
    ``import msp`` one to the package ``msp`` (its ``__init__``). The implicit
    import of each parent package is left out: it is not a choice the module made.
    """
    paths = {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }

    def resolve(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for module, path in paths.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                base = node.module
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names
                ]
            else:
                target = import_module_target(node)
                targets = [] if target is None else [target]
            for target in targets:
                found = resolve(target)
                if found is not None and found != module:
                    edges.setdefault(found, node.lineno)
        graph[module] = edges
    return graph


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def sim_unit(module: str) -> str | None:
    """The ``SIM_LAYERS`` key a ``sim`` module belongs to (None: it is in no row)."""
    if module in SIM_BASE:
        return module
    keys = [key for key in SIM_LAYERS if _within(module, key)]
    return max(keys, key=len) if keys else None


def layer_violations(graph: Graph) -> list[str]:
    """Arrows between ``sim`` units that ``SIM_LAYERS`` does not allow, and unplaced modules."""
    bad = []
    for module, edges in sorted(graph.items()):
        if not _within(module, "sim"):
            continue
        unit = sim_unit(module)
        if unit is None:
            bad.append(f"{module} belongs to no row of SIM_LAYERS")
            continue
        allowed = SIM_LAYERS.get(unit, ())
        for target, line in sorted(edges.items()):
            if not _within(target, "sim") or target in SIM_BASE or sim_unit(target) == unit:
                continue
            if not any(_within(target, a) for a in allowed):
                bad.append(f"{module}:{line} imports {target}")
    return bad


def import_cycles(graph: Graph) -> list[list[str]]:
    """Every set of modules that import one another in a circle (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, {}):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def test_sim_imports_flow_down_the_sub_package_table() -> None:
    bad = layer_violations(import_graph(ROOT, ("sim",)))
    assert not bad, "imports against the sim/ table of docs/architecture.md:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    cycles = import_cycles(import_graph(ROOT))
    assert not cycles, "modules importing one another:\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_sim_checks_see_a_library_module_importing_the_cli(tmp_path: Path) -> None:
    """A module under sim/fabric importing sim.cli, and a two-module cycle, must be flagged."""
    files = {
        "sim/__init__.py": "",
        "sim/errors.py": "",
        "sim/cli/__init__.py": "",
        "sim/cli/patch.py": "from sim.fabric import good\n",
        "sim/fabric/__init__.py": "",
        "sim/fabric/good.py": "from sim.errors import InputError\n",
        "sim/fabric/bad.py": "import json\n\ndef late():\n    from sim.cli.patch import run\n",
        "sim/world/__init__.py": "",
        "sim/world/a.py": "from sim.world import b\n",
        "sim/world/b.py": "import importlib\nimportlib.import_module('sim.world.a')\n",
        "sim/stray.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("sim",))
    assert graph["sim.cli.patch"] == {"sim.fabric.good": 1}
    assert layer_violations(graph) == [
        "sim.fabric.bad:4 imports sim.cli.patch",
        "sim.stray belongs to no row of SIM_LAYERS",
    ]
    assert import_cycles(graph) == [["sim.world.a", "sim.world.b"]]


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


def test_the_simulator_finds_ledger_workloads_without_importing_fabric() -> None:
    """World sits below fabric, yet ``run_scenario`` on a ``patchset`` scenario must just work.

    A fresh interpreter (nothing imported by this suite's conftest) runs the
    shipped patch-set scenario through the public API; the workload arrives
    through the ``ledgersim.workloads`` entry point, not a hidden import.
    """
    script = (
        "import sys\n"
        "from sim.scenario.reader import load_scenario\n"
        "from sim.world.simulation import run_scenario\n"
        "assert 'sim.fabric.workload' not in sys.modules\n"
        "result = run_scenario(load_scenario('scenarios/normal-case.toml'))\n"
        "print(result.workload['chaincode'], result.committed)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["patchset", "30"]
