"""Who may call the gateway: the members of the network's MSP tree, by certificate only.

The gateway reads ``crypto/peerOrganizations/<domain>/users/<name>/msp/signcerts``
and nothing else of a member's directory: it never opens a keystore. Each
certificate is checked by the channel's MSPs before it is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from msp import names
from msp.errors import MSPError
from msp.identity import Identity
from msp.msp import MSPManager


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    mspid: str
    role: str
    identity: Identity

    @property
    def ecdsa(self) -> bool:
        """Whether the member signs with ECDSA (a browser's raw signatures need DER)."""
        return isinstance(self.identity.public_key, ec.EllipticCurvePublicKey)


def load_members(crypto_dir: Path, msps: MSPManager) -> dict[str, Member]:
    """Every user and admin certificate of the tree that the MSPs accept, by name."""
    members: dict[str, Member] = {}
    for org_dir in sorted((crypto_dir / "peerOrganizations").iterdir()):
        mspid = names.mspid_from_domain(org_dir.name)
        for cert in sorted(org_dir.glob("users/*/msp/signcerts/*.pem")):
            try:
                identity = msps.identity(mspid, cert.read_bytes())
            except (MSPError, OSError):
                continue
            members[identity.name] = Member(identity.name, mspid, identity.role, identity)
    return members
