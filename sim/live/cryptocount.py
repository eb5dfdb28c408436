"""Counting a live process's signature work, for the benchmark's signature bound.

``ledgersim bench --only live`` sets :data:`ENV` for the nodes and the load
generator it starts. Each then wraps the key operations under ``msp.identity``
(the ``crypto`` layer of ``sim.bench.counting``: what the CPU really signed
and verified, after the process's own verdict caches) for its whole life and
reports the counts: a node in ``status.json``, the load generator in its JSON
report. Summed over the processes of one load step and divided by the
transactions committed, they give the signatures a transaction really costs
on separate machines, and with the same run's signature rates the bound
the live efficiency is measured against. Without :data:`ENV` nothing is wrapped.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

ENV = "LEDGERSIM_COUNT_CRYPTO"
KEY_OPERATIONS = (("sign", "crypto.sign"), ("signature_problem", "crypto.verify"))
"""``msp.identity``'s module-level key operations and the counter each adds to: the same
``crypto`` layer as ``sim.bench.counting`` (which this package sits below, so cannot use)."""


@contextlib.contextmanager
def counting_if_asked() -> Iterator[Counter[str] | None]:
    """The live ``crypto.sign``/``crypto.verify`` counts while inside, or ``None`` if not asked."""
    if os.environ.get(ENV) != "1":
        yield None
        return
    import msp.identity as identity

    counts: Counter[str] = Counter()

    def counted(function: Callable[..., Any], key: str) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[key] += 1
            return function(*args, **kwargs)

        return wrapper

    originals = {name: getattr(identity, name) for name, _ in KEY_OPERATIONS}
    for name, key in KEY_OPERATIONS:
        setattr(identity, name, counted(originals[name], key))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(identity, name, original)
