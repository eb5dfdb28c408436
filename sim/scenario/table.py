"""One TOML table of a scenario file, read key by key with precise errors.

Every accessor knows the table's dotted prefix (``network.latency``,
``fault[2]``), so a wrong value comes back as one line naming the file, the
key and what was expected; :meth:`Table.finish` then rejects any key nobody
asked for, because a misspelt key that silently does nothing is the worst
kind of mistake in an experiment.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sim.errors import InputError


def show(value: object) -> str:
    """A value the way the user wrote it in TOML, for "got ..." in messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return str(value)


class _AskedAbout(dict[str, Any]):
    """A table's contents that remember every key the parser looked for.

    Those are exactly the keys the table knows, present or not, so an unknown
    key's error can list them without a second list to keep in step.
    """

    def __init__(self, data: Mapping[str, Any], asked: set[str]) -> None:
        super().__init__(data)
        self.asked = asked

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


class Table:
    """One TOML table being read: typed getters that fail with the dotted key.

    Keys are marked as used when read; :meth:`finish` rejects whatever the
    file has that nobody asked for, which is how unknown keys are caught.
    """

    def __init__(self, source: str, prefix: str, data: Mapping[str, Any]) -> None:
        self.source = source
        self.prefix = prefix
        self.asked: set[str] = set()
        self.data = _AskedAbout(data, self.asked)
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(
        self, name: str, expected: str, value: object = None, *, got: bool = True
    ) -> InputError:
        tail = f", got {show(value)}" if got else ""
        return InputError(f"{self.source}: {self.key(name)}: expected {expected}{tail}")

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.data[name]

    def integer(
        self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        if name not in self.data:
            return default
        return self.require_int(name, minimum=minimum, maximum=maximum)

    def require_int(self, name: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        """An integer in range; ``maximum`` is a limit the program states (and documents)."""
        if name not in self.data:
            raise self.missing(name, f"an integer >= {minimum}")
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(name, f"an integer >= {minimum}", value)
        if maximum is not None and value > maximum:
            raise self.fail(name, f"an integer in {minimum}..{maximum} (the limit)", value)
        return value

    def opt_int(self, name: str, *, minimum: int = 0) -> int | None:
        return self.require_int(name, minimum=minimum) if name in self.data else None

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, maximum: float | None = None
    ) -> float:
        if name not in self.data:
            return default
        value = self.raw(name)
        if maximum is None:
            expected = f"a number >= {_num(minimum)}"
        else:
            expected = f"a number in [{_num(minimum)}, {_num(maximum)}]"
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            raise self.fail(name, expected, value)
        return float(value)

    def rate(self, name: str, default: float) -> float:
        return self.number(name, default, minimum=0.0, maximum=1.0)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.opt_bool(name)
        return default if value is None else value

    def opt_bool(self, name: str) -> bool | None:
        if name not in self.data:
            return None
        value = self.raw(name)
        if not isinstance(value, bool):
            raise self.fail(name, "true or false", value)
        return value

    def string(self, name: str, default: str) -> str:
        if name not in self.data:
            return default
        value = self.raw(name)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "a non-empty string", value)
        return value

    def choice(self, name: str, default: str, allowed: Iterable[str]) -> str:
        options = tuple(allowed)
        if name not in self.data:
            return default
        value = self.raw(name)
        if value not in options:
            raise self.fail(name, "one of " + ", ".join(show(o) for o in options), value)
        return str(value)

    def table(self, name: str) -> Table:
        value = self.data.get(name, {})
        self.used.add(name)
        if not isinstance(value, dict):
            raise self.fail(name, "a table", value)
        return Table(self.source, self.key(name), value)

    def missing(self, name: str, expected: str) -> InputError:
        return InputError(f"{self.source}: {self.key(name)}: missing; expected {expected}")

    def finish(self, allowed_extra: Callable[[str], bool] = lambda _k: False) -> None:
        for name in self.data:
            if name not in self.used and not allowed_extra(name):
                known = sorted(self.asked - set(self.data) | self.used)
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InputError(
                    f"{self.source}: {self.key(name)}: unknown key{hint};"
                    f" expected one of {', '.join(known) or 'no keys here'}"
                )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
