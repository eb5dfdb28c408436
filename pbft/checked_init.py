"""Constructors for the hot message records: the dataclass's ``__init__`` and its checks in one.

Every message a replica signs or decodes is built through its class's
``__init__``, some 40,000 times per simulated second at n = 16. The one
``dataclasses`` writes for a frozen class sets each field through
``object.__setattr__`` found by name, and the shape checks then run in a
``__post_init__`` that reads every field back. :func:`checked` replaces both
with one generated function: the checks on the arguments first, in the order
the fields are listed, then each field stored through its slot's own setter.
It accepts and refuses exactly what the two did, with the same errors.
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
    namespace: dict[str, Any] = {"negative": _negative, "wrong_size": _wrong_size, "cls": cls}
    lines = [f"def __init__(self, {', '.join(names)}):"]
    if nonneg:
        lines.append(f"    if {' or '.join(f'{name} < 0' for name in nonneg)}:")
        lines.append(f"        negative(cls, {nonneg!r}, ({', '.join(nonneg)},))")
    for name, size in sizes:
        lines.append(f"    if len({name}) != {size}:")
        lines.append(f"        wrong_size(cls, {name!r}, {size})")
    for name in names:
        # The slot's own descriptor: no lookup by name, no frozen-class __setattr__.
        namespace[f"set_{name}"] = cls.__dict__[name].__set__
        lines.append(f"    set_{name}(self, {name})")
    exec("\n".join(lines), namespace)  # generated from the class's own field list
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    # Tells the codec's compiled decoders (``ledger.codec._slot_setters``) that this
    # ``__init__`` holds the checks: they must call it, not fill the slots themselves.
    init.checks_fields = True  # type: ignore[attr-defined]
    return init


def _negative(cls: type, names: tuple[str, ...], values: tuple[Any, ...]) -> None:
    for name, value in zip(names, values, strict=True):
        if value < 0:
            raise ValueError(f"{cls.__name__}.{name} must be >= 0, got {value}")


def _wrong_size(cls: type, name: str, size: int) -> None:
    raise ValueError(f"{cls.__name__}.{name} must be {size} bytes")
