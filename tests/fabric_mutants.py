"""Deliberately weakened checks of the Fabric-like layers: the suite must catch every one.

Each mutant is one realistic slip in one function of ledger/, msp/, chaincode/
or the ledger verifier: a check left out, a comparison loosened, a set turned
into a list. It is written as an edit of the function's source (``old`` must
occur exactly once, so a refactoring that moves the check makes this list fail
loudly instead of silently testing nothing), compiled in the function's own
module and patched over the original for the duration of one test.

``killed_by`` names the test function that must fail under the mutant; its
docstring names the mutant back. tests/test_fabric_mutants.py runs them all.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class SourceMutant:
    """``function`` (``module:name`` or ``module:Class.method``), ``old`` replaced by ``new``."""

    name: str
    function: str
    old: str
    new: str
    killed_by: str
    """``test_module::test_function``."""

    def owner_and_attribute(self) -> tuple[Any, str, Any]:
        module_name, _, path = self.function.partition(":")
        owner: Any = importlib.import_module(module_name)
        *parents, attribute = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        return owner, attribute, vars(owner)[attribute]

    def mutated(self) -> Any:
        """The mutated function object (a staticmethod stays one)."""
        _owner, attribute, original = self.owner_and_attribute()
        code = original.__func__ if isinstance(original, staticmethod) else original
        source = textwrap.dedent(inspect.getsource(code))
        count = source.count(self.old)
        if count != 1:
            raise AssertionError(f"mutant {self.name}: {self.old!r} occurs {count} times")
        module = importlib.import_module(code.__module__)
        namespace: dict[str, Any] = {}
        compiled = compile(
            source.replace(self.old, self.new),
            inspect.getsourcefile(code) or "<mutant>",
            "exec",
            flags=annotations_flag(),
            dont_inherit=True,
        )
        exec(compiled, vars(module), namespace)
        return namespace[attribute]

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Patch the function where it is defined and wherever it was imported by name."""
        owner, attribute, original = self.owner_and_attribute()
        mutated = self.mutated()
        monkeypatch.setattr(owner, attribute, mutated)
        if inspect.ismodule(owner):
            for module in list(sys.modules.values()):
                if module is not owner and getattr(module, attribute, None) is original:
                    monkeypatch.setattr(module, attribute, mutated)


def annotations_flag() -> int:
    """``from __future__ import annotations`` for the recompiled source, as in the original."""
    import __future__

    return __future__.annotations.compiler_flag


def killer(mutant: SourceMutant) -> Callable[..., None]:
    module_name, _, function = mutant.killed_by.partition("::")
    found: Callable[..., None] = getattr(importlib.import_module(module_name), function)
    return found


def run_test(test: Callable[..., None]) -> None:
    """Call a test function as pytest would, once per ``parametrize`` case (one mark at most).

    Hypothesis tests take no arguments here: their strategies fill them.
    """
    marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
    if not marks:
        test()
        return
    (mark,) = marks
    names = (
        [n.strip() for n in mark.args[0].split(",")]
        if isinstance(mark.args[0], str)
        else list(mark.args[0])
    )
    for values in mark.args[1]:
        values = values if len(names) > 1 else (values,)
        test(**dict(zip(names, values, strict=True)))


V = "ledger.validator"
M = "msp.msp"
E = "chaincode.endorser"
F = "sim.fabric.verify"
ENVELOPES = "test_hostile_envelopes"
IDENTITIES = "test_hostile_identities"
ENDORSER = "test_hostile_endorser"
QUORUM = "test_ledger_verify_quorum"

MUTANTS = (
    # ------------------------------------------------------------- validator
    SourceMutant(
        "endorsement-signature-unchecked",
        f"{V}:check_endorsed",
        "if identity is not None and identity.verify(signed, endorsement.signature):",
        "if identity is not None:",
        f"{ENVELOPES}::test_replayed_endorsements_fail_the_policy",
    ),
    SourceMutant(
        "result-not-bound-to-proposal",
        f"{V}:check_endorsed",
        "result.proposal_hash != proposal_hash(header) or ",
        "",
        f"{ENVELOPES}::test_replayed_result_is_not_this_transactions",
    ),
    SourceMutant(
        "endorser-membership-unchecked",
        f"{V}:check_endorsed",
        "identity = _valid_member(config, who.mspid, who.cert_pem, now_ms)",
        "identity = config.msps.identity(who.mspid, who.cert_pem)",
        f"{ENVELOPES}::test_hostile_endorser_is_not_counted",
    ),
    SourceMutant(
        "any-bad-endorsement-fails",
        f"{V}:check_endorsed",
        "            endorsers.add(identity)\n",
        "            endorsers.add(identity)\n        else:\n"
        "            return V.ENDORSEMENT_POLICY_FAILURE\n",
        f"{ENVELOPES}::test_honest_variants_stay_valid",
    ),
    SourceMutant(
        "creator-membership-unchecked",
        f"{V}:check_creator",
        "creator = _valid_member(config, header.creator.mspid, header.creator.cert_pem, now_ms)",
        "creator = config.msps.identity(header.creator.mspid, header.creator.cert_pem)",
        f"{ENVELOPES}::test_hostile_creator_and_forged_creator_signature",
    ),
    SourceMutant(
        "creator-signature-unchecked",
        f"{V}:check_creator",
        "if creator is None or not creator.verify(envelope.payload, envelope.signature):",
        "if creator is None:",
        f"{ENVELOPES}::test_hostile_creator_and_forged_creator_signature",
    ),
    SourceMutant(
        "duplicate-check-ignores-block",
        f"{V}:validate_block",
        "if tx_id in updates.tx_ids or tx_id in committed:",
        "if tx_id in committed:",
        f"{ENVELOPES}::test_two_copies_in_one_block",
    ),
    SourceMutant(
        "index-every-tx-id",
        f"{V}:_record",
        "if parsed is None or code not in TX_ID_ESTABLISHED:",
        "if parsed is None:",
        f"{ENVELOPES}::test_each_code_is_indexed_or_not_on_its_own",
    ),
    SourceMutant(
        "index-only-valid",
        f"{V}:_record",
        "if parsed is None or code not in TX_ID_ESTABLISHED:",
        "if parsed is None or code != V.VALID:",
        f"{ENVELOPES}::test_each_code_is_indexed_or_not_on_its_own",
    ),
    SourceMutant(
        "phantom-check-assumes-deleted-key-exists",
        f"{V}:_BlockView.phantom",
        "found.pop(key, None)",
        "found.pop(key)",
        "test_validation_phantoms::test_range_read_after_an_earlier_write_in_the_block",
    ),
    # ------------------------------------------------------------- policy
    SourceMutant(
        "principal-ignores-mspid",
        "msp.policy:Principal.matches",
        "member.mspid == self.mspid and ",
        "",
        f"{ENVELOPES}::test_wrong_org_and_duplicated_endorsements_fail_the_policy",
    ),
    # ------------------------------------------------------------- MSP
    SourceMutant(
        "crl-checked-for-end-certificate-only",
        f"{M}:MSP._walk",
        "if current.serial_number in self._revoked",
        "if current is cert and current.serial_number in self._revoked",
        f"{IDENTITIES}::test_members_under_a_revoked_intermediate_are_refused",
    ),
    SourceMutant(
        "issuer-expiry-ignored",
        f"{M}:MSP._walk",
        "not_after = min(not_after, issuer.not_valid_after_utc)",
        "not_after = not_after",
        f"{IDENTITIES}::test_members_of_an_expired_or_future_issuer_are_refused",
    ),
    SourceMutant(
        "issuer-start-ignored",
        f"{M}:MSP._walk",
        "not_before = max(not_before, issuer.not_valid_before_utc)",
        "not_before = not_before",
        f"{IDENTITIES}::test_members_of_an_expired_or_future_issuer_are_refused",
    ),
    SourceMutant(
        "not-after-unchecked",
        f"{M}:MSP.validate",
        "if when > chain.not_after:",
        "if False:",
        f"{IDENTITIES}::test_members_of_an_expired_or_future_issuer_are_refused",
    ),
    SourceMutant(
        "first-of-several-roles",
        "msp.identity:role_from_certificate",
        "if len(known) == 1 else",
        "if known else",
        f"{IDENTITIES}::test_several_roles_or_none_is_no_role",
    ),
    SourceMutant(
        "issuer-matched-by-name",
        f"{M}:MSP._issuer_of",
        "ca is not cert and issued_by(cert, ca)",
        "ca is not cert",
        f"{IDENTITIES}::test_names_colliding_with_a_trusted_ca_are_refused",
    ),
    SourceMutant(
        "ca-certificate-accepted",
        f"{M}:MSP._walk",
        "if is_ca(cert):",
        "if False:",
        f"{IDENTITIES}::test_names_colliding_with_a_trusted_ca_are_refused",
    ),
    # ------------------------------------------------------------- endorser
    SourceMutant(
        "endorser-creator-unchecked",
        f"{E}:Endorser.process",
        "if not verdict.ok:",
        "if False:",
        f"{IDENTITIES}::test_every_hostile_identity_is_refused_with_its_reason",
    ),
    SourceMutant(
        "endorser-signature-unchecked",
        f"{E}:Endorser.process",
        "if not creator.verify(signed.proposal, signed.signature):",
        "if False:",
        f"{ENDORSER}::test_proposal_signed_by_another_member_is_refused",
    ),
    SourceMutant(
        "endorser-duplicate-unchecked",
        f"{E}:Endorser.process",
        "if self.ledger.tx_location(header.tx_id) is not None:",
        "if False:",
        f"{ENDORSER}::test_committed_tx_id_is_a_conflict_only_if_established",
    ),
    # ------------------------------------------------------------- ledger verify
    SourceMutant(
        "verify-quorum-off-by-one",
        f"{F}:certificate_problem",
        "if len(signers) < quorum:",
        "if len(signers) < quorum - 1:",
        f"{QUORUM}::test_exactly_a_quorum_is_accepted_and_one_short_refused",
    ),
    SourceMutant(
        "verify-quorum-2f",
        f"{F}:certificate_problem",
        "quorum = quorum_size(n)",
        "quorum = 2 * ((n - 1) // 3) + 1",
        f"{QUORUM}::test_exactly_a_quorum_is_accepted_and_one_short_refused",
    ),
    SourceMutant(
        "verify-counts-commits",
        f"{F}:certificate_problem",
        "signers.add(commit.replica)",
        "signers.add(len(signers))",
        f"{QUORUM}::test_duplicate_signers_count_once",
    ),
    SourceMutant(
        "verify-signature-unchecked",
        f"{F}:certificate_problem",
        "if identity is not None and identity.verify(signing_bytes(commit), commit.signature):",
        "if identity is not None:",
        f"{QUORUM}::test_signatures_that_do_not_count",
    ),
    SourceMutant(
        "verify-replica-range-unchecked",
        f"{F}:certificate_problem",
        "trust.replica(commit.replica) if commit.replica < n else None",
        "trust.replica(commit.replica)",
        f"{QUORUM}::test_signatures_that_do_not_count",
    ),
    SourceMutant(
        "verify-result-binding-unchecked",
        f"{F}:transaction_problem",
        "if result.proposal_hash != proposal_hash(header) or result.rwset.namespace != "
        "header.chaincode:",
        "if False:",
        "test_hostile_verify::test_each_kind_alone_forged_to_valid",
    ),
    # ------------------------------------------------------------- patch-set contract
    SourceMutant(
        "self-approval-allowed",
        "chaincode.patchset.contract:PatchSetContract.approve",
        'if (deployer["mspid"], deployer["name"]) == (me["mspid"], me["name"]):',
        "if False:",
        "test_patchset_self_approval::test_deployer_refused_in_every_order_of_approvals",
    ),
    SourceMutant(
        "self-approval-judged-by-certificate",
        "chaincode.patchset.contract:PatchSetContract.approve",
        'if (deployer["mspid"], deployer["name"]) == (me["mspid"], me["name"]):',
        'if record["deployer_cert"] == creator.cert_pem.decode("ascii", "replace"):',
        "test_patchset_self_approval::test_deployer_refused_in_every_order_of_approvals",
    ),
)
