"""Stopping a background asyncio task without leaking it or its error.

A cancelled task must still be awaited, or asyncio warns that it was never
retrieved and the cancellation may land after the resource it uses is gone;
the awaiting must swallow the cancellation (and any error that the task hit
on a connection that is being torn down anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop_task(task: asyncio.Future[Any] | None, *ignore: type[BaseException]) -> None:
    """Cancel ``task`` (``None``: nothing to stop) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, *ignore):
        await task
