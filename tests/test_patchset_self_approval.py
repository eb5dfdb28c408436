"""The deployer of a patch set can never approve it, in whatever order approvals come.

Checked directly on each refused call (its exact message, and that the world state
is untouched), over every order in which the deployer and three other
administrators of two orgs can try to approve, for each number of sign-offs
required, and then over random sequences with repeats, a withdrawal and a
deployer re-enrolled under a new certificate. A small model says what the contract
must answer at every step: the deployer's upload is the first sign-off, each other
administrator counts once, release happens on the last sign-off needed; a withdrawal
takes effect when the deployer retracts a pending upload, or on the k-th distinct
administrator's signature.
"""

from __future__ import annotations

import functools
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_patchset import manifest

from chaincode.patchset import PatchSetContract, manifest_to_json, sign_manifest
from chaincode.shim import ContractError, Creator
from chaincode.testing import ContractHarness
from msp.ca import NetworkCrypto, generate_network
from msp.identity import SigningIdentity
from msp.keys import KeySource

DEPLOYER = "Admin@org1.example.com"
OTHERS = ("Admin2@org1.example.com", "Admin@org2.example.com", "Admin2@org2.example.com")
SELF_APPROVAL = (
    f"approve: the deployer ({DEPLOYER}) cannot approve their own upload; "
    "another administrator must approve"
)
REENROLLED = "re-enrolled deployer"


@functools.cache
def crypto() -> NetworkCrypto:
    return generate_network(2, 1, 1, seed=b"self-approval", admins=2)


@functools.cache
def reenrolled_deployer() -> SigningIdentity:
    """The deployer's name and org under a fresh key and certificate."""
    return crypto().org("Org1").enroll(DEPLOYER, "admin", KeySource(b"re-enrolled"))


def signer(who: str) -> SigningIdentity:
    return reenrolled_deployer() if who == REENROLLED else crypto().signer(who)


def creator(who: str) -> Creator:
    s = signer(who)
    return Creator(s.mspid, s.role, s.name, s.cert_pem)


class Model:
    """What the contract must say, step by step."""

    def __init__(self, required: int) -> None:
        self.required = required
        self.approvals: list[str] = []
        self.withdrawal: set[str] = set()
        """Names that signed the withdrawal so far (a re-enrolled deployer is the deployer)."""
        self.withdrawn = False

    @property
    def status(self) -> str:
        if self.withdrawn:
            return "withdrawn"
        return "released" if 1 + len(self.approvals) >= self.required else "pending"


def upload(required: int) -> tuple[ContractHarness, Model]:
    harness = ContractHarness(PatchSetContract(approvals_required=required))
    m = manifest()
    signature = sign_manifest(signer(DEPLOYER), m)
    harness.invoke(creator(DEPLOYER), "upload", json.dumps(manifest_to_json(m)), signature)
    return harness, Model(required)


def step(harness: ContractHarness, model: Model, who: str, action: str = "approve") -> None:
    """One call, checked against the model: answer, refusal message, untouched state."""
    m = manifest()
    args = (m.name, m.version) if action == "approve" else (m.name, m.version, "bad build")
    before = dict(harness.world.values)
    if action == "withdraw":
        if model.withdrawn:
            with pytest.raises(ContractError, match="already withdrawn"):
                harness.invoke(creator(who), action, *args)
            assert harness.world.values == before
            return
        harness.invoke(creator(who), action, *args)
        name = signer(who).name
        retraction = model.status == "pending" and name == DEPLOYER
        model.withdrawal.add(name)
        # The deployer alone retracts a pending upload; otherwise k admins must sign.
        model.withdrawn = retraction or len(model.withdrawal) >= model.required
        return
    if model.withdrawn or signer(who).name == DEPLOYER:
        expected = (
            f"approve: {m.name} {m.version} was withdrawn; it cannot be approved"
            if model.withdrawn
            else SELF_APPROVAL
        )
        with pytest.raises(ContractError) as refused:
            harness.invoke(creator(who), action, *args)
        assert str(refused.value) == expected
        assert harness.world.values == before
        return
    answer: dict[str, Any] = json.loads(harness.invoke(creator(who), action, *args))
    if who in model.approvals:
        assert answer["note"].endswith("counted once")
    else:
        model.approvals.append(who)
    assert answer["approvals"] == model.approvals
    assert (answer["status"], answer["signoffs"]) == (model.status, 1 + len(model.approvals))


@pytest.mark.parametrize("required", [1, 2, 3, 4])
def test_deployer_refused_in_every_order_of_approvals(required: int) -> None:
    """Every permutation of the deployer and three other admins approving, each twice in
    a row: the deployer is refused with the same message whether it comes first, between
    others, after the release, or after everyone; the others release on the last sign-off.

    Defeats mutants ``self-approval-allowed`` and ``self-approval-judged-by-certificate``
    (the deployer re-enrolled under a new certificate would count as a second admin).
    """
    for order in itertools.permutations((DEPLOYER, REENROLLED, *OTHERS)):
        harness, model = upload(required)
        for who in order:
            step(harness, model, who)
            step(harness, model, who)
        assert model.status == "released"


@settings(max_examples=80, deadline=None)
@given(
    required=st.integers(1, 5),
    actions=st.lists(
        st.tuples(
            st.sampled_from((DEPLOYER, REENROLLED, *OTHERS)),
            st.sampled_from(("approve", "approve", "approve", "withdraw")),
        ),
        max_size=10,
    ),
)
def test_random_approval_sequences_follow_the_model(
    required: int, actions: list[tuple[str, str]]
) -> None:
    """Random approvals, repeats and a withdrawal by anyone (the deployer included)."""
    harness, model = upload(required)
    for who, action in actions:
        step(harness, model, who, action)
