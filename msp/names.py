"""Naming conventions shared with cryptogen and docs/contracts.md.

Keeping every derived name here means the generator, the directory loader and
the simulator's replica-to-peer mapping cannot drift apart.
"""

from __future__ import annotations

import re

ROLES = ("client", "peer", "admin", "orderer")
"""Fabric NodeOU roles, carried in the certificate subject's OU."""

_NATURAL_SPLIT = re.compile(r"(\d+)")


def org_domain(org: int) -> str:
    return f"org{org}.example.com"


def org_mspid(org: int) -> str:
    return f"Org{org}"


def mspid_from_domain(domain: str) -> str:
    """``org1.example.com`` -> ``Org1``: how a tree on disk names its MSP."""
    label = domain.split(".", 1)[0]
    return label[:1].upper() + label[1:]


def ca_name(domain: str) -> str:
    return f"ca.{domain}"


def intermediate_ca_name(domain: str) -> str:
    return f"ica.{domain}"


def peer_name(peer: int, org: int) -> str:
    return f"peer{peer}.{org_domain(org)}"


def admin_name(index: int, domain: str) -> str:
    """First admin is ``Admin@domain``, the next ``Admin2@domain`` and so on."""
    return f"Admin@{domain}" if index == 1 else f"Admin{index}@{domain}"


def user_name(index: int, domain: str) -> str:
    return f"User{index}@{domain}"


def replica_org_and_peer(replica_id: int, orgs: int) -> tuple[int, int]:
    """Round-robin placement: replica ``i`` is peer ``i // orgs`` of org ``i % orgs + 1``."""
    if orgs < 1 or replica_id < 0:
        raise ValueError(f"need replica_id >= 0 and orgs >= 1, got {replica_id}, {orgs}")
    return replica_id % orgs + 1, replica_id // orgs


def replica_peer_name(replica_id: int, orgs: int) -> str:
    org, peer = replica_org_and_peer(replica_id, orgs)
    return peer_name(peer, org)


_MEMBER_NUMBER = re.compile(r"[A-Za-z]*(\d*)")


def member_order(name: str, role: str) -> tuple[int, int, str]:
    """Generation order (peers, orderers, admins, clients; then by number), so a
    tree read back from disk lists its members as they were generated."""
    digits = _MEMBER_NUMBER.match(name)
    number = int(digits.group(1)) if digits and digits.group(1) else 1
    rank = ("peer", "orderer", "admin", "client").index(role) if role in ROLES else len(ROLES)
    return rank, number, name


def natural_key(text: str) -> tuple[tuple[int, str], ...]:
    """Sort ``peer10`` after ``peer9`` when reading a tree back from disk."""
    return tuple((int(p), "") if p.isdigit() else (0, p) for p in _NATURAL_SPLIT.split(text))
