"""Endorsement planning: ask a minimal satisfying set of peers first, the rest after."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from msp.policy import parse
from sim.fabric.sdk import EndorsementPlanner, endorsement_plan


@dataclass(frozen=True)
class FakeIdentity:
    mspid: str
    role: str
    name: str


@dataclass(eq=False)
class FakeEndorser:
    identity: FakeIdentity


def peers(orgs: list[str]) -> list[Any]:
    return [FakeEndorser(FakeIdentity(org, "peer", f"p{i}")) for i, org in enumerate(orgs)]


POLICIES = [
    "AND('Org1.member','Org2.member')",
    "OR('Org1.peer','Org3.member')",
    "OutOf(2,'Org1.member','Org2.member','Org3.member')",
    "AND('Org1.member','Org1.member')",
]


def minimal_size(policy: Any, endorsers: list[Any]) -> int | None:
    for size in range(1, len(endorsers) + 1):
        for combo in combinations(endorsers, size):
            if policy.evaluate(e.identity for e in combo):
                return size
    return None


@given(
    st.sampled_from(POLICIES),
    st.lists(st.sampled_from(["Org1", "Org2", "Org3"]), min_size=1, max_size=6),
)
def test_plan_puts_a_minimal_satisfying_set_first(text: str, orgs: list[str]) -> None:
    policy = parse(text)
    endorsers = peers(orgs)
    planned = endorsement_plan(endorsers, cast(Any, policy))
    assert sorted(map(id, planned)) == sorted(map(id, endorsers))
    size = minimal_size(policy, endorsers)
    if size is None:
        assert planned == endorsers
        return
    prefix = next(
        k for k in range(1, len(planned) + 1) if policy.evaluate(e.identity for e in planned[:k])
    )
    assert prefix == size


def test_two_of_one_org_asks_only_that_org_first() -> None:
    policy = parse("OutOf(2,'Org1.member','Org1.member')")
    endorsers = peers(["Org1", "Org2", "Org1", "Org2"])
    planned = endorsement_plan(endorsers, cast(Any, policy))
    assert [e.identity.mspid for e in planned[:2]] == ["Org1", "Org1"]


@given(st.lists(st.sampled_from(["Org1", "Org2", "Org3"]), min_size=1, max_size=6))
def test_planner_memo_agrees_with_the_plain_plan(orgs: list[str]) -> None:
    policy = parse(POLICIES[2])
    planner = EndorsementPlanner(cast(Any, policy))
    endorsers = peers(orgs)
    for _ in range(2):  # the second call is answered from the memo
        assert planner.plan(endorsers) == endorsement_plan(endorsers, cast(Any, policy))
        chosen = [e.identity for e in endorsers[:2]]
        assert planner.evaluate(cast(Any, chosen)) == policy.evaluate(chosen)
