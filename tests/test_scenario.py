"""Scenario files: every key docs/design.md shows is accepted, every mistake is one precise line."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.errors import InputError
from sim.explore import strategies
from sim.scenario.model import Scenario
from sim.scenario.reader import load_scenario, parse_scenario
from sim.scenario.reproduce import to_toml

ROOT = Path(__file__).resolve().parent.parent
SRC = "scenarios/x.toml"


def design_example() -> str:
    """The scenario example of docs/design.md, verbatim (the page defines the interface)."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    match = re.search(r"## The scenario format.*?```toml\n(.*?)```", text, re.S)
    assert match, "docs/design.md has no scenario example under 'The scenario format'"
    return match.group(1)


def test_design_example_parses_as_written() -> None:
    s = parse_scenario(design_example(), SRC)
    assert (s.name, s.seed, s.duration_ms) == ("byzantine-primary", 7, 30000)
    assert s.network.replicas == 4 and s.f == 1 and s.network.crypto == "ecdsa-p256"
    assert s.network.latency.max_ms == 20.0 and s.workload.rate_per_s == 100.0
    assert [f.kind for f in s.faults] == ["byzantine", "crash", "partition", "link"]
    byz, crash, part, link = s.faults
    assert (byz.replica, byz.behavior) == (0, "equivocate")
    assert (crash.replica, crash.at_ms) == (2, 3000)
    assert part.groups == ((0, 1), (2, 3)) and part.until_ms == 4000
    assert (link.src, link.dst, link.drop_rate, link.until_ms) == (1, 3, 1.0, 2000)
    assert s.expect.safety is True and s.expect.min_view_changes == 1
    assert s.source == SRC


def test_extra_keys_are_accepted() -> None:
    s = parse_scenario(
        """
        [network.latency]
        kind = "exponential"
        mean_ms = 7.5
        reorder = false
        [workload]
        keys = 12
        chaincode = "none"
        [[fault]]
        kind = "byzantine"
        replica = 1
        behavior = "delay"
        delay_ms = 300
        [[fault]]
        kind = "byzantine"
        replica = 2
        behavior = "replay"
        params = { rate = 0.5 }
        [[fault]]
        kind = "link"
        from = 0
        to = 1
        drop_rate = 0.25
        extra_delay_ms = 40
        [expect]
        max_view_changes = 3
        min_committed = 10
        liveness_lost = false
        """,
        SRC,
    )
    assert s.network.latency.mean_ms == 7.5 and s.network.latency.reorder is False
    assert s.workload.keys == 12 and s.workload.chaincode == "none"
    assert s.faults[0].params == (("delay_ms", 300),)
    assert s.faults[1].params == (("rate", 0.5),)
    assert s.faults[2].extra_delay_ms == 40.0 and s.faults[2].drop_rate == 0.25
    assert (s.expect.max_view_changes, s.expect.min_committed) == (3, 10)
    assert s.expect.liveness_lost is False


def test_defaults_and_name_from_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text("seed = 3\n")
    s = load_scenario(path)
    assert s.name == "tiny" and s.seed == 3 and s.source == str(path)
    assert s.network == Scenario().network and s.faults == ()


BAD = [
    # (toml, expected message after "scenarios/x.toml: ")
    ("[network]\nreplicas = 3", "network.replicas: expected an integer >= 4, got 3"),
    ("[network]\nreplicas = '4'", 'network.replicas: expected an integer >= 4, got "4"'),
    ("[network]\nreplicas = true", "network.replicas: expected an integer >= 4, got true"),
    ("[network]\nreplicas = 4.0", "network.replicas: expected an integer >= 4, got 4.0"),
    ("[network]\nreplica = 4", "network.replica: unknown key"),
    ("nmae = 'x'", "nmae: unknown key"),
    ("[netwrok]\nreplicas = 4", "netwrok: unknown key"),
    ("network = 4", "network: expected a table, got 4"),
    ("[network]\norgs = 5", "network.orgs: expected at most one org per replica (<= 4), got 5"),
    (
        "[network]\ncrypto = 'rsa'",
        'network.crypto: expected one of "modelled", "ecdsa-p256", "ed25519", got "rsa"',
    ),
    ("[network]\nwatermark_window = 10", "network.watermark_window: expected an integer >= 20"),
    ("[network]\nbatch_size = 0", "network.batch_size: expected an integer >= 1, got 0"),
    (
        "[network]\nendorsement_policy = \"AND('Org1.member','Org3.member')\"",
        "network.endorsement_policy: expected a policy naming only Org1..Org2",
    ),
    ("[network]\nendorsement_policy = 'AND('", "network.endorsement_policy: expected a policy"),
    (
        "[network]\norgs = 1\n[workload]\nchaincode = 'kv'",
        "network.endorsement_policy: expected a policy naming only Org1..Org1, got "
        "\"AND('Org1.member','Org2.member')\" (the default policy; set one for this network)",
    ),
    ("[network.latency]\nkind = 'normal'", 'network.latency.kind: expected one of "fixed"'),
    (
        "[network.latency]\ndrop_rate = 1.5",
        "network.latency.drop_rate: expected a number in [0, 1]",
    ),
    ("[network.latency]\nduplicate_rate = -0.1", "network.latency.duplicate_rate: expected a"),
    ("[network.latency]\nmin_ms = 5\nmax_ms = 2", "network.latency.max_ms: expected a number >= 5"),
    ("[network.latency]\nreorder = 1", "network.latency.reorder: expected true or false, got 1"),
    ("[network.latency]\njitter = 1", "network.latency.jitter: unknown key"),
    (
        "[workload]\nchaincode = 'erc20'",
        'workload.chaincode: expected one of "kv", "patchset", "none", got "erc20"',
    ),
    ("[workload]\nclients = 0", "workload.clients: expected an integer >= 1, got 0"),
    ("[workload]\nrate_per_s = 0", "workload.rate_per_s: expected a number >= 0.001, got 0"),
    ("[expect]\nsafety = 'yes'", 'expect.safety: expected true or false, got "yes"'),
    ("[expect]\nmin_view_changes = -1", "expect.min_view_changes: expected an integer >= 0"),
    (
        "[expect]\nmin_view_changes = 3\nmax_view_changes = 1",
        "expect.max_view_changes: expected an integer >= min_view_changes (3), got 1",
    ),
    ("[expect]\nall_committed = true\nliveness_lost = true", "expect.liveness_lost: expected not"),
    ("[expect]\nliveness = true", "expect.liveness: unknown key"),
    ("duration_ms = 0", "duration_ms: expected an integer >= 1, got 0"),
    ("seed = -1", "seed: expected an integer >= 0, got -1"),
    ("fault = 3", "fault: expected an array of tables ([[fault]]), got 3"),
    ("[[fault]]\nat_ms = 5", "fault[0].kind: missing; expected one of"),
    ("[[fault]]\nkind = 'meteor'", 'fault[0].kind: expected one of "byzantine", "crash"'),
    ("[[fault]]\nkind = 'crash'", "fault[0].replica: missing"),
    (
        "[[fault]]\nkind = 'crash'\nreplica = 4",
        "fault[0].replica: expected a replica id in 0..3, got 4",
    ),
    ("[[fault]]\nkind = 'crash'\nreplica = -1", "fault[0].replica: expected a replica id in 0..3"),
    (
        "[[fault]]\nkind = 'crash'\nreplica = 1\n[[fault]]\nkind = 'crash'\nreplica = 1\n"
        "[[fault]]\nkind = 'crash'\nreplica = 'two'",
        'fault[2].replica: expected a replica id in 0..3, got "two"',
    ),
    (
        "[[fault]]\nkind = 'crash'\nreplica = 1\nuntil_ms = 9",
        "fault[0].until_ms: unknown key for a",
    ),
    ("[[fault]]\nkind = 'crash'\nreplica = 1\nat_ms = 30000", "fault[0].at_ms: expected a time"),
    (
        "[[fault]]\nkind = 'byzantine'\nreplica = 0\nbehavior = 'lying'",
        'fault[0].behavior: expected one of "bad-digest", ',
    ),
    (
        "[[fault]]\nkind = 'byzantine'\nreplica = 0\nbehavior = 'silent'\ndelay_ms = 3",
        "fault[0].delay_ms: unknown key for a byzantine fault",
    ),
    (
        "[[fault]]\nkind = 'byzantine'\nreplica = 0\nbehavior = 'delay'\n"
        "params = { delay_ms = [1] }",
        "fault[0].params.delay_ms: expected an integer >= 0, got [1]",
    ),
    (
        "[[fault]]\nkind = 'partition'\nat_ms = 10\nuntil_ms = 10\ngroups = [[0, 1], [2, 3]]",
        "fault[0].until_ms: expected a time after at_ms (10), got 10",
    ),
    (
        "[[fault]]\nkind = 'partition'\ngroups = [[0, 1], [1, 2]]",
        "fault[0].groups: expected a list of disjoint groups of replica ids in 0..3, e.g. "
        "[[0, 1], [2, 3]] (1 is in two groups), got [[0, 1], [1, 2]]",
    ),
    ("[[fault]]\nkind = 'partition'\ngroups = [[0, 9]]", "fault[0].groups: expected a list of"),
    ("[[fault]]\nkind = 'partition'\ngroups = [[0, 1, 2, 3]]", "fault[0].groups: expected groups"),
    ("[[fault]]\nkind = 'partition'\ngroups = 'all'", "fault[0].groups: expected a list"),
    ("[[fault]]\nkind = 'link'\nfrom = 1", "fault[0].to: missing"),
    (
        "[[fault]]\nkind = 'link'\nfrom = 1\nto = 1",
        "fault[0].to: expected a replica other than from",
    ),
    ("[[fault]]\nkind = 'link'\nfrom = 1\nto = 2\ndrop_rate = 2", "fault[0].drop_rate: expected a"),
    ("[[fault]]\nkind = 'link'\nfrom = 1\nto = 2\nreplica = 2", "fault[0].replica: unknown key"),
    ("[[fault]]\nkind = 'recover'\nreplica = 1", "fault[0].replica: expected a replica crashed"),
    (
        "[[fault]]\nkind = 'crash'\nreplica = 1\n[[fault]]\nkind = 'crash'\nreplica = 1\nat_ms = 5",
        "fault[1].replica: expected a running replica, got 1 (already crashed at 5 ms)",
    ),
    ("[[fault]]\nkind = 'crash'\nreplica = 1\ncolour = 'red'", "fault[0].colour: unknown key"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_scenarios_name_file_key_and_expectation(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_scenario(text, SRC)
    error = str(info.value)
    assert "\n" not in error
    assert error.startswith(f"{SRC}: {message}"), error


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[network\nreplicas = 4", "line 1"),
        ("name = 'a'\nseed = = 3", "line 2"),
        ('name = "unterminated\nseed = 1', "line 1"),
        ("[network]\nreplicas = 4\n[network]\nreplicas = 5", "line 3"),
    ],
)
def test_toml_syntax_errors_are_one_line_with_position(text: str, where: str) -> None:
    with pytest.raises(InputError) as info:
        parse_scenario(text, SRC)
    error = str(info.value)
    assert error.startswith(f"{SRC}: invalid TOML: ") and where in error and "\n" not in error


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.toml: cannot read scenario file"):
        load_scenario(tmp_path / "missing.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"name = '\xff'\n")
    with pytest.raises(InputError, match=r"bin\.toml: invalid TOML: not UTF-8"):
        load_scenario(binary)


def test_recover_after_crash_in_time_order_not_file_order() -> None:
    text = (
        "[[fault]]\nkind = 'recover'\nreplica = 1\nat_ms = 900\n"
        "[[fault]]\nkind = 'crash'\nreplica = 1\nat_ms = 100\n"
    )
    s = parse_scenario(text, SRC)
    assert [(f.kind, f.at_ms) for f in s.faults] == [("recover", 900), ("crash", 100)]


@given(n=st.integers(min_value=4, max_value=40), replica=st.integers(min_value=-3, max_value=45))
def test_fault_replica_ids_are_checked_against_n(n: int, replica: int) -> None:
    text = f"[network]\nreplicas = {n}\n[[fault]]\nkind = 'crash'\nreplica = {replica}\n"
    if 0 <= replica < n:
        assert parse_scenario(text, SRC).faults[0].replica == replica
    else:
        with pytest.raises(
            InputError, match=rf"fault\[0\]\.replica: expected a replica id in 0\.\.{n - 1}"
        ):
            parse_scenario(text, SRC)


@given(rate=st.floats(allow_nan=False, allow_infinity=False, min_value=-2, max_value=3))
def test_rates_must_lie_in_unit_interval(rate: float) -> None:
    text = f"[network.latency]\ndrop_rate = {rate!r}\n"
    if 0.0 <= rate <= 1.0:
        assert parse_scenario(text, SRC).network.latency.drop_rate == rate
    else:
        with pytest.raises(InputError, match=r"network\.latency\.drop_rate: expected a number in"):
            parse_scenario(text, SRC)


def test_shipped_scenarios_parse() -> None:
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    names = {load_scenario(path).name for path in files}
    assert {
        "normal-case",
        "byzantine-primary",
        "crash-recover",
        "partition-heal",
        "n7-two-byzantine-lossy",
        "beyond-fault-model",
    } <= names


@given(scenario=strategies.scenarios(beyond_model=True, lossy=True, safety=True))
def test_generated_scenarios_round_trip_through_toml(scenario: Scenario) -> None:
    """What a failing property test prints (sim.scenario.reproduce) reads back the same."""
    parsed = parse_scenario(to_toml(scenario), "repro.toml")
    assert replace(parsed, source=scenario.source) == scenario


def test_every_behaviour_option_may_be_written_on_the_fault_table() -> None:
    """Options come from each behaviour class's OPTIONS, so new behaviours need no parser change."""
    from sim.scenario.reader import behaviour_options

    for name, options in behaviour_options().items():
        for option in options.values():
            value = 2 if option.default is None else option.default
            text = (
                "[network]\nreplicas = 4\n[[fault]]\nkind = 'byzantine'\nreplica = 1\n"
                f"behavior = '{name}'\n{option.name} = {value!r}\n"
            )
            (fault,) = parse_scenario(text, "inline.toml").faults
            assert (option.name, value) in fault.params, (name, option)
