"""Fabric's key layout, and the range queries every stub builds on it.

Composite keys and the simple/composite split of the key space are rules of
the ledger, not of one stub: the endorsing peer's :mod:`chaincode.simulation`
and the in-memory :mod:`chaincode.testing` harness must agree on them exactly,
or a contract tested in the harness would behave differently on a peer. So
both stubs inherit them from :class:`KeyRanges` and differ only in how they
scan a range of committed keys.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from chaincode.shim import COMPOSITE_NS, ContractError

MAX_UNICODE = "\U0010ffff"
"""Fabric's maxUnicodeRuneValue: the open end of a partial composite key range."""
FIRST_SIMPLE_KEY = "\x01"
"""Where an empty simple-key range starts, so composite keys stay out (Fabric's choice)."""


def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
    """Fabric's layout: NUL, type, NUL, then each attribute followed by NUL."""
    for part in (object_type, *attributes):
        if COMPOSITE_NS in part or MAX_UNICODE in part:
            raise ContractError(f"composite key part {part!r} contains a reserved character")
    return COMPOSITE_NS + object_type + COMPOSITE_NS + "".join(a + COMPOSITE_NS for a in attributes)


def split_composite_key(key: str) -> tuple[str, list[str]]:
    if not key.startswith(COMPOSITE_NS) or not key.endswith(COMPOSITE_NS) or len(key) < 2:
        raise ContractError(f"{key!r} is not a composite key")
    parts = key[1:-1].split(COMPOSITE_NS)
    return parts[0], parts[1:]


class KeyRanges(ABC):
    """The key-layout half of :class:`chaincode.shim.Stub`, over a stub's own range scan."""

    @abstractmethod
    def _range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        """Committed keys in ``[start, end)`` (``end == ""``: no upper bound), in key order."""

    def get_state_by_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        if start.startswith(COMPOSITE_NS) or end.startswith(COMPOSITE_NS):
            raise ContractError("use get_state_by_partial_composite_key for composite keys")
        return self._range(start or FIRST_SIMPLE_KEY, end)

    def create_composite_key(self, object_type: str, attributes: Sequence[str]) -> str:
        return create_composite_key(object_type, attributes)

    def split_composite_key(self, key: str) -> tuple[str, list[str]]:
        return split_composite_key(key)

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> Iterator[tuple[str, bytes]]:
        prefix = create_composite_key(object_type, attributes)
        return self._range(prefix, prefix + MAX_UNICODE)
