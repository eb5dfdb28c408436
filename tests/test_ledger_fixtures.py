"""A small Fabric network for ledger tests: two orgs, two peers each, a user per org.

Key generation is the slow part, so one seeded network is built per test
process and shared; tests that need revocations derive a new one from it.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from chaincode.endorser import Endorser
from ledger.block import Unwrap
from ledger.peer import CommitResult, PeerLedger
from ledger.validator import ChannelConfig
from msp.ca import NetworkCrypto, generate_network
from msp.msp import MSPManager
from msp.policy import Policy, parse
from sim.fabric.sdk import DEFAULT_CHANNEL, FabricClient, Transaction

BOTH_ORGS = "AND('Org1.member','Org2.member')"
PEERS = ("peer0.org1.example.com", "peer0.org2.example.com")


@functools.lru_cache(maxsize=1)
def network() -> NetworkCrypto:
    return generate_network(2, 2, 2, seed=b"ledger-tests")


def identity_unwrap(item: bytes) -> bytes | None:
    """Data items are the envelopes themselves in these tests (no PBFT request around them)."""
    return item


@dataclass
class Net:
    """Peers sharing one channel configuration, and a client per user."""

    crypto: NetworkCrypto
    policy_text: str = BOTH_ORGS
    unwrap: Unwrap = identity_unwrap
    peers: dict[str, PeerLedger] = field(default_factory=dict)
    endorsers: dict[str, Endorser] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    now_ms: int = 1000

    def __post_init__(self) -> None:
        self.policy: Policy = parse(self.policy_text)
        self.config = ChannelConfig(DEFAULT_CHANNEL, self.msps, {"kv": self.policy})
        for name in PEERS:
            self.add_peer(name, PeerLedger(self.config, self.unwrap))

    @property
    def msps(self) -> MSPManager:
        return self.crypto.msps()

    def add_peer(self, name: str, ledger: PeerLedger) -> None:
        self.peers[name] = ledger
        self.endorsers[name] = Endorser(
            self.crypto.signer(name), ledger, self.msps, DEFAULT_CHANNEL
        )

    def client(self, name: str = "User1@org1.example.com") -> FabricClient:
        return FabricClient(self.crypto.signer(name), self.msps, self.rng)

    def tx(
        self,
        function: str,
        *args: str,
        client: FabricClient | None = None,
        endorsers: Sequence[str] = PEERS,
    ) -> Transaction:
        client = client or self.client()
        proposal = client.propose("kv", function, args, self.now_ms)
        return client.endorse(
            proposal, [self.endorsers[e] for e in endorsers], self.policy, self.now_ms
        )

    def commit(self, *envelopes: bytes) -> list[CommitResult]:
        """Commit one block holding ``envelopes`` on every peer; the results must agree."""
        self.now_ms += 10
        results = [
            ledger.commit(ledger.height, envelopes, timestamp_ms=self.now_ms)
            for ledger in self.peers.values()
        ]
        assert len({r.block.hash for r in results}) == 1
        assert len({r.codes for r in results}) == 1
        return results

    def codes(self, *envelopes: bytes) -> list[str]:
        return [c.name for c in self.commit(*envelopes)[0].codes]
