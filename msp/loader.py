"""Reading a cryptogen tree back: the live network and the CLI start from files.

Organisations are named after their domain (``org1.example.com`` -> ``Org1``)
and members after their certificate's CN; nothing but the tree is needed.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from msp.ca import NetworkCrypto, OrgCrypto
from msp.certs import Authority
from msp.errors import MSPError
from msp.identity import SigningIdentity
from msp.keys import load_private_key
from msp.layout import INTERMEDIATE_KEY, MEMBER_DIRS, ORGS_DIR, ROOT_KEY
from msp.msp import MSP, read_crls, read_pem_certificates
from msp.names import member_order, mspid_from_domain, natural_key


def _only(items: list[x509.Certificate], where: Path) -> x509.Certificate:
    if len(items) != 1:
        raise MSPError(f"{where}: expected exactly one certificate, found {len(items)}")
    return items[0]


def _key_file(directory: Path) -> Path:
    keys = sorted(p for p in directory.iterdir() if p.is_file()) if directory.is_dir() else []
    if len(keys) != 1:
        raise MSPError(f"{directory}: expected exactly one private key, found {len(keys)}")
    return keys[0]


def load_signing_identity(msp_dir: str | Path, mspid: str | None = None) -> SigningIdentity:
    """The member whose ``signcerts/`` and ``keystore/`` are in ``msp_dir``.

    Without ``mspid`` it is named after the CA's organisation, like ``MSP.load``.
    """
    path = Path(msp_dir)
    if not path.is_dir():
        raise MSPError(f"{path}: no such MSP directory")
    cert = _only(read_pem_certificates(path / "signcerts"), path / "signcerts")
    key_path = _key_file(path / "keystore")
    key = load_private_key(key_path.read_bytes(), str(key_path))
    if mspid is None:
        mspid = MSP.load(path).mspid
    return SigningIdentity(mspid, cert, key)


def _authority(ca_dir: Path, cert: x509.Certificate, key_name: str) -> Authority:
    key_path = ca_dir / key_name
    if not key_path.is_file():
        raise MSPError(f"{key_path}: missing CA private key")
    return Authority(cert, load_private_key(key_path.read_bytes(), str(key_path)))


def load_org(org_dir: Path) -> OrgCrypto:
    mspid = mspid_from_domain(org_dir.name)
    trust = MSP.load(org_dir / "msp", mspid)
    ca_dir = org_dir / "ca"
    root = _authority(ca_dir, _only(list(trust.roots), org_dir / "msp" / "cacerts"), ROOT_KEY)
    intermediate = None
    if trust.intermediates:
        ica = _only(list(trust.intermediates), org_dir / "msp" / "intermediatecerts")
        intermediate = _authority(ca_dir, ica, INTERMEDIATE_KEY)
    members = []
    for kind in dict.fromkeys(MEMBER_DIRS.values()):
        kind_dir = org_dir / kind
        if kind_dir.is_dir():
            for member_dir in kind_dir.iterdir():
                members.append(load_signing_identity(member_dir / "msp", mspid))
    members.sort(key=lambda m: member_order(m.name, m.role))
    return OrgCrypto(
        mspid,
        org_dir.name,
        root,
        intermediate,
        tuple(members),
        tuple(read_crls(org_dir / "msp" / "crls")),
    )


def load_network(directory: str | Path) -> NetworkCrypto:
    """A tree written by ``NetworkCrypto.write`` (or cryptogen): ``directory`` may be
    the output directory or its ``peerOrganizations/``."""
    path = Path(directory)
    orgs_dir = path if path.name == ORGS_DIR else path / ORGS_DIR
    if not orgs_dir.is_dir():
        raise MSPError(f"{path}: no {ORGS_DIR}/ directory")
    org_dirs = sorted(
        (p for p in orgs_dir.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)
    )
    if not org_dirs:
        raise MSPError(f"{orgs_dir}: no organisations")
    return NetworkCrypto(tuple(load_org(d) for d in org_dirs))
