"""Sweeps on a Dask cluster: the seeds of a sweep as tasks on a distributed scheduler.

``--jobs`` spreads seeds over one machine's cores; a research group with a
cluster points ``ledgersim sweep --dask tcp://HOST:8786`` at a running Dask
scheduler instead. The seeds go out as the same tasks a local worker process
gets (runs of consecutive seeds, sized for the cluster's worker threads), so
results, the failure report and the replay commands are identical to
``--jobs``: only where the work ran differs.
The workers need ledgersim installed (and a mutant's module importable, as
for ``--jobs``); nothing else is shipped to them but the scenario and seeds.

``distributed`` is an optional dependency (the ``cluster`` extra): it is
imported only when ``--dask`` is used, and its absence is a one-line error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from typing import Any, TypeVar

from sim.errors import InputError, RunFailed

CONNECT_TIMEOUT_S = 20
"""How long to wait for the scheduler before saying it cannot be reached."""

Job = TypeVar("Job")
Result = TypeVar("Result")


def dask_map(
    address: str,
    call: Callable[[Job], Result],
    jobs: Sequence[Job] | Callable[[int], Sequence[Job]],
) -> Iterator[Result]:
    """``call(job)`` for every job as a task on the scheduler at ``address``, as they finish.

    ``jobs`` may instead be what makes them from the number of worker threads
    the cluster has when connected (how a sweep sizes its chunks of seeds,
    which a caller cannot know before it reaches the scheduler).

    The tasks are cancelled when the caller stops iterating (Ctrl-C, an error
    in one seed that stops the sweep), so a cluster is not left busy.
    """
    try:
        from distributed import Client, as_completed
        from distributed.comm.core import CommClosedError
    except ImportError:
        raise InputError(
            "--dask: needs the 'distributed' package (pip install 'ledgersim[cluster]')"
        ) from None
    _check_address(address)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"--dask: cannot reach a Dask scheduler at {address!r}: {exc}") from None
    futures: list[Any] = []
    done = 0
    restore = _quiet_distributed()  # its reconnect attempts log tracebacks; we say it once
    try:
        if callable(jobs):
            jobs = jobs(max(1, sum(client.nthreads().values())))
        futures = client.map(call, list(jobs), pure=False)
        for future in as_completed(futures, loop=client.loop):
            try:
                result = future.result()
            except (CancelledError, CommClosedError) as exc:
                raise RunFailed(
                    f"--dask: lost the scheduler at {address!r} after {done} of "
                    f"{len(futures)} tasks ({exc.__class__.__name__}); the sweep is incomplete"
                ) from None
            done += 1
            yield result
    finally:
        try:
            client.cancel([f for f in futures if not f.done()])
            client.close(timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, CancelledError):
            pass  # the scheduler is gone: nothing left to cancel there
        finally:
            restore()


def _check_address(address: str) -> None:
    """Refuse a malformed address before a Client is made: a Client that fails in its
    constructor is closed by the garbage collector, which waits 40 s and prints a traceback."""
    from distributed.comm import get_address_host_port, parse_address
    from distributed.comm.registry import get_backend

    try:
        scheme, _ = parse_address(address)
        get_backend(scheme)
        if scheme in ("tcp", "tls", "ws", "wss"):
            _, port = get_address_host_port(address)
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is not 1..65535")
    except ValueError as exc:
        raise InputError(f"--dask: not a scheduler address {address!r}: {exc}") from None


def _quiet_distributed() -> Callable[[], None]:
    """Silence every ``distributed`` logger below CRITICAL; returns what undoes it.

    Each of them is set, not only the parent, since distributed's own configuration
    gives some (``distributed.client``) a level of their own.
    """
    names = ["distributed"] + [
        name for name in logging.root.manager.loggerDict if name.startswith("distributed.")
    ]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)

    def restore() -> None:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)

    return restore
