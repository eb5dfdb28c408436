"""The Fabric workload: each simulated PBFT client is a Fabric user.

:class:`FabricWorkload` implements ``sim.world.workload.Workload``: a client
gets its next call from an operation source (:mod:`sim.fabric.operations`),
collects endorsements from live peers through :mod:`sim.fabric.sdk`, and
submits the signed envelope as its PBFT operation. A proposal that cannot
gather enough agreeing endorsements is still submitted with what it got, so
the run shows the validator rejecting it (``ENDORSEMENT_POLICY_FAILURE``)
instead of a client silently dropping work.

Importing this module registers the workload for every chaincode that has an
operation source, so the simulator (which must not import the Fabric layer)
can run ``kv`` and ``patchset`` scenarios.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from chaincode.endorser import Endorser
from ledger.transaction import STATUS_ERROR, ProposalResult, Response, RWSet, proposal_hash
from msp import names
from msp.ca import NetworkCrypto
from sim.fabric.app import LedgerApplication, open_ledger
from sim.fabric.channel import channel_config, parse_policy
from sim.fabric.operations import OPERATION_SOURCES, Call, OperationSource, operation_source
from sim.fabric.sdk import (
    DEFAULT_CHANNEL,
    EndorsementFailed,
    EndorsementPlanner,
    FabricClient,
    outcome,
)
from sim.scenario.model import Scenario
from sim.world.auth import client_user, network_crypto
from sim.world.disk import NodeDisk
from sim.world.workload import register_workload


class FabricWorkload:
    """``sim.world.workload.Workload`` for chaincode workloads: Fabric clients over PBFT."""

    def __init__(
        self,
        scenario: Scenario,
        crypto: NetworkCrypto,
        rng: random.Random,
        source: OperationSource | None = None,
    ) -> None:
        self.scenario = scenario
        self.crypto = crypto
        self.rng = rng
        self.policy = parse_policy(scenario)
        self.config = channel_config(crypto, self.policy)
        self.planner = EndorsementPlanner(self.policy)
        self.source: OperationSource = source or operation_source(scenario, crypto, rng)
        self.apps: dict[int, LedgerApplication] = {}
        self.endorsers: dict[int, Endorser] = {}
        self._clients: dict[str, FabricClient] = {}
        self._calls: dict[int, Call] = {}
        """Each client's outstanding call (PBFT allows one per client)."""
        self.presigned: list[bytes] = []
        """Envelopes their creators signed elsewhere (the HTTP gateway's callers), sent
        as they are before anything the source draws: nothing here signs for them."""
        self.submitted = 0
        self.endorsement_failures: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()

    def make_application(self, replica_id: int, disk: NodeDisk) -> LedgerApplication:
        old = self.apps.pop(replica_id, None)
        if old is not None and disk.path is not None:
            old.close()
        ledger = open_ledger(disk, self.config)
        app = LedgerApplication(ledger)
        self.apps[replica_id] = app
        signer = self.crypto.signer(names.replica_peer_name(replica_id, len(self.crypto.orgs)))
        self.endorsers[replica_id] = Endorser(signer, ledger, self.config.msps, DEFAULT_CHANNEL)
        return app

    def _client(self, client_index: int, signer: str | None) -> FabricClient:
        if signer is None:
            org, user = client_user(client_index, len(self.crypto.orgs))
            signer = names.user_name(user, names.org_domain(org))
        client = self._clients.get(signer)
        if client is None:
            client = FabricClient(self.crypto.signer(signer), self.config.msps, self.rng)
            self._clients[signer] = client
        return client

    def next_operation(self, client_index: int, now_ms: int, live_replicas: Sequence[int]) -> bytes:
        if self.presigned:
            self.submitted += 1
            return self.presigned.pop(0)
        call = self.source.next_call(client_index, now_ms)
        self._calls[client_index] = call
        client = self._client(client_index, call.signer)
        proposal = client.propose(call.chaincode, call.function, call.args, now_ms)
        order = [r for r in sorted(live_replicas) if r in self.endorsers]
        self.rng.shuffle(order)
        self.submitted += 1
        plan = self.planner.plan([self.endorsers[r] for r in order])
        try:
            tx = client.endorse(proposal, plan, self.planner, now_ms)
            return tx.envelope
        except EndorsementFailed as failed:
            self.endorsement_failures[failed.kind] += 1
            if failed.result is not None:
                return client.envelope(proposal, failed.result, failed.endorsements)
            empty = RWSet(call.chaincode, (), (), ())
            response = Response(STATUS_ERROR, str(failed), b"", None)
            result = ProposalResult(proposal_hash(proposal.header), empty, response)
            return client.envelope(proposal, result, ())

    def on_result(self, client_index: int, operation: bytes, result: bytes, now_ms: int) -> None:
        found = outcome(result)
        self.codes["UNREADABLE" if found is None else found.name] += 1
        call = self._calls.pop(client_index, None)
        listener = getattr(self.source, "on_outcome", None)
        if call is not None and listener is not None:
            listener(client_index, call, found is not None and found.valid)

    def summary(self) -> dict[str, Any]:
        return {
            "chaincode": self.scenario.workload.chaincode,
            "submitted": self.submitted,
            "results": sum(self.codes.values()),
            "valid": self.codes.get("VALID", 0),
            "validation_codes": dict(sorted(self.codes.items())),
            "endorsement_failures": dict(sorted(self.endorsement_failures.items())),
        }


def make_workload(scenario: Scenario, crypto: Any, rng: random.Random) -> FabricWorkload:
    """The factory registered for each chaincode (``crypto`` is None with modelled crypto)."""
    if crypto is None:
        crypto = network_crypto(scenario)
    return FabricWorkload(scenario, crypto, rng)


for _chaincode in OPERATION_SOURCES:
    register_workload(_chaincode, make_workload)
