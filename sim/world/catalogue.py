"""Every Byzantine behaviour a scenario can name, in one registry.

The behaviours are defined in two modules: :mod:`sim.world.byzantine` (the
base class, the registry and the classic faults: silence, equivocation, bad
digests, replays, ...) and :mod:`sim.world.adversaries` (the ones that forge
or mix proofs, built on the first). Each class registers itself when its
module is imported, so anything that looks a behaviour up by name (the
scenario reader, the fault model, the simulator, the public strategies)
imports this module, which imports both: a registry read anywhere else could
be missing the adversaries.
"""

from __future__ import annotations

from sim.world import adversaries, byzantine
from sim.world.byzantine import Behaviour, Context, make_behaviour

BEHAVIOURS: dict[str, type[Behaviour]] = byzantine.BEHAVIOURS
"""Name -> behaviour class, with every module's behaviours registered."""

PROOF_FORGERS: tuple[str, ...] = tuple(
    sorted(name for name, cls in BEHAVIOURS.items() if cls.__module__ == adversaries.__name__)
)
"""The behaviours that forge or mix proofs (:mod:`sim.world.adversaries`)."""

__all__ = ["BEHAVIOURS", "PROOF_FORGERS", "Behaviour", "Context", "make_behaviour"]
