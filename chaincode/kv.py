"""``kv``: a plain key-value contract, the simplest load that still exercises MVCC.

``put`` is a blind write (no read, so it never conflicts); ``add`` and
``transfer`` read before they write, so two of them on one key in flight at
once leave exactly one valid (the other fails MVCC validation). Counters are
decimal strings so ``ledger dump`` stays readable.
"""

from __future__ import annotations

import json

from chaincode.shim import Contract, ContractError, Stub, register, transaction


def _number(stub: Stub, key: str) -> int:
    raw = stub.get_state(key)
    if raw is None:
        return 0
    try:
        return int(raw.decode())
    except (UnicodeDecodeError, ValueError):
        raise ContractError(f"value of {key!r} is not a number") from None


def _parse_int(what: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ContractError(f"{what} must be an integer, got {text!r}") from None


@register
class KVContract(Contract):
    """Functions: put, get, delete (alias ``del``), add, transfer, range."""

    name = "kv"

    @transaction
    def put(self, stub: Stub, key: str, value: str) -> bytes:
        stub.put_state(key, value.encode())
        return b""

    @transaction
    def get(self, stub: Stub, key: str) -> bytes:
        value = stub.get_state(key)
        if value is None:
            raise ContractError(f"no key {key!r}")
        return value

    @transaction
    def delete(self, stub: Stub, key: str) -> bytes:
        stub.del_state(key)
        return b""

    @transaction
    def add(self, stub: Stub, key: str, delta: str) -> bytes:
        """Read-modify-write: the new value is the payload."""
        total = _number(stub, key) + _parse_int("delta", delta)
        stub.put_state(key, str(total).encode())
        return str(total).encode()

    @transaction
    def transfer(self, stub: Stub, source: str, target: str, amount: str) -> bytes:
        """Move ``amount`` from one counter to another; refuses overdrafts and self-transfers."""
        value = _parse_int("amount", amount)
        if value <= 0:
            raise ContractError("amount must be positive")
        if source == target:
            raise ContractError("source and target must differ")
        have = _number(stub, source)
        if have < value:
            raise ContractError(f"{source!r} holds {have}, cannot transfer {value}")
        stub.put_state(source, str(have - value).encode())
        stub.put_state(target, str(_number(stub, target) + value).encode())
        return b""

    @transaction
    def range(self, stub: Stub, start: str, end: str) -> bytes:
        """Keys in ``[start, end)`` with their values, as a JSON object."""
        found = {
            key: value.decode(errors="replace")
            for key, value in stub.get_state_by_range(start, end)
        }
        return json.dumps(found, sort_keys=True, separators=(",", ":")).encode()


setattr(KVContract, "del", KVContract.delete)
