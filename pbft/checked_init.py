"""Constructors for the hot message records: the dataclass's ``__init__`` and its checks in one.

Every message a replica signs or decodes is built through its class's
``__init__``, some 40,000 times per simulated second at n = 16. The one
``dataclasses`` writes for a frozen class sets each field through
``object.__setattr__`` found by name, and the shape checks then run in a
``__post_init__`` that reads every field back. :func:`checked` replaces both
with one generated function: the checks on the arguments first, in the order
the fields are listed, then the fields stored. It accepts and refuses exactly
what the two did, with the same errors.

How the fields are stored: a frozen class refuses ``self.name = value``, and
calling each slot's own setter costs a call with an argument tuple per field.
So the new object briefly becomes an instance of an *unfrozen twin*, a class
with exactly the same slots (hence the same memory layout, which is what lets
CPython change an object's class), is given its fields by plain assignments
(the interpreter's cheapest store, straight into the slot), and is then made
an instance of the record class again. For a six-field reply that is about
1,700 fewer instructions per message built (7,100 against 5,400), and every
message signed or decoded is built this way. Nothing else can see the object
meanwhile: it is still being constructed. The record classes are final (see
``_no_subclasses``), so the object is always of exactly the class restored.
Records of fewer than ``_TWIN_PAYS_FROM`` fields (events such as ``Deliver``)
are still stored slot setter by slot setter in ``__init__``, where the two
class changes would cost more than they save. ``construct``, which the codec
calls instead of the class, makes the twin directly and needs one change only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

C = TypeVar("C", bound=type)


def checked(
    *, nonneg: tuple[str, ...] = (), sizes: tuple[tuple[str, int], ...] = ()
) -> Callable[[C], C]:
    """Give a frozen, slotted dataclass a generated ``__init__`` that checks its fields.

    ``nonneg`` fields must be ``>= 0`` (tested first, in this order), ``sizes``
    fields must have exactly that length. Apply it above ``@dataclass``.
    """

    def install(cls: C) -> C:
        cls.__init__ = _generated_init(cls, nonneg, sizes)  # type: ignore[misc]
        cls.__init_subclass__ = classmethod(_no_subclasses)  # type: ignore[assignment]
        return cls

    return install


def _generated_init(
    cls: type, nonneg: tuple[str, ...], sizes: tuple[tuple[str, int], ...]
) -> Callable[..., None]:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    if not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} must be @dataclass(frozen=True, slots=True)")
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    if any(f.default is not dataclasses.MISSING or not f.init for f in fields):
        raise TypeError(f"{cls.__name__}: generated constructors take every field, no defaults")
    unknown = set(nonneg) | {name for name, _ in sizes}
    if not unknown <= set(names) or "self" in names:
        raise TypeError(f"{cls.__name__}: checks name unknown fields {unknown - set(names)}")
    if tuple(cls.__dict__["__slots__"]) != names or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__}: slots must be exactly its fields, on object")
    twin = type(f"_{cls.__name__}Unfrozen", (), {"__slots__": names})
    namespace: dict[str, Any] = {
        "negative": _negative,
        "wrong_size": _wrong_size,
        "cls": cls,
        "twin": twin,
        "set_class": _set_class,
    }
    checks = []
    if nonneg:
        checks.append(f"    if {' or '.join(f'{name} < 0' for name in nonneg)}:")
        checks.append(f"        negative(cls, {nonneg!r}, ({', '.join(nonneg)},))")
    for name, size in sizes:
        checks.append(f"    if len({name}) != {size}:")
        checks.append(f"        wrong_size(cls, {name!r}, {size})")
    if len(names) >= _TWIN_PAYS_FROM:
        stores = [
            "    set_class(self, twin)  # unfrozen: plain stores into the same slots",
            *(f"    self.{name} = {name}" for name in names),
            "    self.__class__ = cls",
        ]
    else:
        namespace.update({f"set_{name}": cls.__dict__[name].__set__ for name in names})
        stores = [f"    set_{name}(self, {name})" for name in names]
    arguments = ", ".join(names)
    source = [
        f"def __init__(self, {arguments}):",
        *checks,
        *stores,
        # The same object as ``cls(...)`` makes, made from the twin in the first place:
        # no call of the class (allocation, then ``__init__`` looked up and called).
        f"def construct({arguments}):",
        *checks,
        "    made = twin()  # cheaper than object.__new__(twin): no argument tuple",
        *(f"    made.{name} = {name}" for name in names),
        "    made.__class__ = cls",
        "    return made",
    ]
    exec("\n".join(source), namespace)  # generated from the class's own field list
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    # Tells the codec's compiled decoders (``ledger.codec._slot_setters``) that this
    # ``__init__`` holds the checks: they must call it, not fill the slots themselves.
    init.checks_fields = True  # type: ignore[attr-defined]
    construct = namespace["construct"]
    construct.__qualname__ = f"{cls.__qualname__}.construct"
    construct.__module__ = cls.__module__
    # Called instead of the class by the codec (``ledger.codec.constructor``).
    init.construct = construct  # type: ignore[attr-defined]
    return init


_TWIN_PAYS_FROM = 4
"""Fields from which ``__init__`` stores through the twin: changing the class there and
back costs about as much as three slot-setter calls (the ``construct`` function, which
makes the twin in the first place, pays for any number of fields)."""

_set_class = object.__dict__["__class__"].__set__
"""``object.__setattr__(obj, "__class__", kind)`` without the frozen class's ``__setattr__``."""


def _no_subclasses(cls: type, **kwargs: Any) -> None:
    """Records are final: a subclass's instance could not take its twin's class."""
    raise TypeError(f"{cls.__mro__[1].__name__} is a final record class: do not subclass it")


def _negative(cls: type, names: tuple[str, ...], values: tuple[Any, ...]) -> None:
    for name, value in zip(names, values, strict=True):
        if value < 0:
            raise ValueError(f"{cls.__name__}.{name} must be >= 0, got {value}")


def _wrong_size(cls: type, name: str, size: int) -> None:
    raise ValueError(f"{cls.__name__}.{name} must be {size} bytes")
