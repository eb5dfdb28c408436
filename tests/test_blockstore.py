"""The block store: order, reopening, and what a crash or tampering leaves behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.block import GENESIS, Block, BlockMetadata, make_block
from ledger.blockstore import (
    DATA_FILE,
    INDEX_FILE,
    BlockStore,
    BlockStoreCorrupt,
    MemoryFile,
)


def chain(count: int) -> list[Block]:
    blocks = [GENESIS]
    for number in range(1, count):
        data = tuple(f"tx-{number}-{i}".encode() * (number + 1) for i in range(number % 3 + 1))
        meta = BlockMetadata((b"commit",), tuple(0 for _ in data), 10 * number, 0, number)
        blocks.append(make_block(number, blocks[-1].hash, data, meta))
    return blocks


def filled(count: int) -> tuple[MemoryFile, MemoryFile, list[Block]]:
    data, index = MemoryFile(), MemoryFile()
    store = BlockStore(data, index)
    blocks = chain(count)
    for block in blocks:
        store.append(block)
    return data, index, blocks


def test_blocks_read_back_in_order_after_reopen(tmp_path: Path) -> None:
    blocks = chain(6)
    store = BlockStore.open(tmp_path)
    for block in blocks:
        store.append(block)
    store.close()
    again = BlockStore.open(tmp_path)
    assert again.height == 6
    assert list(again.blocks()) == blocks
    assert again.last == blocks[-1]
    assert again.recovery.dropped_bytes == 0


def test_append_refuses_gaps_and_broken_links() -> None:
    store = BlockStore.memory()
    blocks = chain(3)
    store.append(blocks[0])
    with pytest.raises(ValueError, match="expected block 1"):
        store.append(blocks[2])
    unlinked = make_block(1, bytes(32), (), BlockMetadata((), (), 0, 0, 1))
    with pytest.raises(ValueError, match="does not chain"):
        store.append(unlinked)


def test_every_cut_inside_the_last_write_reopens_with_the_full_blocks() -> None:
    data, index, blocks = filled(5)
    full_data, full_index = bytes(data.content), bytes(index.content)
    probe = BlockStore(MemoryFile(full_data), MemoryFile())
    four = probe._frames[4][0]  # where the last frame starts
    for cut in range(four, len(full_data)):
        torn_data = MemoryFile(full_data[:cut])
        # The index entry is written after the frame, so it is missing whenever the frame is torn.
        torn_index = MemoryFile(full_index[: 4 * 16])
        store = BlockStore(torn_data, torn_index)
        assert store.height == 4, cut
        assert store.recovery.dropped_bytes == cut - four
        assert bytes(torn_data.content) == full_data[:four]
        store.append(blocks[4])
        assert bytes(torn_data.content) == full_data
        assert bytes(torn_index.content) == full_index


def test_torn_index_entry_is_rebuilt() -> None:
    data, index, blocks = filled(4)
    index.truncate(len(index.content) - 5)
    store = BlockStore(data, index)
    assert store.height == 4
    assert len(index.content) == 4 * 16
    assert list(store.blocks()) == blocks


def test_garbage_tail_is_dropped(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path)
    blocks = chain(4)
    for block in blocks:
        store.append(block)
    store.close()
    size = (tmp_path / DATA_FILE).stat().st_size
    with open(tmp_path / DATA_FILE, "ab") as out:
        out.write(b"LB\x00\x00\x00\x10garbage-garbage-garbage")
    reopened = BlockStore.open(tmp_path)
    assert reopened.height == 4
    assert "torn tail" in reopened.recovery.reason
    assert (tmp_path / DATA_FILE).stat().st_size == size


def test_readonly_open_leaves_a_torn_file_alone(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path)
    for block in chain(3):
        store.append(block)
    store.close()
    with open(tmp_path / DATA_FILE, "ab") as out:
        out.write(b"xyz")
    before = (tmp_path / DATA_FILE).read_bytes()
    reader = BlockStore.open(tmp_path, readonly=True)
    assert reader.height == 3
    assert (tmp_path / DATA_FILE).read_bytes() == before
    with pytest.raises(PermissionError):
        reader.append(chain(4)[3])


@pytest.mark.parametrize("victim", [1, 2, 4])
def test_flipped_byte_in_an_indexed_block_is_corruption_naming_it(victim: int) -> None:
    data, index, _ = filled(5)
    probe = BlockStore(MemoryFile(bytes(data.content)), MemoryFile(bytes(index.content)))
    offset, length = probe._frames[victim]
    data.content[offset + length - 3] ^= 0x01
    with pytest.raises(BlockStoreCorrupt) as caught:
        BlockStore(data, index)
    assert caught.value.number == victim


def test_index_file_survives_as_written(tmp_path: Path) -> None:
    store = BlockStore.open(tmp_path, sync=False)
    for block in chain(3):
        store.append(block)
    store.close()
    assert (tmp_path / INDEX_FILE).stat().st_size == 3 * 16
