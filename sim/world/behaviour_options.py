"""What a Byzantine behaviour's options may be: declared once, checked when a scenario is read.

Each behaviour lists its options in ``OPTIONS`` as :class:`Option` values
(name, type, range, default, one line of help). The scenario reader checks
every ``params`` key against them, so a bad option is one line naming the
file, the dotted key and what was expected, before anything runs, and
``ledgersim run --list-behaviours`` prints the same declarations. A behaviour
reads its options with ``Behaviour.param`` as before: by then they are known
to be in range.

Declaring one is a single line, e.g. ``Option.integer("delay_ms", 1000,
"how long each message is held")`` or ``Option.choice("trick", "all",
TRICKS, "which forgery")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

OptionValue = float | int | str
"""What a scenario file may give an option (TOML booleans become 0/1 for flags)."""

KINDS = ("integer", "number", "probability", "replica", "choice", "flag", "any")


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a behaviour. Use the constructors below rather than this directly."""

    name: str
    kind: str
    default: OptionValue | None
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @classmethod
    def integer(
        cls, name: str, default: int, help: str, *, minimum: int = 0, maximum: int | None = None
    ) -> Option:
        return cls(name, "integer", default, help, minimum, maximum)

    @classmethod
    def number(
        cls,
        name: str,
        default: float,
        help: str,
        *,
        minimum: float = 0.0,
        maximum: float | None = None,
    ) -> Option:
        return cls(name, "number", default, help, minimum, maximum)

    @classmethod
    def probability(cls, name: str, default: float, help: str) -> Option:
        return cls(name, "probability", default, help, 0.0, 1.0)

    @classmethod
    def replica(cls, name: str, help: str, *, default: int | None = None) -> Option:
        """Another replica's id (0..n-1, never the behaving replica itself)."""
        return cls(name, "replica", default, help)

    @classmethod
    def choice(cls, name: str, default: str, choices: tuple[str, ...], help: str) -> Option:
        return cls(name, "choice", default, help, choices=(default, *choices))

    @classmethod
    def flag(cls, name: str, help: str, *, default: int = 0) -> Option:
        """0 or ``false`` is off, 1 or ``true`` on; a behaviour reads it as 0 or 1."""
        return cls(name, "flag", default, help, 0, 1)

    # ------------------------------------------------------------------ checking

    def expected(self, n: int, me: int) -> str:
        """What a value must be, worded for an error line."""
        if self.kind == "integer":
            if self.maximum is None:
                return f"an integer >= {_num(self.minimum or 0)}"
            return f"an integer in {_num(self.minimum or 0)}..{_num(self.maximum)}"
        if self.kind == "number":
            if self.maximum is None:
                return f"a number >= {_num(self.minimum or 0)}"
            return f"a number in [{_num(self.minimum or 0)}, {_num(self.maximum)}]"
        if self.kind == "probability":
            return "a probability in [0, 1]"
        if self.kind == "replica":
            return f"a replica id in 0..{n - 1} other than the replica itself ({me})"
        if self.kind == "choice":
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        if self.kind == "flag":
            return "true, false, 0 or 1"
        return "a number or a string"

    def accept(self, value: Any, n: int, me: int) -> OptionValue | None:
        """The value to use, or ``None`` when it is out of this option's type or range."""
        if self.kind == "flag":
            if isinstance(value, bool):
                return int(value)
            return value if value in (0, 1) and isinstance(value, int) else None
        if isinstance(value, bool):
            return None
        if self.kind == "choice":
            return value if isinstance(value, str) and value in self.choices else None
        if self.kind == "any":
            return value if isinstance(value, int | float | str) else None
        if self.kind in ("integer", "replica") and not isinstance(value, int):
            return None
        if not isinstance(value, int | float) or not math.isfinite(value):
            return None
        if self.kind == "replica":
            return value if 0 <= value < n and value != me else None
        if self.minimum is not None and value < self.minimum:
            return None
        if self.maximum is not None and value > self.maximum:
            return None
        return value

    def describe(self) -> str:
        """``name`` (type, default): help -- one line of ``--list-behaviours``."""
        kind = {
            "integer": "integer"
            + (f" >= {_num(self.minimum)}" if self.minimum is not None else ""),
            "number": "number" + (f" >= {_num(self.minimum)}" if self.minimum is not None else ""),
            "probability": "probability in [0, 1]",
            "replica": "another replica's id",
            "choice": "one of " + ", ".join(self.choices),
            "flag": "true/false",
            "any": "number or string",
        }[self.kind]
        if self.kind == "integer" and self.maximum is not None:
            kind = f"integer in {_num(self.minimum or 0)}..{_num(self.maximum)}"
        default = "" if self.default is None else f", default {self.default}"
        return f"{self.name} ({kind}{default}): {self.help}"


def declared(options: tuple[Option | str, ...]) -> dict[str, Option]:
    """A behaviour's options by name; a bare name (an undeclared option) takes any value."""
    out: dict[str, Option] = {}
    for option in options:
        if isinstance(option, str):
            option = Option(option, "any", None, "(not declared)")
        out[option.name] = option
    return out


def _num(x: float | None) -> str:
    if x is None:
        return "?"
    return str(int(x)) if float(x).is_integer() else str(x)
