"""Who signs as whom in a simulated run: one authenticator per principal.

``crypto = "modelled"`` uses ``pbft.auth``'s HMAC keyring (fast; a Byzantine
replica still holds only its own secret). ``"ecdsa-p256"`` and ``"ed25519"``
use real Fabric-style identities from ``msp``: replica ``i`` signs as its peer
(``msp.names.replica_peer_name``), client ``k`` as ``User<j>@org<o>`` with
clients spread round-robin over the organisations, and every principal is
verified against the certificate in one principal -> identity table.

The network's identities are generated deterministically from the scenario's
seed and cached per (orgs, peers, users, algorithm, seed) for the life of the
process, so sweeps and property tests pay for key generation once.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any

from pbft.api import CLIENT_ID_BASE, Authenticator
from sim.errors import InputError
from sim.scenario.model import Scenario

CRYPTO_KINDS = ("modelled", "ecdsa-p256", "ed25519")


def crypto_seed(seed: int) -> bytes:
    """The key-derivation seed for a scenario seed (domain-separated from the RNGs)."""
    return hashlib.sha256(b"ledgersim/crypto/" + str(seed).encode()).digest()


def client_user(client_index: int, orgs: int) -> tuple[int, int]:
    """(org, user index) of simulated client ``client_index``: round-robin over orgs."""
    return client_index % orgs + 1, client_index // orgs + 1


@functools.lru_cache(maxsize=8)
def _generate(orgs: int, peers: int, users: int, algorithm: str, seed: int) -> Any:
    from msp.ca import generate_network

    return generate_network(orgs, peers, users, algorithm=algorithm, seed=crypto_seed(seed))


def network_crypto(scenario: Scenario, algorithm: str | None = None) -> Any:
    """The scenario's ``msp.ca.NetworkCrypto`` (cached; ECDSA P-256 when crypto is modelled)."""
    net = scenario.network
    algo = algorithm or (net.crypto if net.crypto != "modelled" else "ecdsa-p256")
    peers = -(-net.replicas // net.orgs)
    users = max(1, -(-scenario.workload.clients // net.orgs))
    return _generate(net.orgs, peers, users, algo, scenario.seed)


class MspAuthenticator:
    """Signs with one MSP signing identity; verifies any principal by its certificate."""

    __slots__ = ("_signer", "_table")

    def __init__(self, signer: Any, table: Mapping[int, Any]) -> None:
        self._signer = signer
        self._table = table

    def sign(self, payload: bytes) -> bytes:
        signature: bytes = self._signer.sign(payload)
        return signature

    def verify(self, signer: int, payload: bytes, signature: bytes) -> bool:
        identity = self._table.get(signer)
        return identity is not None and bool(identity.verify(payload, signature))


def authenticators(scenario: Scenario, client_count: int) -> tuple[dict[int, Authenticator], Any]:
    """An authenticator for every replica and client, and the NetworkCrypto (or None)."""
    from msp import names

    net = scenario.network
    n = net.replicas
    clients = [CLIENT_ID_BASE + k for k in range(client_count)]
    if net.crypto == "modelled":
        from pbft.auth import Keyring, ModelledAuthenticator

        keyring = Keyring(crypto_seed(scenario.seed))
        return {p: ModelledAuthenticator(p, keyring) for p in [*range(n), *clients]}, None
    if net.crypto not in CRYPTO_KINDS:
        raise InputError(
            f"{scenario.source}: network.crypto: expected one of {CRYPTO_KINDS}, got {net.crypto!r}"
        )
    crypto = network_crypto(scenario)
    signers: dict[int, Any] = {}
    for replica in range(n):
        signers[replica] = crypto.signer(names.replica_peer_name(replica, net.orgs))
    for k, principal in enumerate(clients):
        org, user = client_user(k, net.orgs)
        signers[principal] = crypto.signer(names.user_name(user, names.org_domain(org)))
    table = {p: s.public() for p, s in signers.items()}
    return {p: MspAuthenticator(s, table) for p, s in signers.items()}, crypto
