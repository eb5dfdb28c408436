"""The fixed hash formulas of docs/design.md ("Fixed formats"), in one place.

External tools recompute these from ``ledger dump --json``, and the PBFT
replicas use them for batch digests and checkpoint digests, so a checkpoint
digest at sequence number ``s`` *is* the header hash of block ``s``. Like the
codec, this module imports nothing else of the project, so ``pbft`` may use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgpack

_packer = msgpack.Packer(use_bin_type=True)
"""One packer for every header (``msgpack.packb`` would build one per call), as the codec does."""

ZERO_HASH = bytes(32)
"""``previous_hash`` of block 0."""


def data_hash(envelopes: Iterable[bytes]) -> bytes:
    """SHA-256 of the concatenated canonical envelope bytes (Fabric's flat data hash)."""
    h = hashlib.sha256()
    for envelope in envelopes:
        h.update(envelope)
    return h.digest()


def header_hash(number: int, previous_hash: bytes, data_hash_: bytes) -> bytes:
    """SHA-256 of ``msgpack.packb([number, previous_hash, data_hash])``."""
    # Every replica of a simulated group chains the same headers: each is hashed once.
    if type(number) is int and type(previous_hash) is bytes and type(data_hash_) is bytes:
        key = (number, previous_hash, data_hash_)
        known = _recent_headers.get(key)
        if known is None:
            if len(_recent_headers) >= HEADERS_KEPT:
                _recent_headers.clear()
            known = _recent_headers[key] = _header_hash(number, previous_hash, data_hash_)
        return known
    return _header_hash(number, previous_hash, data_hash_)


def _header_hash(number: int, previous_hash: bytes, data_hash_: bytes) -> bytes:
    return hashlib.sha256(_packer.pack([number, previous_hash, data_hash_])).digest()


HEADERS_KEPT = 256
"""Header hashes remembered: enough for every replica to reach the same block."""
_recent_headers: dict[tuple[int, bytes, bytes], bytes] = {}


GENESIS_HASH = header_hash(0, ZERO_HASH, data_hash(()))
"""Header hash of block 0, the empty genesis block every ledger starts from."""
