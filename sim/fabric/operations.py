"""What each simulated Fabric client invokes next: one operation source per chaincode.

A source that needs to know the ledger's state learns it from what has
committed (``on_outcome``), never from what is merely in flight: the patch
source never asks for a version that is not released yet, so its invalid
transactions point at the system rather than at the load. The kv source
needs no such care; its collisions on a small key space are the point.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chaincode.patchset import manifest_to_json, sign_manifest
from chaincode.patchset.manifest import canonical_json
from msp import names
from msp.ca import NetworkCrypto
from sim.errors import InputError
from sim.fabric.patchclient import build_manifest
from sim.scenario.model import Scenario


@dataclass(frozen=True, slots=True)
class Call:
    """One chaincode invocation a simulated client wants to make."""

    chaincode: str
    function: str
    args: tuple[str, ...]
    signer: str | None = None
    """Identity to sign as (e.g. an admin); None: the client's own user."""


class OperationSource(Protocol):
    """Decides what each simulated client invokes next (one per chaincode workload)."""

    def next_call(self, client_index: int, now_ms: int) -> Call:
        """What to invoke next; a source may also define ``on_outcome(client, call, valid)``."""
        ...


class KVOperations:
    """Puts (blind writes) and adds (read-modify-writes) over ``workload.keys`` keys.

    Adds on a small key space collide, which is the point: MVCC conflicts show up
    in the summary as ``MVCC_READ_CONFLICT``.
    """

    def __init__(self, scenario: Scenario, crypto: NetworkCrypto, rng: random.Random) -> None:
        self._keys = max(1, scenario.workload.keys)
        self._rng = rng

    def next_call(self, client_index: int, now_ms: int) -> Call:
        key = f"k{self._rng.randrange(self._keys)}"
        if self._rng.random() < 0.5:
            return Call("kv", "put", (key, str(self._rng.randrange(1000))))
        return Call("kv", "add", (key, str(self._rng.randrange(1, 10))))


class PatchsetOperations:
    """The paper's three experiments as a load: upload + approve, register/download/report.

    Administrators (``Admin@org1`` uploads and signs, ``Admin@org2`` approves)
    release version after version of one patch; every client enrolls its
    device, downloads the newest release it has not fetched and reports the
    install. Choices follow what has *committed* (:meth:`on_outcome`), so a
    client never asks for a version that is not released yet; with nothing
    useful to do a client reads the catalog.
    """

    PATCH = "security-fix"

    def __init__(self, scenario: Scenario, crypto: NetworkCrypto, rng: random.Random) -> None:
        self._rng = rng
        self._crypto = crypto
        orgs = len(crypto.orgs)
        self._deployer = names.admin_name(1, names.org_domain(1))
        self._approver = names.admin_name(1, names.org_domain(2)) if orgs > 1 else None
        self._version = 0  # last version uploaded (committed)
        self._released = 0
        self._busy: set[str] = set()  # admin steps in flight
        self._registered: set[int] = set()
        self._downloaded: dict[int, int] = {}
        self._reported: dict[int, int] = {}

    def _upload(self) -> Call:
        version = self._version + 1
        content = f"{self.PATCH} {version}".encode()
        manifest = build_manifest(
            content,
            name=self.PATCH,
            version=f"1.{version}",
            file_name=f"{self.PATCH}-1.{version}.bin",
            description=f"release {version}",
        )
        signature = sign_manifest(self._crypto.signer(self._deployer), manifest)
        text = canonical_json(manifest_to_json(manifest)).decode()
        return Call("patchset", "upload", (text, signature), self._deployer)

    def next_call(self, client_index: int, now_ms: int) -> Call:
        idle = self._version == self._released and "upload" not in self._busy
        if idle and (self._version == 0 or self._rng.random() < 0.1):
            self._busy.add("upload")
            return self._upload()
        if self._released < self._version and self._approver and "approve" not in self._busy:
            self._busy.add("approve")
            return Call("patchset", "approve", (self.PATCH, f"1.{self._version}"), self._approver)
        if client_index not in self._registered:
            return Call("patchset", "register", ('{"groups":["lab"],"os":"ubuntu-22.04"}',))
        if self._released and self._downloaded.get(client_index, 0) < self._released:
            content = f"{self.PATCH} {self._released}".encode()  # what _upload published
            verified = hashlib.sha256(content).hexdigest()
            return Call("patchset", "download", (self.PATCH, f"1.{self._released}", verified))
        fetched = self._downloaded.get(client_index, 0)
        if fetched and self._reported.get(client_index, 0) < fetched:
            return Call("patchset", "report", (self.PATCH, f"1.{fetched}", "installed", "false"))
        return Call("patchset", "catalog", ())

    def on_outcome(self, client_index: int, call: Call, valid: bool) -> None:
        if call.function in ("upload", "approve"):
            self._busy.discard(call.function)
        if not valid:
            return
        versioned = call.function in ("approve", "download", "report")
        version = int(call.args[1].split(".")[1]) if versioned else 0
        if call.function == "upload":
            self._version += 1
        elif call.function == "approve":
            self._released = max(self._released, version)
        elif call.function == "register":
            self._registered.add(client_index)
        elif call.function == "download":
            self._downloaded[client_index] = max(self._downloaded.get(client_index, 0), version)
        elif call.function == "report":
            self._reported[client_index] = max(self._reported.get(client_index, 0), version)


OperationFactory = Callable[[Scenario, NetworkCrypto, random.Random], OperationSource]
"""Makes the source for one run: ``(scenario, crypto, rng) -> OperationSource``."""

OPERATION_SOURCES: dict[str, OperationFactory] = {
    "kv": KVOperations,
    "patchset": PatchsetOperations,
}


def operation_source(
    scenario: Scenario, crypto: NetworkCrypto, rng: random.Random
) -> OperationSource:
    """The source for the scenario's ``workload.chaincode``."""
    name = scenario.workload.chaincode
    factory = OPERATION_SOURCES.get(name)
    if factory is None:
        raise InputError(
            f"{scenario.source}: workload.chaincode: expected one of "
            f"{tuple(OPERATION_SOURCES)}, got {name!r}"
        )
    return factory(scenario, crypto, rng)
