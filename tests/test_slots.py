"""``Replica.__slots__`` and ``WorldState.__slots__`` must name every attribute their code sets.

A name missing from the slots still works (it lands in the instance dict), so
nothing else would notice; but once the dict holds more than a few names every
attribute read on the hot path pays for a hashed lookup again (see the comments
on ``Replica.__slots__`` and ``WorldState``).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from pbft_harness import Cluster

from pbft.api import PBFTConfig
from pbft.auth import Keyring
from pbft.memapp import MemoryApplication
from pbft.replica import Replica
from sim.scenario.reader import load_scenario
from sim.world.simulation import Simulation, execute
from sim.world.state import WorldState

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _attributes_set_in(cls: type) -> set[str]:
    """Names ``X`` of every ``self.X = ...`` (also augmented or annotated) in ``cls``'s body."""
    tree = ast.parse(inspect.getsource(inspect.getmodule(cls)))  # type: ignore[arg-type]
    names: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ClassDef) and node.name == cls.__name__):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign):
                targets = list(sub.targets)
            elif isinstance(sub, ast.AnnAssign | ast.AugAssign):
                targets = [sub.target]
            else:
                continue
            while targets:
                target = targets.pop()
                if isinstance(target, ast.Tuple | ast.List):
                    targets.extend(target.elts)
                elif (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    names.add(target.attr)
    return names


def _unslotted(cls: type, slotted: type) -> set[str]:
    """Attributes set by ``cls``'s own code that are neither ``slotted``'s slots nor properties."""
    set_somewhere: set[str] = set()
    for klass in cls.__mro__[:-1]:  # all but object
        set_somewhere |= _attributes_set_in(klass)
    properties = {name for name in set_somewhere if isinstance(getattr(cls, name), property)}
    return set_somewhere - properties - set(slotted.__slots__)


def test_every_attribute_the_replica_sets_is_a_slot_or_a_property() -> None:
    assert _unslotted(Replica, Replica) == set()


def test_every_attribute_the_simulation_sets_is_a_slot_of_its_world_state() -> None:
    assert _unslotted(Simulation, WorldState) == set()


def test_a_run_keeps_nothing_in_the_simulations_instance_dict() -> None:
    scenario = load_scenario(SCENARIOS / "byzantine-primary.toml")
    simulation, _result = execute(Simulation, scenario, 1)
    assert simulation.committed > 0
    assert vars(simulation) == {}


def test_a_replica_keeps_nothing_in_its_instance_dict() -> None:
    config = PBFTConfig(n=4)
    replica = Replica(1, config, Keyring(1).authenticator(1), MemoryApplication())
    assert vars(replica) == {}


def test_replicas_that_ran_keep_nothing_in_their_instance_dicts() -> None:
    cluster = Cluster(n=4, clients=2)
    for client in cluster.client_ids:
        cluster.submit(client, b"op")
    cluster.run()
    assert all(cluster.completed[client] for client in cluster.client_ids)
    assert all(vars(replica) == {} for replica in cluster.replicas)
