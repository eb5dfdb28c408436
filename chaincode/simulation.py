"""Simulation: run a contract against committed state and capture its read-write set.

Semantics follow Fabric's transaction simulator: reads see the committed
state only (a contract does not read its own uncommitted writes), each key
read is recorded once with the version seen, a range query records the keys
and versions the contract actually consumed, writes and deletes are buffered
(the last one per key wins) and nothing reaches the ledger until the
transaction is ordered and validated. Both lists are sorted by key so every
honest endorser produces the same bytes for the same simulation.

Simple-key range queries skip composite keys, as in Fabric: an empty start
key means "from the first simple key" (composite keys all begin with NUL).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from chaincode.keyspace import KeyRanges
from chaincode.shim import COMPOSITE_NS, ContractError, Creator, KeyModification
from ledger.history import HistoryEntry
from ledger.state import VersionedValue
from ledger.transaction import (
    ChaincodeEvent,
    KVRead,
    KVWrite,
    RangeRead,
    RWSet,
    TxHeader,
    Version,
)


class LedgerReader(Protocol):
    """The committed data a simulation may read (``ledger.peer.PeerLedger`` provides it)."""

    def get_state(self, namespace: str, key: str) -> VersionedValue | None: ...

    def get_versioned_range(
        self, namespace: str, start: str, end: str
    ) -> Iterator[tuple[str, VersionedValue]]: ...

    def key_history(self, namespace: str, key: str) -> list[HistoryEntry]: ...


def _check_simple_key(key: str) -> None:
    if key == "":
        raise ContractError("empty key")
    if key.startswith(COMPOSITE_NS) and not key.endswith(COMPOSITE_NS):
        raise ContractError(f"key {key!r} starts with the composite-key prefix")


class _RangeRecorder:
    """An iterator over a range query that remembers what the contract consumed."""

    def __init__(self, source: Iterator[tuple[str, VersionedValue]], start: str, end: str):
        self._source = source
        self.start = start
        self.end = end
        self.reads: list[KVRead] = []
        self.exhausted = False

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return self._items()

    def _items(self) -> Iterator[tuple[str, bytes]]:
        for key, value in self._source:
            self.reads.append(KVRead(key, value.version))
            yield key, value.value
        self.exhausted = True

    def record(self) -> RangeRead:
        return RangeRead(self.start, self.end, self.exhausted, tuple(self.reads))


class SimulationStub(KeyRanges):
    """A :class:`chaincode.shim.Stub` over committed state that captures the read-write set."""

    def __init__(self, ledger: LedgerReader, header: TxHeader, creator: Creator) -> None:
        self._ledger = ledger
        self._header = header
        self._creator = creator
        self._namespace = header.chaincode
        self._reads: dict[str, Version | None] = {}
        self._writes: dict[str, KVWrite] = {}
        self._ranges: list[_RangeRecorder] = []
        self._event: ChaincodeEvent | None = None

    # ----------------------------------------------------------------- state

    def get_state(self, key: str) -> bytes | None:
        _check_simple_key(key)
        found = self._ledger.get_state(self._namespace, key)
        self._reads.setdefault(key, None if found is None else found.version)
        return None if found is None else found.value

    def put_state(self, key: str, value: bytes) -> None:
        _check_simple_key(key)
        if not isinstance(value, bytes):
            raise ContractError(f"value for {key!r} must be bytes, got {type(value).__name__}")
        self._writes[key] = KVWrite(key, value, False)

    def del_state(self, key: str) -> None:
        _check_simple_key(key)
        self._writes[key] = KVWrite(key, b"", True)

    def _range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        source = self._ledger.get_versioned_range(self._namespace, start, end)
        recorder = _RangeRecorder(source, start, end)
        self._ranges.append(recorder)
        return iter(recorder)

    def get_history_for_key(self, key: str) -> Iterator[KeyModification]:
        for entry in self._ledger.key_history(self._namespace, key):
            yield KeyModification(entry.tx_id, entry.timestamp_ms, entry.value, entry.is_delete)

    # --------------------------------------------------------------- context

    def get_creator(self) -> Creator:
        return self._creator

    def get_tx_id(self) -> str:
        return self._header.tx_id

    def get_tx_timestamp(self) -> int:
        return self._header.timestamp_ms

    def get_function(self) -> str:
        return self._header.function

    def get_args(self) -> list[str]:
        return list(self._header.args)

    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise ContractError("event name must not be empty")
        self._event = ChaincodeEvent(name, bytes(payload))

    # ---------------------------------------------------------------- result

    @property
    def event(self) -> ChaincodeEvent | None:
        return self._event

    def rwset(self) -> RWSet:
        """What the simulation read and wrote, in canonical (key-sorted) order."""
        return RWSet(
            self._namespace,
            tuple(KVRead(k, self._reads[k]) for k in sorted(self._reads)),
            tuple(r.record() for r in self._ranges),
            tuple(self._writes[k] for k in sorted(self._writes)),
        )
