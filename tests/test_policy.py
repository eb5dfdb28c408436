"""The policy language: parsing (with error positions) and exact evaluation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msp import (
    AND,
    OR,
    OutOf,
    Policy,
    PolicyError,
    Principal,
    at_virtual_ms,
    generate_network,
    parse,
)
from msp.policy import Threshold


@dataclass(frozen=True)
class Member:
    mspid: str
    role: str
    serial: int = 0


A1, A2 = Member("Org1", "admin", 1), Member("Org1", "admin", 2)
C1, P2 = Member("Org1", "client", 3), Member("Org2", "peer", 4)


@pytest.mark.parametrize(
    "text",
    [
        "AND('Org1.member', 'Org2.member')",
        "OR('Org1.admin', 'Org2.peer')",
        "OutOf(2, 'Org1.member', 'Org2.client', AND('Org3.orderer', 'Org3.admin'))",
    ],
)
def test_round_trip(text: str) -> None:
    assert str(parse(text)) == text
    assert parse(str(parse(text))) == parse(text)


def test_keywords_are_case_insensitive_and_whitespace_free() -> None:
    policy = parse('  and ( "Org1.member" ,outof(1,"Org2.peer"))  ')
    assert policy == AND("'Org1.member'", OutOf(1, Principal("Org2", "peer")))
    assert parse("'Org1.member'") == Principal("Org1", "member")
    assert parse("'my.org.admin'") == Principal("my.org", "admin")


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("", 0, "expected a principal"),
        ("AND('Org1.member'", 17, "expected ')'"),
        ("AND('Org1.member' 'Org2.member')", 18, "expected ')'"),
        ("XOR('Org1.member')", 0, "unknown operator"),
        ("AND('Org1.membr')", 10, "unknown role"),
        ("OR('Org1member')", 4, "<MSPID>.<role>"),
        ("OR('Org1.member)", 3, "unterminated"),
        ("OutOf(3, 'Org1.member', 'Org2.member')", 6, "between 1 and 2"),
        ("OutOf(x, 'Org1.member')", 6, "count"),
        ("OutOf( 0, 'Org1.member')", 7, "between 1 and 1"),
        ("'Org1.member' extra", 14, "unexpected"),
        ("AND()", 4, "expected a principal"),
        ("OR('Org1.member',)", 17, "expected a principal"),
    ],
)
def test_parse_errors_name_the_position(text: str, position: int, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(text)
    assert caught.value.position == position
    assert words in str(caught.value) and f"position {position}" in str(caught.value)


def test_too_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(PolicyError, match="deeper"):
        parse("AND(" * 200 + "'Org1.member'" + ")" * 200)


def test_each_identity_counts_once() -> None:
    both = parse("AND('Org1.member', 'Org1.member')")
    assert not both.evaluate([A1])
    assert not both.evaluate([A1, A1, Member("Org1", "admin", 1)])
    assert both.evaluate([A1, A2])
    two_admins = parse("OutOf(2, 'Org1.admin', 'Org1.admin', 'Org2.peer')")
    assert two_admins.evaluate([A1, A2]) and two_admins.evaluate([A1, P2])
    assert not two_admins.evaluate([A1, C1])


def test_order_of_identities_cannot_fool_a_greedy_assignment() -> None:
    # A greedy pass giving the admin to 'member' first would then miss 'admin'.
    policy = parse("AND('Org1.member', 'Org1.admin')")
    assert policy.evaluate([A1, C1]) and policy.evaluate([C1, A1])
    assert not policy.evaluate([C1, Member("Org1", "client", 9)])


def test_real_identities_deduplicate_by_certificate() -> None:
    net = generate_network(2, 1, 1, seed=b"policy", admins=2)
    admin, admin2 = net.signer("Admin@org1.example.com"), net.signer("Admin2@org1.example.com")
    manager = net.msps()
    now = at_virtual_ms(0)
    assert all(manager.validate(i, now).ok for i in (admin, admin2))
    policy = parse("AND('Org1.admin', 'Org1.admin')")
    assert not policy.evaluate([admin, admin.public(), manager.identity("Org1", admin.cert_pem)])
    assert policy.evaluate([admin, admin2])
    assert parse("AND('Org1.member', 'Org2.member')").evaluate(
        [net.signer("peer0.org1.example.com"), net.signer("User1@org2.example.com")]
    )


# --- exactness against a brute-force oracle -------------------------------------

PRINCIPALS = [Principal(m, r) for m in ("Org1", "Org2") for r in ("member", "admin", "client")]
MEMBERS = [
    Member(m, r, i)
    for i, (m, r) in enumerate(itertools.product(("Org1", "Org2"), ("admin", "client", "peer")))
]


def policies() -> st.SearchStrategy[Policy]:
    leaf = st.sampled_from(PRINCIPALS)

    def extend(children: st.SearchStrategy[Policy]) -> st.SearchStrategy[Policy]:
        rules = st.lists(children, min_size=1, max_size=3)
        return st.one_of(
            rules.map(lambda r: AND(*r)),
            rules.map(lambda r: OR(*r)),
            rules.flatmap(lambda r: st.integers(1, len(r)).map(lambda k: OutOf(k, *r))),
        )

    return st.recursive(leaf, extend, max_leaves=5)


def oracle(policy: Policy, identities: list[Member]) -> bool:
    """Try every way of giving each distinct identity to at most one leaf."""
    distinct = list(dict.fromkeys(identities))
    leaves = policy.principals()

    def holds(node: Policy, given_to: dict[Member, int], next_leaf: list[int]) -> bool:
        if isinstance(node, Principal):
            index = next_leaf[0]
            next_leaf[0] += 1
            return any(
                leaf_index == index and node.matches(m) for m, leaf_index in given_to.items()
            )
        assert isinstance(node, Threshold)
        results = [holds(rule, given_to, next_leaf) for rule in node.rules]
        return sum(results) >= node.k

    for choice in itertools.product(range(len(leaves) + 1), repeat=len(distinct)):
        given_to = {m: c for m, c in zip(distinct, choice, strict=True) if c < len(leaves)}
        if holds(policy, given_to, [0]):
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(policy=policies(), identities=st.lists(st.sampled_from(MEMBERS), max_size=4))
def test_evaluation_agrees_with_brute_force(policy: Policy, identities: list[Member]) -> None:
    assert policy.evaluate(identities) == oracle(policy, identities)
    assert parse(str(policy)).evaluate(identities) == policy.evaluate(identities)
