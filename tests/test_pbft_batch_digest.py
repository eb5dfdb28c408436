"""The batch digest memo answers by identity and never for another batch."""

from __future__ import annotations

import hashlib

from ledger.codec import encode
from pbft.messages import Request, batch_digest


def _batch(k: int) -> tuple[Request, ...]:
    return tuple(Request(1000 + i, k, b"op%d" % i, b"sig") for i in range(3))


def _by_definition(requests: tuple[Request, ...]) -> bytes:
    return hashlib.sha256(b"".join(encode(r) for r in requests)).digest()


def test_digest_is_the_data_hash_for_every_batch_even_when_ids_recur() -> None:
    addresses: set[int] = set()
    for k in range(3000):  # more batches than the memo holds, each dropped at once
        batch = _batch(k)
        addresses.add(id(batch))
        assert batch_digest(batch) == _by_definition(batch)
        assert batch_digest(batch) == _by_definition(batch)
        del batch
    assert len(addresses) < 3000  # freed tuples' ids were handed out again


def test_equal_batches_that_are_other_objects_agree() -> None:
    first, twin = _batch(7), _batch(7)
    assert first is not twin
    assert batch_digest(first) == batch_digest(twin) == _by_definition(first)
    assert batch_digest(list(first)) == batch_digest(first)  # type: ignore[arg-type]
