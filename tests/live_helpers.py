"""What every test of a live network needs: nodes that die with the test run, and polling.

A live test starts real node processes; if pytest is killed they would run on,
holding ports and disk. ``cluster.WATCH_ENV`` tells each node the pid to outlive
no longer, so ``watched`` sets it for the network's whole life and takes the
network down however the test ends.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sim.live import cluster


@contextlib.contextmanager
def watched(directory: Path) -> Iterator[None]:
    """Nodes started inside exit with this process; the network is down afterwards."""
    os.environ[cluster.WATCH_ENV] = str(os.getpid())
    try:
        yield
    finally:
        cluster.down(directory)
        del os.environ[cluster.WATCH_ENV]


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``check`` until it holds; an AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
