"""``ledger verify``'s structural checks and its report, message by message.

Each broken link of the chain is reported with its exact message (operators grep
for them, and a message that lost its words is a bug too); a COMMIT for another
block says which of its fields differ; a certificate entry that decodes as some
other record is undecodable, not a crash; the report of a failed walk names the
last good block. The walk without validation replay is covered by
tests/test_hostile_verify.py, the quorum by tests/test_ledger_verify_quorum.py.
"""

from __future__ import annotations

from dataclasses import replace

from test_ledger_verify_quorum import TIMESTAMP_MS, block, commit, trust, verify

from ledger.block import GENESIS, Block, BlockMetadata, make_block
from ledger.codec import decode, encode
from ledger.peer import PeerLedger
from pbft.messages import Commit, Request
from sim.explore.hostile import HostileChannel
from sim.explore.hostile_identities import NOW_MS, identity_pool
from sim.fabric.app import unwrap_request
from sim.fabric.verify import Trust, block_problem, verify_blocks

N = 4


def good_block() -> Block:
    return block([commit(r) for r in range(N)])


def walk(*blocks: Block) -> str:
    report = verify_blocks(list(blocks), trust(), N, lambda item: item)
    assert report.problem is not None
    return str(report.problem)


def test_a_good_chain_reports_its_head() -> None:
    report = verify(N, [commit(r) for r in range(N)])
    assert report.problem is None and report.blocks == 2 and report.head == good_block()


def test_chain_links_are_checked_with_exact_messages() -> None:
    good = good_block()
    not_genesis = make_block(0, b"\x01" * 32, (), BlockMetadata((), (), 0, 0, 0))
    assert walk(not_genesis) == "block 0: block 0 is not the empty genesis block"
    relinked = make_block(1, b"\x02" * 32, (), good.metadata)
    assert walk(GENESIS, relinked) == (
        "block 1: previous_hash does not match the header hash of the block before"
    )
    other_data = replace(good, data=(b"x",), metadata=replace(good.metadata, validation_codes=(0,)))
    assert walk(GENESIS, other_data) == "block 1: data_hash does not match the block's data"
    skipped = make_block(2, GENESIS.hash, (), replace(good.metadata, seq=2))
    assert walk(GENESIS, skipped) == "block 2: follows block 0"
    reseq = replace(good, metadata=replace(good.metadata, seq=7))
    assert walk(GENESIS, reseq) == "block 1: metadata says sequence number 7"


def test_failed_walk_reports_the_last_good_block_and_replay_flag() -> None:
    good = good_block()
    relinked = make_block(2, b"\x02" * 32, (), replace(good.metadata, seq=2))
    report = verify_blocks([GENESIS, good, relinked], trust(), N, lambda item: item)
    assert (report.blocks, report.head, report.codes_replayed) == (2, good, False)
    config = HostileChannel(identity_pool()).config()
    replayed = verify_blocks(
        [GENESIS, good, relinked], trust(), N, lambda item: item, False, config=config
    )
    assert replayed.problem is not None and replayed.codes_replayed
    assert (replayed.blocks, replayed.head) == (2, good)


def test_commit_for_another_block_names_each_differing_field() -> None:
    raw = commit(0)
    original = decode(raw, Commit)
    other = replace(original, view=3, digest=b"\xab" * 32, timestamp_ms=TIMESTAMP_MS + 1)
    data_hash = good_block().header.data_hash.hex()
    message = walk(GENESIS, block([encode(other), *(commit(r) for r in range(1, N))]))
    assert message == (
        "block 1: COMMIT of replica 0 is for another block:"
        " its view is 3, the block's is 0;"
        f" its digest is {'ab' * 8}…, the block's is {data_hash[:16]}…;"
        f" its timestamp_ms is {TIMESTAMP_MS + 1}, the block's is {TIMESTAMP_MS}"
    )


def test_certificate_entry_of_another_record_type_is_undecodable() -> None:
    """A well-formed record that is not a COMMIT (here a REQUEST) is refused as undecodable."""
    stray = encode(Request(1000, 1, b"op", b""))
    message = walk(GENESIS, block([stray, *(commit(r) for r in range(N))]))
    assert message.startswith("block 1: undecodable COMMIT in certificate (")


def test_short_certificate_message_in_full() -> None:
    message = walk(GENESIS, block([commit(0)]))
    assert message == (
        "block 1: commit certificate has valid signatures from 1 distinct replica(s),"
        ' need a quorum of 3 (runs with crypto = "modelled" sign COMMITs with HMAC'
        " keys and cannot be checked against certificates)"
    )


def test_block_problem_checks_certificates_unless_told_not_to() -> None:
    short = block([commit(0)])
    assert block_problem(short, GENESIS, trust(), N, lambda item: item) is not None
    assert block_problem(short, GENESIS, trust(), N, lambda item: item, False) is None


def test_stale_request_after_a_non_request_item_is_still_stale() -> None:
    """Exactly-once is re-derived for every request of a block, also those after an item
    that is not a request at all (which the validator gives NIL_ENVELOPE)."""
    pool = identity_pool()
    channel = HostileChannel(pool)
    config = channel.config()
    first = channel.honest_tx("stale-a", "a")[2]
    again = channel.honest_tx("stale-b", "b")[2]

    def item(timestamp: int, envelope: bytes) -> bytes:
        return encode(Request(1000, timestamp, envelope, b""))

    ledger = PeerLedger(config, unwrap_request)
    ledger.commit(1, (item(5, first),), timestamp_ms=NOW_MS)
    result = ledger.commit(2, (b"\x00garbage", item(4, again)), timestamp_ms=NOW_MS, stale=[1])
    assert [c.name for c in result.codes] == ["NIL_ENVELOPE", "DUPLICATE_TXID"]
    chain = [ledger.block(i) for i in range(ledger.height)]
    report = verify_blocks(
        chain, Trust(config.msps, {}, 2), N, unwrap_request, False, config=config
    )
    assert report.problem is None and report.blocks == 3
