"""Exact counts of signing and verification work done during one run.

The crypto bound of the sim-real section needs to know how many signatures a
committed transaction costs. Rather than derive that from the protocol on
paper (and be wrong the day someone adds a cache or a check), the benchmark
wraps the methods that do the work, for the duration of the run, and counts
calls. Two layers are counted separately:

* ``auth``: the authenticators replicas and clients are given (any class in
  ``pbft.auth`` or ``sim.auth`` with ``sign``/``verify``);
* ``msp``: ``msp.identity`` identities, which the MSP-backed authenticator,
  the endorsers and the ledger validator all sign and verify through.

Within a layer only the outermost call counts, so a method that delegates to
another wrapped method of the same layer (``super().verify``) counts once.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LAYERS: dict[str, tuple[str, ...]] = {
    "auth": ("pbft.auth", "sim.auth"),
    "msp": ("msp.identity",),
}
OPERATIONS = ("sign", "verify")


def _targets(module_name: str) -> list[tuple[type, str]]:
    """Classes of ``module_name`` that define ``sign`` or ``verify`` themselves."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    found: list[tuple[type, str]] = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module_name:
            continue
        for op in OPERATIONS:
            if callable(cls.__dict__.get(op)):
                found.append((cls, op))
    return found


class CryptoCounter:
    """Call counts keyed ``"<layer>.<op>"`` plus the classes that were wrapped."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.wrapped: list[str] = []
        self._depth: Counter[str] = Counter()

    def _wrap(self, layer: str, op: str, method: Callable[..., Any]) -> Callable[..., Any]:
        key = f"{layer}.{op}"

        @functools.wraps(method)
        def counted(*args: Any, **kwargs: Any) -> Any:
            if self._depth[layer] == 0:
                self.counts[key] += 1
            self._depth[layer] += 1
            try:
                return method(*args, **kwargs)
            finally:
                self._depth[layer] -= 1

        return counted

    @contextmanager
    def installed(self) -> Iterator[CryptoCounter]:
        """Wrap every target for the duration of the ``with`` block, then restore them."""
        originals: list[tuple[type, str, Any]] = []
        try:
            for layer, modules in LAYERS.items():
                for module_name in modules:
                    for cls, op in _targets(module_name):
                        original = cls.__dict__[op]
                        originals.append((cls, op, original))
                        setattr(cls, op, self._wrap(layer, op, original))
                        self.wrapped.append(f"{cls.__module__}.{cls.__qualname__}.{op}")
            yield self
        finally:
            for cls, op, original in reversed(originals):
                setattr(cls, op, original)

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": {key: self.counts[key] for key in sorted(self.counts)},
            "wrapped": sorted(self.wrapped),
        }
