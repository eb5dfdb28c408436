"""Reading scenario files: TOML text in, a validated :class:`Scenario` out.

The scenario file is the researcher's interface (docs/design.md, "The
scenario format"), so every mistake in it must come back as one line naming
the file, the dotted key (with the ``[[fault]]`` index, e.g.
``fault[2].replica``) and what was expected, before anything runs
(:class:`sim.scenario.table.Table` words those lines). Checks that need more
than one key (replica ids below n, disjoint partition groups, a recovery after
a crash, a policy naming existing orgs) still report the one key to fix.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

from chaincode.endorser import BUILTIN_CONTRACTS
from msp.policy import Policy, PolicyError
from msp.policy import parse as parse_policy
from sim.errors import InputError
from sim.scenario.model import Expect, Fault, Latency, NetworkSpec, Scenario, WorkloadSpec
from sim.scenario.table import Table, show
from sim.world.auth import CRYPTO_KINDS
from sim.world.behaviour_options import Option, declared
from sim.world.catalogue import BEHAVIOURS
from sim.world.faults import FAULT_KINDS
from sim.world.network import LATENCY_KINDS

CHAINCODES = (*BUILTIN_CONTRACTS, "none")
"""What ``workload.chaincode`` may name: a shipped contract, or ``none``, which orders
raw operations with no ledger (``pbft.memapp``)."""

# Keys every fault may carry, and those each kind adds. Everything else is an
# unknown key, except a Byzantine behaviour's own options.
_FAULT_COMMON = frozenset({"kind", "at_ms"})
_FAULT_KEYS: dict[str, frozenset[str]] = {
    "byzantine": frozenset({"replica", "behavior", "until_ms", "params"}),
    "crash": frozenset({"replica"}),
    "recover": frozenset({"replica"}),
    "partition": frozenset({"groups", "until_ms"}),
    "link": frozenset({"from", "to", "until_ms", "drop_rate", "extra_delay_ms"}),
}
_FAULT_REQUIRED: dict[str, tuple[str, ...]] = {
    "byzantine": ("replica", "behavior"),
    "crash": ("replica",),
    "recover": ("replica",),
    "partition": ("groups",),
    "link": ("from", "to"),
}

ParamValue = float | int | str

MAX_SEED = 2**64 - 1
"""As ``--seed``: seeds are hashed into per-subsystem generators as 64-bit values."""
MAX_REPLICAS = 100
"""The largest network the benchmarks measure; beyond it set-up (a key pair per
replica) and the all-to-all PBFT traffic make a run take minutes with no output."""
MAX_CLIENTS = 1000
"""Each client is a key pair and a state machine; a thousand already saturates
any network the simulator runs in reasonable time."""


def behaviour_options() -> dict[str, dict[str, Option]]:
    """Every registered Byzantine behaviour (``sim.world.byzantine``) with its options.

    The behaviour class declares them (``OPTIONS``); they may be written in a
    ``params`` sub-table or directly on the ``[[fault]]`` table.
    """
    return {name: declared(cls.OPTIONS) for name, cls in BEHAVIOURS.items()}


def parse_byzantine_flag(spec: str, n: int) -> tuple[int, str]:
    """``ID:BEHAVIOUR`` from a command line (``net init --byzantine``), checked like a scenario's.

    The replica id must be in 0..n-1 and the behaviour registered; anything
    else is one line for exit status 2, before any file is written.
    """
    replica, _, name = spec.partition(":")
    if not replica.isdigit() or not name:
        raise InputError(f"--byzantine: expected ID:BEHAVIOUR, got {spec!r}")
    if int(replica) >= n:
        raise InputError(f"--byzantine: {spec}: expected a replica id in 0..{n - 1}, got {replica}")
    if name not in BEHAVIOURS:
        known = ", ".join(sorted(BEHAVIOURS))
        raise InputError(f"--byzantine: {spec}: unknown behaviour {name!r} (known: {known})")
    return int(replica), name


# ------------------------------------------------------------------ tables


def _read_latency(t: Table) -> Latency:
    d = Latency()
    kind = t.choice("kind", d.kind, LATENCY_KINDS)
    min_ms = t.number("min_ms", d.min_ms)
    max_ms = t.number("max_ms", max(d.max_ms, min_ms), minimum=min_ms)
    mean_ms = t.number("mean_ms", max(d.mean_ms, min_ms), minimum=min_ms)
    latency = Latency(
        kind=kind,
        min_ms=min_ms,
        max_ms=max_ms,
        mean_ms=mean_ms,
        drop_rate=t.rate("drop_rate", d.drop_rate),
        duplicate_rate=t.rate("duplicate_rate", d.duplicate_rate),
        reorder=t.boolean("reorder", d.reorder),
    )
    t.finish()
    return latency


def _read_network(t: Table) -> NetworkSpec:
    d = NetworkSpec()
    replicas = t.integer("replicas", d.replicas, minimum=4, maximum=MAX_REPLICAS)
    orgs = t.integer("orgs", min(d.orgs, replicas), minimum=1)
    if orgs > replicas:
        raise t.fail("orgs", f"at most one org per replica (<= {replicas})", orgs)
    checkpoint_interval = t.integer("checkpoint_interval", d.checkpoint_interval, minimum=1)
    window_default = max(d.watermark_window, 2 * checkpoint_interval)
    watermark_window = t.integer(
        "watermark_window", window_default, minimum=2 * checkpoint_interval
    )
    policy = t.string("endorsement_policy", d.endorsement_policy)
    _check_policy(t, policy)
    spec = NetworkSpec(
        replicas=replicas,
        orgs=orgs,
        batch_size=t.integer("batch_size", d.batch_size, minimum=1),
        batch_timeout_ms=t.integer("batch_timeout_ms", d.batch_timeout_ms),
        checkpoint_interval=checkpoint_interval,
        watermark_window=watermark_window,
        view_change_timeout_ms=t.integer(
            "view_change_timeout_ms", d.view_change_timeout_ms, minimum=1
        ),
        crypto=t.choice("crypto", d.crypto, CRYPTO_KINDS),
        endorsement_policy=policy,
        latency=_read_latency(t.table("latency")),
    )
    t.finish()
    return spec


def _check_policy(t: Table, policy: str) -> Policy:
    """The policy must parse; what it names is checked once the workload is known."""
    try:
        return parse_policy(policy)
    except PolicyError as exc:
        raise InputError(
            f"{t.source}: {t.key('endorsement_policy')}: expected a policy such as "
            f"\"AND('Org1.member','Org2.member')\", got {show(policy)} ({exc})"
        ) from None


def _check_policy_orgs(source: str, network: NetworkSpec, policy: Policy, explicit: bool) -> None:
    """A policy naming an org that has no peers can never be met, so no transaction would
    ever be valid. Only checked when a chaincode runs (``"none"`` never endorses)."""
    orgs = {f"Org{i}" for i in range(1, network.orgs + 1)}
    unknown = sorted({p.mspid for p in policy.principals()} - orgs)
    if unknown:
        hint = "" if explicit else " (the default policy; set one for this network)"
        raise InputError(
            f"{source}: network.endorsement_policy: expected a policy naming only "
            f"Org1..Org{network.orgs}, got {show(network.endorsement_policy)}{hint}"
        )


def _read_workload(t: Table) -> WorkloadSpec:
    d = WorkloadSpec()
    spec = WorkloadSpec(
        clients=t.integer("clients", d.clients, minimum=1, maximum=MAX_CLIENTS),
        requests=t.integer("requests", d.requests),
        rate_per_s=t.number("rate_per_s", d.rate_per_s, minimum=0.001),
        chaincode=t.choice("chaincode", d.chaincode, CHAINCODES),
        keys=t.integer("keys", d.keys, minimum=1),
    )
    t.finish()
    return spec


def _read_expect(t: Table) -> Expect:
    expect = Expect(
        safety=t.opt_bool("safety"),
        all_committed=t.opt_bool("all_committed"),
        min_view_changes=t.opt_int("min_view_changes"),
        max_view_changes=t.opt_int("max_view_changes"),
        min_committed=t.opt_int("min_committed"),
        liveness_lost=t.opt_bool("liveness_lost"),
    )
    t.finish()
    lo, hi = expect.min_view_changes, expect.max_view_changes
    if lo is not None and hi is not None and hi < lo:
        raise t.fail("max_view_changes", f"an integer >= min_view_changes ({lo})", hi)
    if expect.all_committed and expect.liveness_lost:
        raise t.fail(
            "liveness_lost",
            "not both all_committed = true and liveness_lost = true",
            got=False,
        )
    return expect


class _FaultReader:
    """Reads ``[[fault]]`` entries, checking ids against n and time against the run."""

    def __init__(self, source: str, n: int, duration_ms: int) -> None:
        self.source = source
        self.n = n
        self.duration_ms = duration_ms
        self.behaviours = behaviour_options()

    def read(self, index: int, entry: object) -> Fault:
        prefix = f"fault[{index}]"
        if not isinstance(entry, dict):
            raise InputError(
                f"{self.source}: {prefix}: expected a table ([[fault]]), got {show(entry)}"
            )
        t = Table(self.source, prefix, entry)
        if "kind" not in entry:
            raise t.missing("kind", "one of " + ", ".join(show(k) for k in FAULT_KINDS))
        kind = t.choice("kind", "", FAULT_KINDS)
        for name in _FAULT_REQUIRED[kind]:
            if name not in entry:
                raise t.missing(name, f"it for a {kind} fault")
        at_ms = t.integer("at_ms", 0)
        if at_ms >= self.duration_ms:
            raise t.fail("at_ms", f"a time before duration_ms ({self.duration_ms})", at_ms)
        until_ms = t.opt_int("until_ms") if kind in ("byzantine", "partition", "link") else None
        if until_ms is not None and until_ms <= at_ms:
            raise t.fail("until_ms", f"a time after at_ms ({at_ms})", until_ms)
        fault = Fault(kind=kind, at_ms=at_ms, until_ms=until_ms)
        if kind in ("byzantine", "crash", "recover"):
            fault = replace(fault, replica=self.replica(t, "replica"))
        if kind == "byzantine":
            behaviour = t.choice("behavior", "", sorted(self.behaviours))
            params = self.params(t, behaviour, fault.replica or 0)
            fault = replace(fault, behavior=behaviour, params=params)
        elif kind == "partition":
            fault = replace(fault, groups=self.groups(t))
        elif kind == "link":
            src, dst = self.replica(t, "from"), self.replica(t, "to")
            if src == dst:
                raise t.fail("to", f"a replica other than from ({src})", dst)
            fault = replace(
                fault,
                src=src,
                dst=dst,
                drop_rate=t.rate("drop_rate", 1.0),
                extra_delay_ms=t.number("extra_delay_ms", 0.0),
            )
        allowed = _FAULT_COMMON | _FAULT_KEYS[kind]
        options = set(self.behaviours.get(fault.behavior or "", {}))
        for name in entry:
            if name not in allowed and name not in options:
                raise InputError(
                    f"{self.source}: {prefix}.{name}: unknown key for a {kind} fault"
                    f" (allowed: {', '.join(sorted(allowed | options))})"
                )
        return fault

    def replica(self, t: Table, name: str) -> int:
        value = t.raw(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.n:
            raise t.fail(name, f"a replica id in 0..{self.n - 1}", value)
        return value

    def params(self, t: Table, behaviour: str, me: int) -> tuple[tuple[str, ParamValue], ...]:
        """Behaviour options, from a ``params`` sub-table and/or keys on the fault itself.

        Each is checked against the behaviour's declaration (type, range, a
        replica id other than ``me``); a key it does not declare is refused.
        """
        options = self.behaviours.get(behaviour, {})
        found: dict[str, ParamValue] = {}
        if t.has("params"):
            sub = t.table("params")
            for name in sub.data:
                if name not in options:
                    known = ", ".join(sorted(options)) or "none"
                    raise InputError(
                        f"{self.source}: {sub.key(name)}: unknown option for behaviour"
                        f" {behaviour!r} (its options: {known})"
                    )
                found[name] = self.param_value(sub, options[name], me)
        for name in sorted(options):
            if t.has(name):
                found[name] = self.param_value(t, options[name], me)
        return tuple(sorted(found.items()))

    def param_value(self, t: Table, option: Option, me: int) -> ParamValue:
        value = t.raw(option.name)
        accepted = option.accept(value, self.n, me)
        if accepted is None:
            raise t.fail(option.name, option.expected(self.n, me), value)
        return accepted

    def groups(self, t: Table) -> tuple[tuple[int, ...], ...]:
        """Disjoint groups of replica ids; replicas left out form one more group together.

        That is ``sim.world.network``'s rule, so ``[[0]]`` isolates replica 0. A
        partition that cuts nothing (one group holding every replica) is refused.
        """
        value = t.raw("groups")
        expected = (
            f"a list of disjoint groups of replica ids in 0..{self.n - 1}, e.g. [[0, 1], [2, 3]]"
        )
        if not isinstance(value, list) or not value:
            raise t.fail("groups", expected, value)
        seen: set[int] = set()
        for group in value:
            if not isinstance(group, list) or not group:
                raise t.fail("groups", expected, value)
            for rid in group:
                if isinstance(rid, bool) or not isinstance(rid, int) or not 0 <= rid < self.n:
                    raise t.fail("groups", expected, value)
                if rid in seen:
                    raise t.fail("groups", f"{expected} ({rid} is in two groups)", value)
                seen.add(rid)
        if len(value) == 1 and len(seen) == self.n:
            raise t.fail("groups", "groups that cut at least one link", value)
        return tuple(tuple(g) for g in value)


def _check_crash_order(source: str, faults: tuple[Fault, ...]) -> None:
    """A recovery needs an earlier crash of the same replica, and a crash a running replica."""
    events = sorted(
        (
            (f.at_ms, 0 if f.kind == "crash" else 1, i, f)
            for i, f in enumerate(faults)
            if f.kind in ("crash", "recover")
        ),
        key=lambda e: (e[0], e[1], e[2]),
    )
    down: set[int] = set()
    for at_ms, _, index, fault in events:
        rid = fault.replica
        assert rid is not None
        if fault.kind == "crash":
            if rid in down:
                raise InputError(
                    f"{source}: fault[{index}].replica: expected a running replica, "
                    f"got {rid} (already crashed at {at_ms} ms)"
                )
            down.add(rid)
        else:
            if rid not in down:
                raise InputError(
                    f"{source}: fault[{index}].replica: expected a replica crashed before "
                    f"{at_ms} ms, got {rid}"
                )
            down.discard(rid)


# ------------------------------------------------------------------ entry points


def parse_scenario(text: str, source: str = "<memory>") -> Scenario:
    """Parse and validate scenario TOML; raise :class:`InputError` on the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = " ".join(str(exc).split())
        raise InputError(f"{source}: invalid TOML: {message}") from None
    top = Table(source, "", data)
    name = top.string("name", Path(source).stem if source != "<memory>" else "unnamed")
    seed = top.integer("seed", 0)
    if seed > MAX_SEED:  # worded as --seed words it
        raise top.fail("seed", "an integer >= 0 and < 2**64", seed)
    duration_ms = top.integer("duration_ms", Scenario().duration_ms, minimum=1)
    network = _read_network(top.table("network"))
    workload = _read_workload(top.table("workload"))
    if workload.chaincode != "none":
        explicit = "endorsement_policy" in (data.get("network") or {})
        policy = parse_policy(network.endorsement_policy)
        _check_policy_orgs(source, network, policy, explicit)
    expect = _read_expect(top.table("expect"))
    raw_faults = top.raw("fault") if top.has("fault") else []
    if not isinstance(raw_faults, list):
        raise top.fail("fault", "an array of tables ([[fault]])", raw_faults)
    reader = _FaultReader(source, network.replicas, duration_ms)
    faults = tuple(reader.read(i, entry) for i, entry in enumerate(raw_faults))
    _check_crash_order(source, faults)
    top.finish()
    return Scenario(
        name=name,
        seed=seed,
        duration_ms=duration_ms,
        network=network,
        workload=workload,
        faults=faults,
        expect=expect,
        source=source,
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file; a missing or unreadable file is an :class:`InputError` too."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{source}: cannot read scenario file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: invalid TOML: not UTF-8 (byte {exc.start})") from None
    return parse_scenario(text, source)
