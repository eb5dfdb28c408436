"""A tiny progress bar on stderr for long runs; plain lines or silence when piped.

docs/design.md ("The command line") asks that long runs show progress on a terminal and stay quiet
otherwise, so the bar checks ``isatty()`` once and becomes a no-op when output
goes to a file or a pipe (CI logs, ``--json | jq``). A caller whose work comes
in countable pieces (a sweep's seeds) may ask for ``plain_every``: off a
terminal it then prints one ordinary line each time that fraction of the work
is done, so a CI log still shows that something is happening. The bar redraws
at most every ``interval_s`` seconds of wall time so a fast simulation is not
slowed down by its own bar. The simulator may call it as ``progress(done, total)``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

from sim.closing import Closing

WIDTH = 30


class ProgressBar(Closing):
    """``label [#########.........]  45%  450/1000``, redrawn in place.

    With ``show_failures`` it adds ``, 3 failed`` (counted by :meth:`advance`),
    with ``show_eta`` the time left at the pace so far (``, ETA 1m20s``).
    """

    def __init__(
        self,
        label: str,
        total: float = 0.0,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval_s: float = 0.1,
        unit: str = "",
        show_failures: bool = False,
        show_eta: bool = False,
        plain_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        terminal = bool(isatty and isatty())
        if enabled is None:
            enabled = terminal or plain_every is not None
        self.enabled = enabled
        self.plain = enabled and not terminal and plain_every is not None
        self.plain_every = plain_every or 0.1
        self.interval_s = interval_s
        self.unit = unit
        self.show_failures = show_failures
        self.show_eta = show_eta
        self.clock = clock
        self.done = 0.0
        self.failed = 0
        self._started: float | None = None
        self._last_draw = -float("inf")
        self._drawn = False
        self._next_line = 0.0
        self._printed = -1.0

    def __call__(self, done: float, total: float | None = None) -> None:
        self.update(done, total)

    def update(self, done: float, total: float | None = None) -> None:
        if total is not None:
            self.total = total
        if self._started is None:
            self._started = self.clock()
        self.done = done
        if not self.enabled:
            return
        if self.plain:
            self._maybe_print_line()
            return
        now = self.clock()
        if now - self._last_draw < self.interval_s and done < self.total:
            return
        self._last_draw = now
        self._draw()

    def advance(self, step: float = 1.0, *, failed: bool = False) -> None:
        if failed:
            self.failed += 1
        self.update(self.done + step)

    def render(self) -> str:
        """The bar's text, without control characters (what a test can compare)."""
        fraction = self._fraction()
        filled = int(fraction * WIDTH)
        bar = "#" * filled + "." * (WIDTH - filled)
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"{self.label} [{bar}] {fraction * 100:3.0f}%  "
            f"{_fmt(self.done)}/{_fmt(self.total)}{unit}{self._extras()}"
        )

    def render_line(self) -> str:
        """The plain line printed off a terminal."""
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"{self.label}: {_fmt(self.done)}/{_fmt(self.total)}{unit} "
            f"({self._fraction() * 100:.0f}%){self._extras()}"
        )

    def eta_s(self) -> float | None:
        """Seconds left at the average pace so far; ``None`` before any progress."""
        if self._started is None or self.done <= 0 or self.total <= 0:
            return None
        elapsed = self.clock() - self._started
        return max(0.0, elapsed / self.done * (self.total - self.done))

    def _fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    def _extras(self) -> str:
        text = ""
        if self.show_failures:
            text += f", {self.failed} failed"
        if self.show_eta and self.done < self.total:
            eta = self.eta_s()
            text += f", ETA {_duration(eta)}" if eta is not None else ""
        return text

    def _maybe_print_line(self) -> None:
        step = max(1.0, math.ceil(self.total * self.plain_every)) if self.total > 0 else 1.0
        if self.done == self._printed or (self.done < self._next_line and self.done < self.total):
            return
        if self.done <= 0:
            self._next_line = step
            return
        self.stream.write(self.render_line() + "\n")
        self.stream.flush()
        self._printed = self.done
        self._next_line = (self.done // step + 1) * step

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


def _duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``2h10m``: short enough for the end of a bar."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
