"""The HTTP gateway's own identity on a live network.

A live network orders only requests signed by one of its PBFT clients, and a
client id belongs to one member of ``network.json`` (with its broker account).
The HTTP gateway must not sign as any caller (their keys stay with them), so
``net up`` enrols one more client certificate for it, ``Gateway@<org 1>``,
and names it in ``network.json``'s ``gateway`` section. The gateway signs only
the PBFT requests that carry envelopes its callers signed; the peers judge
each envelope by its creator's signature, never by who relayed it. It is a
client, not an administrator: it can approve or upload nothing in its own name.
"""

from __future__ import annotations

from msp.ca import NetworkCrypto
from msp.keys import KeySource
from sim.errors import InputError
from sim.live.netconfig import Member, NetworkConfig

GATEWAY_KEY = "gateway"
"""``network.json`` section naming the gateway's member: ``{"name": ...}``."""
GATEWAY_USER = "Gateway"


def with_gateway_identity(crypto: NetworkCrypto) -> tuple[NetworkCrypto, Member]:
    """``crypto`` with a client certificate for the gateway enrolled in the first org."""
    first = crypto.orgs[0]
    name = f"{GATEWAY_USER}@{first.domain}"
    enrolled = first.enroll(name, "client", KeySource(None))
    orgs = (first.with_members([enrolled]), *crypto.orgs[1:])
    return NetworkCrypto(orgs), Member(name, first.mspid)


def gateway_name(config: NetworkConfig) -> str | None:
    """The gateway's member name if this network has one (networks from ``net up``)."""
    section = config.extra.get(GATEWAY_KEY)
    name = section.get("name") if isinstance(section, dict) else None
    return name if isinstance(name, str) and any(m.name == name for m in config.users) else None


def require_gateway(config: NetworkConfig, where: str) -> str:
    name = gateway_name(config)
    if name is None:
        raise InputError(
            f"{where}: network.json names no gateway identity (a network made before the "
            "HTTP gateway existed): run `ledgersim net down`, remove the directory, `net up` again"
        )
    return name
