"""The header hash keeps its documented formula with one shared packer."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from ledger.hashing import GENESIS_HASH, ZERO_HASH, data_hash, header_hash


def _formula(number: int, previous: bytes, data: bytes) -> bytes:
    return hashlib.sha256(msgpack.packb([number, previous, data], use_bin_type=True)).digest()


@pytest.mark.parametrize("number", [0, 1, 127, 128, 2**16, 2**40])
def test_header_hash_is_the_documented_formula(number: int) -> None:
    previous, data = bytes(range(32)), data_hash([b"a", b"b"])
    assert header_hash(number, previous, data) == _formula(number, previous, data)


def test_a_failed_header_leaves_nothing_behind_for_the_next() -> None:
    with pytest.raises(TypeError):
        header_hash(1, ZERO_HASH, object())  # type: ignore[arg-type]
    assert header_hash(0, ZERO_HASH, data_hash(())) == GENESIS_HASH
    assert _formula(0, ZERO_HASH, hashlib.sha256().digest()) == GENESIS_HASH
