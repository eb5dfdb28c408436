"""Byzantine behaviour options: declared with types and ranges, checked when a scenario is read.

Every bad value is refused before the run, in one line naming the file, the
dotted key and what was expected (exit status 2 from the CLI); a key the
behaviour does not declare is refused too; ``--list-behaviours`` prints the
declarations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli.main import main as cli_main
from sim.errors import InputError
from sim.scenario.reader import behaviour_options, parse_scenario

SRC = "scenarios/x.toml"
NOT_ITSELF = "expected a replica id in 0..3 other than the replica itself (1)"


def fault(behaviour: str, params: str, replica: int = 1) -> str:
    return (
        "[network]\nreplicas = 4\n[[fault]]\nkind = 'byzantine'\n"
        f"replica = {replica}\nbehavior = '{behaviour}'\nparams = {{ {params} }}\n"
    )


BAD = [
    (
        fault("delay", "delay_ms = -100"),
        "fault[0].params.delay_ms: expected an integer >= 0, got -100",
    ),
    (
        fault("delay", "delay_ms = 'slow'"),
        'fault[0].params.delay_ms: expected an integer >= 0, got "slow"',
    ),
    (
        fault("delay", "delay_ms = 1.5"),
        "fault[0].params.delay_ms: expected an integer >= 0, got 1.5",
    ),
    (fault("replay", "rate = 5"), "fault[0].params.rate: expected a probability in [0, 1], got 5"),
    (
        fault("fake-view-change", "interval_ms = 0"),
        "fault[0].params.interval_ms: expected an integer >= 1, got 0",
    ),
    (
        fault("forge-signature", "as = 9"),
        f"fault[0].params.as: {NOT_ITSELF}, got 9",
    ),
    (
        fault("forge-signature", "as = -1"),
        f"fault[0].params.as: {NOT_ITSELF}, got -1",
    ),
    (
        fault("forge-signature", "as = 1"),
        f"fault[0].params.as: {NOT_ITSELF}, got 1",
    ),
    (
        fault("forged-state", "trick = 'nope'"),
        'fault[0].params.trick: expected one of "all", "no-certificate", "repeated-signature",'
        ' "other-digest", "unsigned", got "nope"',
    ),
    (
        fault("forged-view-change", "stall_ms = -5"),
        "fault[0].params.stall_ms: expected an integer >= 0, got -5",
    ),
    (
        fault("subset-new-view", "strip = 2"),
        "fault[0].params.strip: expected true, false, 0 or 1, got 2",
    ),
    (fault("liar", "hollow = 3"), "fault[0].params.hollow: expected true, false, 0 or 1, got 3"),
    (
        fault("delay", "delay = 5"),
        "fault[0].params.delay: unknown option for behaviour 'delay' (its options: delay_ms)",
    ),
    (
        fault("silent", "rate = 0.5"),
        "fault[0].params.rate: unknown option for behaviour 'silent' (its options: none)",
    ),
    (
        "[network]\nreplicas = 4\n[[fault]]\nkind = 'byzantine'\nreplica = 0\n"
        "behavior = 'delay'\ndelay_ms = -1\n",
        "fault[0].delay_ms: expected an integer >= 0, got -1",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(",")[0] for _, m in BAD])
def test_a_bad_option_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_scenario(text, SRC)
    assert str(info.value) == f"{SRC}: {message}"


def test_good_options_reach_the_behaviour_as_given() -> None:
    text = (
        fault("forge-signature", "as = 3")
        + fault("replay", "rate = 1").split("[network]\nreplicas = 4\n")[1]
    )
    first, second = parse_scenario(text, SRC).faults
    assert first.params == (("as", 3),) and second.params == (("rate", 1),)
    (liar,) = parse_scenario(fault("liar", "hollow = false, victim = 2"), SRC).faults
    assert liar.params == (("hollow", 0), ("victim", 2))


def test_every_behaviour_declares_typed_options() -> None:
    """No bare option names: each has a type (so each can be checked) and help."""
    for name, options in behaviour_options().items():
        for option in options.values():
            assert option.kind != "any" and option.help, (name, option.name)


def test_the_cli_refuses_a_bad_option_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(fault("delay", "delay_ms = 'slow'"))
    assert cli_main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    expected = 'fault[0].params.delay_ms: expected an integer >= 0, got "slow"'
    assert err == f"ledgersim: error: {path}: {expected}\n"


def test_list_behaviours_shows_each_with_its_options_and_attack(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["run", "--list-behaviours"]) == 0
    out = capsys.readouterr().out
    for name, options in behaviour_options().items():
        assert f"\n{name}\n" in f"\n{out}\n", name
        for option in options.values():
            assert f"- {option.describe()}" in out
    assert "- delay_ms (integer >= 0, default 1000): how long each message is held" in out
    assert "re-sends old messages" in out  # replay's attack, from its docstring


def test_docs_describe_every_behaviour() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "scenarios.md").read_text()
    for name in behaviour_options():
        assert f"| `{name}` |" in text, f"docs/scenarios.md does not describe {name}"
