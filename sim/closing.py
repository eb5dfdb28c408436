"""A base for objects whose only cleanup is ``close()``.

Trace writers and progress bars must be closed even when a run raises (a
half-written trace must still be flushed; a bar must not be left on the
terminal), so they are context managers; this holds the protocol once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Closing(ABC):
    """``with obj:`` calls ``obj.close()`` on the way out, whether or not it raised."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
