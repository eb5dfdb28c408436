"""Who is who on a live network: principals (replica ids, client ids) to MSP identities.

A node holds only its own private key; everyone else is a certificate read
from the network's cryptogen tree and validated against its organisation's
MSP (chain to the CA, role) before any of its signatures is believed. Replica
``i`` is ``network.json``'s ``replicas[i]``; a client id maps to the user that
owns its slot range (:data:`sim.live.netconfig.CLIENT_SLOTS`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from msp.errors import MSPError
from msp.identity import Identity, SigningIdentity
from msp.msp import MSP, MSPManager
from pbft.api import CLIENT_ID_BASE
from sim.errors import InputError
from sim.live.netconfig import Member, NetworkConfig


def domain_of(name: str) -> str:
    return name.split("@", 1)[1] if "@" in name else name.split(".", 1)[1]


def msp_dir(crypto_root: Path, name: str) -> Path:
    """The member's own ``msp/`` directory in the cryptogen layout."""
    org = crypto_root / "peerOrganizations" / domain_of(name)
    return org / ("users" if "@" in name else "peers") / name / "msp"


def load_signer(crypto_root: Path, member: Member) -> SigningIdentity:
    """The member's signing identity; a clear InputError when its files are missing."""
    from msp.loader import load_signing_identity

    directory = msp_dir(crypto_root, member.name)
    if not directory.is_dir():
        raise InputError(f"{directory}: no identity for {member.name} (missing MSP directory)")
    try:
        signer = load_signing_identity(directory)
    except (MSPError, OSError, ValueError) as exc:
        raise InputError(f"{directory}: cannot load identity {member.name}: {exc}") from None
    if signer.mspid != member.mspid:
        raise InputError(
            f"{directory}: identity {member.name} belongs to {signer.mspid}, "
            f"but network.json says {member.mspid}"
        )
    return signer


class Directory(Mapping[int, Identity]):
    """Lazily loaded, MSP-validated public identities of every principal.

    A mapping, so it plugs into :class:`sim.world.auth.MspAuthenticator` as its
    principal table; unknown or invalid principals are simply absent.
    """

    def __init__(self, config: NetworkConfig, crypto_root: Path) -> None:
        self.config = config
        self.crypto_root = crypto_root
        self._cache: dict[int, Identity | None] = {}
        msps = []
        for domain in sorted({domain_of(m.name) for m in config.replicas + config.users}):
            org_msp = crypto_root / "peerOrganizations" / domain / "msp"
            try:
                msps.append(MSP.load(org_msp))
            except MSPError as exc:
                raise InputError(f"{org_msp}: {exc}") from None
        self.msps = MSPManager(msps)

    def member(self, principal: int) -> Member | None:
        if 0 <= principal < self.config.n:
            return self.config.replicas[principal]
        if principal >= CLIENT_ID_BASE:
            return self.config.user_of_client(principal)
        return None

    def __getitem__(self, principal: int) -> Identity:
        found = self.identity(principal)
        if found is None:
            raise KeyError(principal)
        return found

    def __iter__(self) -> Iterator[int]:
        return iter(p for p in self._cache if self._cache[p] is not None)

    def __len__(self) -> int:
        return sum(1 for v in self._cache.values() if v is not None)

    def identity(self, principal: int) -> Identity | None:
        """The validated identity of ``principal``, or None (unknown, unreadable, invalid)."""
        if principal in self._cache:
            return self._cache[principal]
        found: Identity | None = None
        member = self.member(principal)
        if member is not None:
            certs = sorted((msp_dir(self.crypto_root, member.name) / "signcerts").glob("*.pem"))
            try:
                candidate = self.msps.identity(member.mspid, certs[0].read_bytes())
                if self.msps.validate(candidate, datetime.now(UTC)).ok:
                    found = candidate
            except (IndexError, OSError, MSPError):
                found = None
        self._cache[principal] = found
        return found
