"""Hostile envelopes get exactly the validation code a correct peer must give, and no other
transaction in their block changes code because of them.

The generators are in ``sim.explore.hostile``. Each property below names, in its
docstring, the mutant of the validator it defeats: the check that, removed or
weakened, makes that property fail. Those mutants are in ``tests/fabric_mutants.py``
and ``tests/test_fabric_mutants.py`` shows each one failing the property named here.
The properties take no fixtures so that the mutant tests can call them directly.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from ledger.block import ValidationCode
from ledger.peer import CommitResult, PeerLedger, TxStatus
from sim.explore.hostile import (
    BUILDERS,
    ENVELOPE_KINDS,
    ESTABLISHING,
    HostileBlock,
    HostileChannel,
    HostileTx,
    block_of,
    hostile_blocks,
    hostile_txs,
    resubmitted,
)
from sim.explore.hostile_identities import NOW_MS, identity_pool

V = ValidationCode
FAST = settings(max_examples=25, deadline=None)


def as_is(item: bytes) -> bytes:
    """Data items are the envelopes themselves here (no PBFT request around them)."""
    return item


def fresh_ledger() -> PeerLedger:
    """A new peer on the hostile channel: fresh MSP caches, policy memo and state."""
    return PeerLedger(HostileChannel(identity_pool()).config(), as_is)


def commit(ledger: PeerLedger, items: tuple[bytes, ...]) -> CommitResult:
    return ledger.commit(ledger.height, items, timestamp_ms=NOW_MS)


def names(codes: tuple[ValidationCode, ...]) -> list[str]:
    return [c.name for c in codes]


def check_alone(tx: HostileTx) -> None:
    ledger = fresh_ledger()
    result = commit(ledger, (tx.item,))
    assert names(result.codes) == [tx.expected.name], tx.kind
    for key in tx.writes:
        found = ledger.get_state("kv", key)
        assert found is not None and found.version.block == 1
    if not tx.writes:
        assert not list(ledger.get_versioned_range("kv", "", ""))


def check_kinds(kinds: tuple[str, ...]) -> None:
    """Every drawn transaction of ``kinds``, alone in a block, gets its code."""

    @FAST
    @given(tx=hostile_txs(kinds))
    def run(tx: HostileTx) -> None:
        check_alone(tx)

    run()


@settings(max_examples=60, deadline=None)
@given(tx=hostile_txs())
def test_every_hostile_kind_alone_gets_its_code(tx: HostileTx) -> None:
    """The whole catalogue, one transaction per block."""
    check_alone(tx)


def test_replayed_endorsements_fail_the_policy() -> None:
    """Endorsements replayed from another transaction (all, or only one org's) sign another
    proposal response, so they are not this transaction's: ENDORSEMENT_POLICY_FAILURE.

    Defeats mutant ``endorsement-signature-unchecked`` (the validator counts an endorser
    whose signature does not cover this result).
    """
    check_kinds(("replayed-endorsements", "one-replayed-endorsement", "truncated-signature"))


def test_replayed_result_is_not_this_transactions() -> None:
    """A result (with its endorsements) that answers another proposal, or another
    chaincode's namespace: INVALID_ENDORSER_TRANSACTION, whoever signed it.

    Defeats mutant ``result-not-bound-to-proposal`` (the proposal-hash comparison dropped).
    """
    check_kinds(("replayed-result", "foreign-namespace"))


def test_hostile_endorser_is_not_counted() -> None:
    """The endorsement its org must give comes from a revoked, expired, role-less,
    impostor-issued or mislabelled identity of that org: ENDORSEMENT_POLICY_FAILURE.

    Defeats mutant ``endorser-membership-unchecked`` (any parsable certificate counts).
    """
    check_kinds(("hostile-endorser",))


def test_wrong_org_and_duplicated_endorsements_fail_the_policy() -> None:
    """Two endorsements from Org1 (two peers, one peer twice, or an Org1 peer relabelled
    as Org2) or Org2's missing: ENDORSEMENT_POLICY_FAILURE.

    Defeats mutant ``principal-ignores-mspid`` (a principal matched by role alone, so
    two Org1 peers satisfy 'Org1.member' and 'Org2.member').
    """
    check_kinds(
        (
            "same-org-endorsers",
            "duplicated-endorsement",
            "relabelled-endorser",
            "truncated-endorsements",
        )
    )


def test_hostile_creator_and_forged_creator_signature() -> None:
    """A creator that is not a valid member, or an envelope signed by someone else:
    BAD_CREATOR_SIGNATURE, though the endorsements are honest.

    Defeats mutants ``creator-membership-unchecked`` and ``creator-signature-unchecked``.
    """
    check_kinds(("hostile-creator", "creator-signature-by-another"))


def test_honest_variants_stay_valid() -> None:
    """Reordered endorsements, or an extra hostile one beside enough honest ones: VALID.

    Invalid endorsements are skipped, not fatal (as in Fabric), and their order is not
    part of the policy. Defeats mutant ``any-bad-endorsement-fails`` (one unusable
    endorsement fails the transaction: a client's transaction would fail because one of
    several endorsers had just been revoked, though the policy is met without it).
    """
    check_kinds(("honest", "reordered-endorsements", "extra-hostile-endorsement"))


def check_block(block: HostileBlock) -> PeerLedger:
    """Codes as expected in order; exactly the valid transactions' keys were written."""
    ledger = fresh_ledger()
    result = commit(ledger, block.items)
    assert names(result.codes) == names(block.expected), [tx.kind for tx in block.txs]
    written = {key for key, _ in ledger.get_versioned_range("kv", "", "")}
    assert written == {key for tx in block.txs for key in tx.writes}
    return ledger


@settings(max_examples=40, deadline=None)
@given(block=hostile_blocks())
def test_hostile_blocks_change_no_other_transactions_code(block: HostileBlock) -> None:
    """Mixed blocks with repeated envelopes: each transaction gets the code it gets alone,
    except a later copy of an established tx id, which is DUPLICATE_TXID."""
    check_block(block)


def check_index(block: HostileBlock) -> None:
    """tx_status after the block, then what resubmitting every item gets."""
    ledger = check_block(block)
    first: dict[str, ValidationCode] = {}
    for tx in block.txs:
        if tx.tx_id and tx.expected in ESTABLISHING:
            first.setdefault(tx.tx_id, tx.expected)
    for tx in block.txs:
        if not tx.tx_id:
            continue
        expected = first.get(tx.tx_id)
        status = ledger.tx_status(tx.tx_id)
        assert status == (None if expected is None else TxStatus(tx.tx_id, int(expected))), tx.kind
    again = resubmitted(block)
    result = commit(ledger, again.items)
    assert names(result.codes) == names(again.expected)
    for tx_id, code in first.items():  # the index still points at the first verdict
        assert ledger.tx_status(tx_id) == TxStatus(tx_id, int(code))


@settings(max_examples=40, deadline=None)
@given(block=hostile_blocks())
def test_tx_index_and_resubmission_for_every_code(block: HostileBlock) -> None:
    """A tx id is indexed, with its code, exactly when the creator was proven (any code
    from INVALID_CHAINCODEID on, VALID included); resubmitting such an envelope gets
    DUPLICATE_TXID, while one that failed earlier checks fails the same way again.

    Defeats mutants ``index-every-tx-id`` (a forged-creator envelope would squat on the
    tx id) and ``index-only-valid`` (an MVCC-failed envelope could be replayed).
    """
    check_index(block)


@pytest.mark.parametrize("kind", ENVELOPE_KINDS)
def test_two_copies_in_one_block(kind: str) -> None:
    """The same envelope twice in a block: the copy is DUPLICATE_TXID exactly when the
    first one established its tx id, and otherwise fails as the first did.

    Defeats mutant ``duplicate-check-ignores-block`` (only the ledger's index is
    consulted, so both copies of a valid envelope commit and its writes apply twice).
    """
    pool = identity_pool()
    tx = BUILDERS[kind](HostileChannel(pool), "twice", pool.hostile["revoked"])
    check_block(block_of([tx, tx]))


@pytest.mark.parametrize("kind", ENVELOPE_KINDS)
def test_each_code_is_indexed_or_not_on_its_own(kind: str) -> None:
    """The index rule one code at a time: the same envelope committed in two blocks.

    Defeats mutants ``index-every-tx-id`` and ``index-only-valid`` deterministically.
    """
    pool = identity_pool()
    tx = BUILDERS[kind](HostileChannel(pool), "solo", pool.hostile["revoked"])
    check_index(HostileBlock((tx,)))
