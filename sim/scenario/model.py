"""The scenario as data: what a TOML scenario file turns into
(docs/design.md, "The scenario format").

Parsing and validation live in ``sim.scenario.reader``; the simulator consumes these
objects. Times are virtual milliseconds. Defaults are that page's example's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Latency:
    kind: str = "uniform"  # "fixed" | "uniform" | "exponential"
    min_ms: float = 1.0
    max_ms: float = 20.0
    mean_ms: float = 10.0  # exponential: min_ms + Exp(mean_ms - min_ms), capped at max_ms*10
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder: bool = True  # False: each link delivers in send order (FIFO)


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    replicas: int = 4
    orgs: int = 2
    batch_size: int = 10
    batch_timeout_ms: int = 50
    checkpoint_interval: int = 10
    watermark_window: int = 40
    view_change_timeout_ms: int = 2000
    crypto: str = "ecdsa-p256"  # "ecdsa-p256" | "ed25519" | "modelled"
    endorsement_policy: str = "AND('Org1.member','Org2.member')"
    latency: Latency = field(default_factory=Latency)


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    clients: int = 4
    requests: int = 200
    rate_per_s: float = 100.0
    chaincode: str = "patchset"  # "patchset" | "kv" | "none" (raw PBFT ordering, no ledger)
    keys: int = 1000  # kv: key space size; smaller means more MVCC conflicts


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault. ``kind`` decides which other fields matter."""

    kind: str  # "byzantine" | "crash" | "recover" | "partition" | "link"
    at_ms: int = 0
    until_ms: int | None = None
    replica: int | None = None
    behavior: str | None = None  # byzantine
    params: tuple[tuple[str, float | int | str], ...] = ()  # behaviour options, e.g. delay_ms
    groups: tuple[tuple[int, ...], ...] = ()  # partition
    src: int | None = None  # link: "from"
    dst: int | None = None  # link: "to"
    drop_rate: float = 1.0  # link
    extra_delay_ms: float = 0.0  # link


@dataclass(frozen=True, slots=True)
class Expect:
    safety: bool | None = None
    all_committed: bool | None = None
    min_view_changes: int | None = None
    max_view_changes: int | None = None
    min_committed: int | None = None
    liveness_lost: bool | None = None  # expect that not everything commits (beyond f)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str = "unnamed"
    seed: int = 0
    duration_ms: int = 30000
    network: NetworkSpec = field(default_factory=NetworkSpec)
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    faults: tuple[Fault, ...] = ()
    expect: Expect = field(default_factory=Expect)
    source: str = "<memory>"  # file the scenario came from, for messages

    @property
    def f(self) -> int:
        return (self.network.replicas - 1) // 3
