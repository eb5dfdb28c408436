"""The contract-facing API: what a chaincode may ask of the peer while it runs.

Modelled on Fabric's shim (``ChaincodeStubInterface``). A contract sees only a
:class:`Stub`: reads and writes go through it so the endorser can capture the
read-write set, and everything a contract may base a decision on (caller,
transaction id, timestamp) comes from the signed proposal, never from an
argument the caller could forge.

A contract is a subclass of :class:`Contract`; each public transaction is a
method marked with :func:`transaction`. Methods take the stub and string
arguments and return ``bytes`` (the response payload). Raising
:class:`ContractError` fails the endorsement with that message and nothing is
written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

COMPOSITE_NS = "\x00"
"""Composite keys start with this byte and separate their parts with it (as Fabric)."""


class ContractError(Exception):
    """A contract refused the call; the message is shown to the caller as is."""


@dataclass(frozen=True, slots=True)
class Creator:
    """The identity that signed the proposal, as checked by the MSP."""

    mspid: str
    role: str
    """``client``, ``peer``, ``admin`` or ``orderer`` (the certificate's OU)."""
    name: str
    """The certificate's CN, e.g. ``User1@org1.example.com``."""
    cert_pem: bytes


@dataclass(frozen=True, slots=True)
class KeyModification:
    """One entry of a key's history: a valid transaction that wrote or deleted it."""

    tx_id: str
    timestamp_ms: int
    value: bytes
    is_delete: bool


class Stub(Protocol):
    """What the peer offers a running contract (Fabric's ``ChaincodeStubInterface``)."""

    def get_state(self, key: str) -> bytes | None: ...

    def put_state(self, key: str, value: bytes) -> None: ...

    def del_state(self, key: str) -> None: ...

    def get_state_by_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        """Keys in ``[start, end)`` in order; ``end == ""`` means no upper bound."""
        ...

    def create_composite_key(self, object_type: str, attributes: Sequence[str]) -> str: ...

    def split_composite_key(self, key: str) -> tuple[str, list[str]]: ...

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> Iterator[tuple[str, bytes]]: ...

    def get_history_for_key(self, key: str) -> Iterator[KeyModification]:
        """Committed history, oldest first (not part of the read-write set, as in Fabric)."""
        ...

    def get_creator(self) -> Creator: ...

    def get_tx_id(self) -> str: ...

    def get_tx_timestamp(self) -> int:
        """The proposal's timestamp in milliseconds (the client's, as in Fabric)."""
        ...

    def get_function(self) -> str: ...

    def get_args(self) -> list[str]: ...

    def set_event(self, name: str, payload: bytes) -> None: ...


F = TypeVar("F", bound=Callable[..., bytes])


def transaction(method: F) -> F:
    """Mark a contract method as callable by clients."""
    method.__ledgersim_transaction__ = True  # type: ignore[attr-defined]
    return method


class Contract:
    """Base class: routes ``function`` to the method of that name marked ``@transaction``."""

    name: ClassVar[str] = ""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def invoke(self, stub: Stub) -> bytes:
        function = stub.get_function()
        method = getattr(self, function, None)
        if function.startswith("_") or not getattr(method, "__ledgersim_transaction__", False):
            raise ContractError(f"{self.name}: unknown function {function!r}")
        assert method is not None
        result: bytes = method(stub, *stub.get_args())
        return result

    @classmethod
    def functions(cls) -> list[str]:
        return sorted(
            n for n in dir(cls) if getattr(getattr(cls, n), "__ledgersim_transaction__", False)
        )


_registry: dict[str, type[Contract]] = {}


def register(cls: type[Contract]) -> type[Contract]:
    """Make a contract class available by its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a non-empty class attribute 'name'")
    _registry[cls.name] = cls
    return cls


def contract_class(name: str) -> type[Contract]:
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise KeyError(f"no contract named {name!r} (registered: {known})") from None
