"""Counting a live process's signature work, for the benchmark's signature bound.

``ledgersim bench --only live`` sets :data:`ENV` for the nodes and the load
generator it starts. Each then wraps the key operations under ``msp.identity``
(:mod:`sim.bench.counting`'s ``crypto`` layer: what the CPU really signed and
verified, after the process's own verdict caches) for its whole life and
reports the counts: a node in ``status.json``, the load generator in its JSON
report. Summed over the processes of one load step and divided by the
transactions committed, they give the signatures a transaction really costs
on separate machines, and with the same run's signature rates the bound
the live efficiency is measured against. Without :data:`ENV` nothing is wrapped.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator

ENV = "LEDGERSIM_COUNT_CRYPTO"


@contextlib.contextmanager
def counting_if_asked() -> Iterator[Counter[str] | None]:
    """The live ``crypto.sign``/``crypto.verify`` counts while inside, or ``None`` if not asked."""
    if os.environ.get(ENV) != "1":
        yield None
        return
    from sim.bench.counting import FUNCTION_LAYERS, CryptoCounter

    counter = CryptoCounter(class_layers={}, function_layers=FUNCTION_LAYERS)
    with counter.installed():
        yield counter.counts
