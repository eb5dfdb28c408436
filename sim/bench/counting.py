"""Exact counts of signing and verification work done during one run.

The crypto bound of the sim-real section needs to know how many signatures a
committed transaction costs. Rather than derive that from the protocol on
paper (and be wrong the day someone adds a cache or a check), the benchmark
wraps the functions that do the work, for the duration of the run, and counts
calls. Three layers are counted separately:

* ``auth``: the authenticators replicas and clients are given (any class of
  ``pbft.auth`` or ``sim.world.auth`` defining ``sign``/``verify``): one verify per
  replica per signed protocol message it checks;
* ``msp``: ``msp.identity`` identities (``SigningIdentity.sign``,
  ``Identity.verify``), which the MSP authenticator, the endorsers and the
  ledger validator all go through: the checks every peer makes, as a
  deployment of separate machines would have to do them;
* ``crypto``: the key operations under those identities (``msp.identity``'s
  ``sign`` and ``signature_problem``), i.e. what the CPU actually did. This
  is lower than ``msp`` because the identities cache verification results,
  and in one simulated process every replica checks the same signature.

Within a layer only the outermost call counts, so a method that delegates to
another wrapped one of the same layer (``super().verify``) counts once.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

OPERATIONS = ("sign", "verify")

CLASS_LAYERS: dict[str, tuple[str, ...]] = {
    "auth": ("pbft.auth", "sim.world.auth"),
    "msp": ("msp.identity",),
}
"""Layer -> modules whose classes' own ``sign``/``verify`` methods are wrapped."""

FUNCTION_LAYERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "crypto": (("msp.identity", "sign", "sign"), ("msp.identity", "signature_problem", "verify")),
}
"""Layer -> (module, global name, operation): module-level functions, wrapped where looked up."""


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError:
        return None


def _class_targets(module_name: str) -> list[tuple[Any, str, str]]:
    """(class, method, operation) for classes of ``module_name`` defining sign/verify."""
    module = _import(module_name)
    if module is None:
        return []
    found: list[tuple[Any, str, str]] = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module_name:
            continue
        found.extend((cls, op, op) for op in OPERATIONS if callable(cls.__dict__.get(op)))
    return found


def _name(owner: Any) -> str:
    if inspect.ismodule(owner):
        return str(owner.__name__)
    return f"{owner.__module__}.{owner.__qualname__}"


class CryptoCounter:
    """Call counts keyed ``"<layer>.<op>"`` plus the names of what was wrapped."""

    def __init__(
        self,
        class_layers: dict[str, tuple[str, ...]] | None = None,
        function_layers: dict[str, tuple[tuple[str, str, str], ...]] | None = None,
    ) -> None:
        self.class_layers = CLASS_LAYERS if class_layers is None else class_layers
        self.function_layers = FUNCTION_LAYERS if function_layers is None else function_layers
        self.counts: Counter[str] = Counter()
        self.wrapped: list[str] = []
        self._depth: Counter[str] = Counter()

    def _targets(self) -> Iterator[tuple[str, Any, str, str]]:
        """(layer, owner, attribute, operation) for everything to wrap."""
        for layer, modules in self.class_layers.items():
            for module_name in modules:
                for cls, attribute, op in _class_targets(module_name):
                    yield layer, cls, attribute, op
        for layer, functions in self.function_layers.items():
            for module_name, attribute, op in functions:
                module = _import(module_name)
                if module is not None and callable(getattr(module, attribute, None)):
                    yield layer, module, attribute, op

    def _wrap(self, layer: str, op: str, function: Callable[..., Any]) -> Callable[..., Any]:
        key = f"{layer}.{op}"
        depth = self._depth
        counts = self.counts

        @functools.wraps(function)
        def counted(*args: Any, **kwargs: Any) -> Any:
            if depth[layer] == 0:
                counts[key] += 1
            depth[layer] += 1
            try:
                return function(*args, **kwargs)
            finally:
                depth[layer] -= 1

        return counted

    @contextmanager
    def installed(self) -> Iterator[CryptoCounter]:
        """Wrap every target for the duration of the ``with`` block, then restore them."""
        originals: list[tuple[Any, str, Any]] = []
        try:
            for layer, owner, attribute, op in self._targets():
                original = vars(owner)[attribute]
                originals.append((owner, attribute, original))
                setattr(owner, attribute, self._wrap(layer, op, original))
                self.wrapped.append(f"{layer}: {_name(owner)}.{attribute}")
            yield self
        finally:
            for owner, attribute, original in reversed(originals):
                setattr(owner, attribute, original)

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": {key: self.counts[key] for key in sorted(self.counts)},
            "wrapped": sorted(self.wrapped),
        }
