"""``ledger verify`` catches a peer that stored VALID for hostile transactions.

Validation codes sit outside the hash chain, so a lying peer can store VALID for
anything. Replaying validation (the channel configuration known) must name the
first transaction whose code is not VALID, with the code it really gets. Without
the configuration the verifier can still check signatures and bindings: it must
name the first transaction whose creator, endorsements or result binding are bad.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from ledger.block import GENESIS, Block, BlockMetadata, ValidationCode, make_block
from sim.explore.hostile import (
    BUILDERS,
    ENVELOPE_KINDS,
    HostileBlock,
    HostileChannel,
    hostile_blocks,
)
from sim.explore.hostile_identities import NOW_MS, identity_pool
from sim.fabric.verify import Report, Trust, verify_blocks

V = ValidationCode

SIGNATURE_PROBLEMS = {
    "hostile-creator": "bad creator signature or identity",
    "creator-signature-by-another": "bad creator signature or identity",
    "truncated-envelope": "is marked VALID but does not decode",
    "empty-tx-id": "is marked VALID but does not decode",
    "empty-channel": "is marked VALID but does not decode",
    "empty-chaincode": "is marked VALID but does not decode",
    "payload-of-another-type": "is marked VALID but does not decode",
    "replayed-endorsements": "bad endorsement by Org1",
    "one-replayed-endorsement": "bad endorsement by Org2",
    "truncated-signature": "bad endorsement by Org2",
    "hostile-endorser": "bad endorsement by ",
    "relabelled-endorser": "bad endorsement by Org2",
    "extra-hostile-endorsement": "bad endorsement by ",
    "replayed-result": "endorsed result is for another proposal",
    "foreign-namespace": "endorsed result is for another proposal",
}
"""Kinds the verifier refuses without the channel configuration, and what it says.

An extra bad endorsement beside enough good ones is refused too: without the
policy the verifier cannot tell whether it was needed, so it does not guess.
"""


def all_valid(block: HostileBlock) -> list[Block]:
    """The chain a lying peer would keep: the hostile block with every code VALID."""
    meta = BlockMetadata((), (V.VALID,) * len(block.txs), NOW_MS, 0, 1)
    return [GENESIS, make_block(1, GENESIS.hash, block.items, meta)]


def verify(block: HostileBlock, *, replay: bool) -> Report:
    channel = HostileChannel(identity_pool())
    trust = Trust(identity_pool().manager(), {}, 2)
    config = channel.config() if replay else None
    return verify_blocks(all_valid(block), trust, 4, lambda item: item, False, config=config)


def check_replay(block: HostileBlock) -> None:
    report = verify(block, replay=True)
    wrong = [i for i, tx in enumerate(block.txs) if tx.expected is not V.VALID]
    if not wrong:
        assert report.problem is None and report.blocks == 2
        return
    first = wrong[0]
    tx = block.txs[first]
    assert report.problem is not None and report.problem.block == 1
    where = f" tx {first}" + (f" (tx_id {tx.tx_id})" if tx.tx_id else "")
    assert report.problem.where == where
    assert report.problem.reason == f"stored VALID, recomputed {tx.expected.name}"


def check_signatures(block: HostileBlock) -> None:
    report = verify(block, replay=False)
    caught = [i for i, tx in enumerate(block.txs) if tx.kind in SIGNATURE_PROBLEMS]
    if not caught:
        assert report.problem is None
        return
    first = caught[0]
    assert report.problem is not None
    assert str(report.problem).startswith(f"block 1: transaction {first} ")
    assert SIGNATURE_PROBLEMS[block.txs[first].kind] in report.problem.reason


@settings(max_examples=40, deadline=None)
@given(block=hostile_blocks())
def test_replay_names_the_first_forged_valid_code(block: HostileBlock) -> None:
    """Every generator kind, forged to VALID, is caught by replaying validation."""
    check_replay(block)


@settings(max_examples=40, deadline=None)
@given(block=hostile_blocks())
def test_signature_walk_names_the_first_badly_signed_transaction(block: HostileBlock) -> None:
    """Without the configuration: bad creators, replayed or bad endorsements, and results
    bound to another proposal are named, and nothing else."""
    check_signatures(block)


@pytest.mark.parametrize("kind", ENVELOPE_KINDS)
def test_each_kind_alone_forged_to_valid(kind: str) -> None:
    """One transaction of each kind, stored VALID: both walks say what they must.

    Defeats mutant ``verify-result-binding-unchecked``: a result replayed together with
    its endorsements from another proposal (or naming another chaincode's namespace)
    passed the walk without the configuration until the check was added.
    """
    pool = identity_pool()
    tx = BUILDERS[kind](HostileChannel(pool), "solo", pool.hostile["revoked"])
    check_replay(HostileBlock((tx,)))
    check_signatures(HostileBlock((tx,)))
