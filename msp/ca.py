"""Generating a whole network's identities in memory, the way cryptogen would.

One root CA per organisation (optionally an intermediate that does the
issuing), then peers, admins and client users enrolled under it. With a seed
the result is a pure function of the arguments: keys, serial numbers and
signatures are all derived or deterministic and validity dates are fixed, so
simulations can build their identities afresh each run and still replay byte
for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path

from cryptography import x509

from msp.certs import Authority, Validity
from msp.errors import MSPError
from msp.identity import SigningIdentity
from msp.keys import ECDSA_P256, KeySource, algorithm_of, check_algorithm
from msp.layout import ORGS_DIR, write_org
from msp.msp import MSP, MSPManager
from msp.names import (
    ROLES,
    admin_name,
    ca_name,
    intermediate_ca_name,
    org_domain,
    org_mspid,
    peer_name,
    replica_org_and_peer,
    replica_peer_name,
    user_name,
)

NODE_ROLES = ("peer", "orderer")
"""Roles whose certificates name a host, so they get a DNS subject alternative name."""


@dataclass(frozen=True)
class OrgCrypto:
    """One organisation: its CAs, revocation lists and enrolled members."""

    mspid: str
    domain: str
    root: Authority
    intermediate: Authority | None = None
    members: tuple[SigningIdentity, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()

    @property
    def issuer(self) -> Authority:
        """The CA that signs enrollment certificates."""
        return self.intermediate or self.root

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.root.key)

    def msp(self) -> MSP:
        intermediates = () if self.intermediate is None else (self.intermediate.cert,)
        return MSP(self.mspid, (self.root.cert,), intermediates, self.crls)

    def enroll(
        self,
        name: str,
        role: str,
        keys: KeySource,
        validity: Validity | None = None,
        algorithm: str | None = None,
    ) -> SigningIdentity:
        """A new member certificate signed by :attr:`issuer`; the org is not changed.

        ``validity`` other than the default gives e.g. short-lived certificates.
        """
        if role not in ROLES:
            raise MSPError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
        key = keys.key(check_algorithm(algorithm or self.algorithm), name)
        cert = self.issuer.enroll(
            key.public_key(),
            self.domain,
            name,
            role,
            keys.serial(name),
            validity or Validity(),
            dns_names=(name,) if role in NODE_ROLES else (),
        )
        return SigningIdentity(self.mspid, cert, key)

    def with_members(self, members: Iterable[SigningIdentity]) -> OrgCrypto:
        return replace(self, members=self.members + tuple(members))

    def revoking(self, *identities: SigningIdentity, when: datetime) -> OrgCrypto:
        """This org with ``identities`` added to its issuer's CRL (in memory)."""
        subject = self.issuer.cert.subject
        previous = next((c for c in self.crls if c.issuer == subject), None)
        crl = self.issuer.revoke((i.cert.serial_number for i in identities), when, previous)
        return replace(self, crls=(*(c for c in self.crls if c is not previous), crl))


@dataclass(frozen=True)
class NetworkCrypto:
    """Every organisation's crypto material; write it out or use it directly."""

    orgs: tuple[OrgCrypto, ...]
    _by_name: dict[str, SigningIdentity] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, SigningIdentity] = {}
        for member in self.members():
            if member.name in by_name:
                raise MSPError(f"two identities named {member.name!r}")
            by_name[member.name] = member
        object.__setattr__(self, "_by_name", by_name)

    @property
    def algorithm(self) -> str:
        return self.orgs[0].algorithm if self.orgs else ECDSA_P256

    def members(self) -> Iterator[SigningIdentity]:
        for org in self.orgs:
            yield from org.members

    def org(self, mspid: str) -> OrgCrypto:
        for org in self.orgs:
            if org.mspid == mspid:
                return org
        raise MSPError(f"no organisation {mspid!r}")

    def signer(self, name: str) -> SigningIdentity:
        try:
            return self._by_name[name]
        except KeyError:
            raise MSPError(f"no identity named {name!r}") from None

    def identities(self) -> list[tuple[str, str, str]]:
        """``(name, mspid, role)`` of every member, in generation order."""
        return [(m.name, m.mspid, m.role) for m in self.members()]

    @cached_property
    def _manager(self) -> MSPManager:
        return MSPManager(org.msp() for org in self.orgs)

    def msps(self) -> MSPManager:
        """One shared manager, so every user of this network shares its caches."""
        return self._manager

    def peer_name(self, replica_id: int, orgs: int | None = None) -> str:
        """The peer that replica ``replica_id`` runs as (round-robin over the orgs)."""
        return replica_peer_name(replica_id, len(self.orgs) if orgs is None else orgs)

    def replica_signer(self, replica_id: int) -> SigningIdentity:
        org, peer = replica_org_and_peer(replica_id, len(self.orgs))
        return self.signer(peer_name(peer, org))

    def replace_org(self, org: OrgCrypto) -> NetworkCrypto:
        return NetworkCrypto(tuple(org if o.mspid == org.mspid else o for o in self.orgs))

    def write(self, out_dir: str | Path) -> Path:
        """Write the cryptogen tree under ``out_dir``; returns ``out_dir/peerOrganizations``."""
        orgs_dir = Path(out_dir) / ORGS_DIR
        for org in self.orgs:
            write_org(orgs_dir, org.domain, org.root, org.intermediate, org.crls, org.members)
        return orgs_dir


def generate_org(
    org: int,
    peers: int,
    users: int,
    algorithm: str = ECDSA_P256,
    seed: bytes | None = None,
    *,
    admins: int = 1,
    intermediate: bool = False,
) -> OrgCrypto:
    """Organisation number ``org`` (1-based) with its CA(s) and members."""
    check_algorithm(algorithm)
    keys = KeySource(seed)
    domain = org_domain(org)
    root_cn = ca_name(domain)
    root_key = keys.key(algorithm, root_cn)
    root = Authority.root(root_key, domain, root_cn, keys.serial(root_cn), Validity())
    ica = None
    if intermediate:
        ica_cn = intermediate_ca_name(domain)
        ica_key = keys.key(algorithm, ica_cn)
        ica = root.intermediate(ica_key, domain, ica_cn, keys.serial(ica_cn), Validity())
    result = OrgCrypto(org_mspid(org), domain, root, ica)
    wanted = [(peer_name(p, org), "peer") for p in range(peers)]
    wanted += [(admin_name(a, domain), "admin") for a in range(1, admins + 1)]
    wanted += [(user_name(u, domain), "client") for u in range(1, users + 1)]
    return result.with_members(result.enroll(name, role, keys) for name, role in wanted)


def generate_network(
    orgs: int,
    peers: int,
    users: int,
    algorithm: str = ECDSA_P256,
    seed: bytes | None = None,
    *,
    admins: int = 1,
    intermediate: bool = False,
) -> NetworkCrypto:
    """Identities for ``orgs`` organisations (``Org1``..), each with ``peers``
    peers, ``admins`` admins and ``users`` client users."""
    if orgs < 1 or peers < 0 or users < 0 or admins < 0:
        raise MSPError(
            f"need orgs >= 1 and peers, users, admins >= 0; got {orgs}, {peers}, {users}, {admins}"
        )
    return NetworkCrypto(
        tuple(
            generate_org(
                org, peers, users, algorithm, seed, admins=admins, intermediate=intermediate
            )
            for org in range(1, orgs + 1)
        )
    )
