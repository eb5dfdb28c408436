"""Scenario -> TOML text, so a failing property test prints a file that replays it.

docs/design.md, "Checks that can fail": a failure prints the seed and a scenario file that
reproduces it. Hypothesis builds :class:`~sim.scenario.model.Scenario`
objects in memory; this writes them back in the scenario-file format
``sim.scenario.reader.parse_scenario`` reads (keys as the format spells them, e.g.
``from``/``to`` for link faults), with only non-default values where that
keeps the file short.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from sim.scenario.model import Expect, Fault, Scenario


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def _table(obj: Any, skip: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{f.name} = {_value(getattr(obj, f.name))}"
        for f in fields(obj)
        if f.name not in skip and getattr(obj, f.name) is not None
    ]


_FAULT_KEYS = {
    "byzantine": ("at_ms", "until_ms", "replica", "behavior"),
    "crash": ("at_ms", "replica"),
    "recover": ("at_ms", "replica"),
    "partition": ("at_ms", "until_ms", "groups"),
    "link": ("at_ms", "until_ms", "src", "dst", "drop_rate", "extra_delay_ms"),
}
_RENAMED = {"src": "from", "dst": "to"}


def _fault(fault: Fault) -> list[str]:
    lines = ["[[fault]]", f"kind = {_value(fault.kind)}"]
    for name in _FAULT_KEYS.get(fault.kind, ()):
        value = getattr(fault, name)
        if value is not None:
            lines.append(f"{_RENAMED.get(name, name)} = {_value(value)}")
    if fault.params:
        lines.append(
            "params = { " + ", ".join(f"{k} = {_value(v)}" for k, v in fault.params) + " }"
        )
    return lines


def to_toml(scenario: Scenario) -> str:
    """The scenario as a TOML file ``ledgersim run`` accepts."""
    lines = [
        f"name = {_value(scenario.name)}",
        f"seed = {scenario.seed}",
        f"duration_ms = {scenario.duration_ms}",
        "",
        "[network]",
        *_table(scenario.network, skip=("latency",)),
        "",
        "[network.latency]",
        *_table(scenario.network.latency),
        "",
        "[workload]",
        *_table(scenario.workload),
    ]
    for fault in scenario.faults:
        lines += ["", *_fault(fault)]
    expect = _table(scenario.expect)
    if expect:
        lines += ["", "[expect]", *expect]
    return "\n".join(lines) + "\n"


def failure_report(
    scenario: Scenario,
    result: Any,
    *,
    claim: Expect | None = None,
    replica_class: type | None = None,
) -> str:
    """What a failing check prints: a scenario file and a command that fails the same way.

    ``result`` is a :class:`sim.world.results.RunResult` (typed loosely so this
    module stays importable without the simulator). The file carries an
    ``[expect]`` table stating the claim, so ``ledgersim run`` exits 1 on it:
    ``claim`` when given, else what the run visibly broke (safety, or every
    request committing), merged over the scenario's own expectations. With
    ``replica_class`` (the class the run used instead of ``pbft.replica.Replica``)
    the command names it with ``--replica``.
    """
    stated = claim if claim is not None else _broken(scenario, result)
    file = to_toml(replace(scenario, expect=_merged(scenario.expect, stated)))
    command = f"ledgersim run repro.toml --seed {result.seed}"
    if replica_class is not None:
        module = replica_class.__module__
        command = f"PYTHONPATH=. {command} --replica {module}:{replica_class.__qualname__}"
    summary = result.to_json()
    note = ""
    if not any(getattr(stated, f.name) is not None for f in fields(stated)):
        note = (
            "\n(nothing [expect] can state failed: the failing check is your own, so run"
            " it on this scenario and seed)"
        )
    return (
        f"seed {result.seed} (scenario {scenario.name!r}); save this as repro.toml and run "
        f"`{command}`:\n\n{file}\n"
        f"safety: {summary['safety']}\nliveness: {summary['liveness']}\n"
        f"requested {summary['requested']}, submitted {summary['submitted']}, "
        f"committed {summary['committed']}, view changes {summary['view_changes']} "
        f"(highest view {summary['highest_view']}){note}"
    )


def _broken(scenario: Scenario, result: Any) -> Expect:
    """The claims a run visibly failed, as ``[expect]`` keys."""
    if not result.safe:
        return Expect(safety=True)
    everything = result.submitted > 0 and result.committed == result.submitted
    if not (everything and result.submitted >= result.requested):
        return Expect(all_committed=True)
    return Expect()


def _merged(own: Expect, stated: Expect) -> Expect:
    """``stated`` wins where it says something; the scenario's own keys stay otherwise."""
    changes = {f.name: getattr(stated, f.name) for f in fields(stated)}
    return replace(own, **{k: v for k, v in changes.items() if v is not None})
