"""``ledger verify`` accepts a block's commit certificate at exactly the PBFT quorum.

The quorum is stated here from the paper's rule, Q = ceil((n + f + 1) / 2) with
f = floor((n - 1) / 3), not taken from ``pbft.api``, so a verifier and a replica
that drifted together would still be caught. At n = 4, 5 and 7 (Q = 3, 4, 5): one
valid signature short is refused, exactly Q is accepted, and signatures that do
not come from Q distinct replicas of this network (a replica signing twice, a
bad signature, a replica number outside 0..n-1, a peer of another network) do
not count towards it.
"""

from __future__ import annotations

import functools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.block import GENESIS, Block, BlockMetadata, make_block
from ledger.codec import encode
from ledger.hashing import data_hash
from msp.ca import NetworkCrypto, generate_network
from msp.identity import SigningIdentity
from pbft.messages import Commit, signing_bytes, with_signature
from sim.fabric.verify import Report, Trust, verify_blocks

TIMESTAMP_MS = 5_000


def quorum(n: int) -> int:
    f = (n - 1) // 3
    return math.ceil((n + f + 1) / 2)


@functools.cache
def crypto(seed: bytes = b"verify-quorum") -> NetworkCrypto:
    """Two orgs with five peers each: replicas 0..9 all have a certificate."""
    return generate_network(2, 5, 0, seed=seed)


def trust() -> Trust:
    net = crypto()
    peers = {m.name: m.public() for m in net.members() if m.role == "peer"}
    return Trust(net.msps(), peers, len(net.orgs))


def commit(replica: int, signer: SigningIdentity | None = None, *, seq: int = 1) -> bytes:
    """Replica ``replica``'s COMMIT for block 1, signed by its own peer unless ``signer``."""
    net = crypto()
    digest = data_hash(())
    unsigned = Commit(0, seq, digest, TIMESTAMP_MS, replica, b"")
    key = signer or net.replica_signer(replica)
    return encode(with_signature(unsigned, key.sign(signing_bytes(unsigned))))


def block(certificate: list[bytes]) -> Block:
    meta = BlockMetadata(tuple(certificate), (), TIMESTAMP_MS, 0, 1)
    return make_block(1, GENESIS.hash, (), meta)


def verify(n: int, certificate: list[bytes]) -> Report:
    return verify_blocks([GENESIS, block(certificate)], trust(), n, lambda item: item)


def refusal(report: Report, counted: int, n: int) -> str:
    assert report.problem is not None and report.blocks == 1
    expected = (
        f"commit certificate has valid signatures from {counted} distinct replica(s),"
        f" need a quorum of {quorum(n)}"
    )
    assert str(report.problem).startswith(f"block 1: {expected}")
    return str(report.problem)


SIZES = [(4, 3), (5, 4), (7, 5)]


def test_quorum_rule_matches_the_stated_values() -> None:
    assert [(n, quorum(n)) for n, _ in SIZES] == SIZES


@pytest.mark.parametrize(("n", "q"), SIZES)
def test_exactly_a_quorum_is_accepted_and_one_short_refused(n: int, q: int) -> None:
    """Defeats mutants ``verify-quorum-off-by-one`` (``<=``) and ``verify-quorum-2f`` (2f+1,
    which is 3 instead of 4 at n = 5)."""
    ok = verify(n, [commit(r) for r in range(q)])
    assert ok.problem is None and ok.blocks == 2
    refusal(verify(n, [commit(r) for r in range(q - 1)]), q - 1, n)
    assert verify(n, [commit(r) for r in range(n)]).problem is None


@pytest.mark.parametrize(("n", "q"), SIZES)
def test_duplicate_signers_count_once(n: int, q: int) -> None:
    """Q - 1 replicas, some of their COMMITs repeated (signing is deterministic, so a
    replica's second COMMIT for a block is the same bytes).

    Defeats mutant ``verify-counts-commits`` (signatures counted, not replicas).
    """
    short = [commit(r) for r in range(q - 1)]
    refusal(verify(n, [*short, short[0]]), q - 1, n)
    refusal(verify(n, [short[-1], *short, short[0], short[-1]]), q - 1, n)


@pytest.mark.parametrize(("n", "q"), SIZES)
def test_signatures_that_do_not_count(n: int, q: int) -> None:
    """Q - 1 good COMMITs plus one that must not make up the quorum: signed by another
    replica's key, by a peer of another network with the same names, garbled, or from a
    replica number n (whose peer exists in this network, but is not one of the n).

    Defeats mutants ``verify-signature-unchecked`` and ``verify-replica-range-unchecked``.
    """
    short = [commit(r) for r in range(q - 1)]
    last = q - 1
    stranger = generate_network(2, 5, 0, seed=b"someone else").replica_signer(last)
    garbled = bytearray(commit(last))
    garbled[-3] ^= 1
    for extra in (
        commit(last, crypto().replica_signer(0)),
        commit(last, stranger),
        bytes(garbled),
        commit(n),
    ):
        refusal(verify(n, [*short, extra]), q - 1, n)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_certificate_verifies_iff_a_quorum_of_distinct_replicas_signed(
    data: st.DataObject,
) -> None:
    """Random multisets of COMMITs (duplicates, out-of-range replicas) over n in {4, 5, 7}."""
    n = data.draw(st.sampled_from([4, 5, 7]))
    replicas = data.draw(st.lists(st.integers(0, 9), max_size=12))
    report = verify(n, [commit(r) for r in replicas])
    distinct = len({r for r in replicas if r < n})
    if distinct >= quorum(n):
        assert report.problem is None
    else:
        refusal(report, distinct, n)
