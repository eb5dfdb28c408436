"""A tiny progress bar on stderr for long runs, and silence when piped.

docs/design.md ("The command line") asks that long runs show progress on a terminal and stay quiet
otherwise, so the bar checks ``isatty()`` once and becomes a no-op when output
goes to a file or a pipe (CI logs, ``--json | jq``). It redraws at most every
``interval_s`` seconds of wall time so a fast simulation is not slowed down by
its own bar. The simulator may call it as ``progress(done, total)``.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from sim.closing import Closing

WIDTH = 30


class ProgressBar(Closing):
    """``label [#########.........]  45%  450/1000``, redrawn in place."""

    def __init__(
        self,
        label: str,
        total: float = 0.0,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval_s: float = 0.1,
        unit: str = "",
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.interval_s = interval_s
        self.unit = unit
        self.done = 0.0
        self._last_draw = -float("inf")
        self._drawn = False

    def __call__(self, done: float, total: float | None = None) -> None:
        self.update(done, total)

    def update(self, done: float, total: float | None = None) -> None:
        if total is not None:
            self.total = total
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < self.interval_s and done < self.total:
            return
        self._last_draw = now
        self._draw()

    def advance(self, step: float = 1.0) -> None:
        self.update(self.done + step)

    def render(self) -> str:
        """The bar's text, without control characters (what a test can compare)."""
        fraction = min(1.0, self.done / self.total) if self.total > 0 else 0.0
        filled = int(fraction * WIDTH)
        bar = "#" * filled + "." * (WIDTH - filled)
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"{self.label} [{bar}] {fraction * 100:3.0f}%  "
            f"{_fmt(self.done)}/{_fmt(self.total)}{unit}"
        )

    def _draw(self) -> None:
        self.stream.write("\r\x1b[2K" + self.render())
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the bar so whatever prints next starts on a clean line."""
        if self.enabled and self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"
