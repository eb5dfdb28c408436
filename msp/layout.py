"""The cryptogen directory tree: where each file goes and how it is written.

```
peerOrganizations/<domain>/
  ca/        ca.<domain>-cert.pem, priv_sk   (+ ica.<domain>-cert.pem, ica_sk)
  msp/       cacerts/ intermediatecerts/ admincerts/ crls/ config.yaml
  peers/<peer>/msp/   users/<User>@<domain>/msp/   (orderers/<node>/msp/)
             cacerts/ intermediatecerts/ signcerts/<name>-cert.pem keystore/priv_sk config.yaml
```

Private keys are written with mode 0600 from the moment the file exists.
This module knows files, not how the material was made: ``msp.ca`` hands it
each organisation's parts (``NetworkCrypto.write``), so the arrow runs one way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from msp.certs import Authority, common_name
from msp.identity import SigningIdentity
from msp.keys import PrivateKey, private_key_pem
from msp.names import ROLES

ORGS_DIR = "peerOrganizations"
ROOT_KEY = "priv_sk"
INTERMEDIATE_KEY = "ica_sk"
MEMBER_KEY = "priv_sk"
MEMBER_DIRS = {"peer": "peers", "orderer": "orderers", "admin": "users", "client": "users"}


def cert_file(cert: x509.Certificate) -> str:
    return f"{common_name(cert)}-cert.pem"


def crl_file(issuer: x509.Certificate) -> str:
    return f"{common_name(issuer)}-crl.pem"


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def write_file(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(path, 0o600)
    else:
        path.write_bytes(data)


def write_key(path: Path, key: PrivateKey) -> None:
    write_file(path, private_key_pem(key), private=True)


def node_ous_config(root: x509.Certificate) -> bytes:
    """Fabric's ``config.yaml`` enabling NodeOUs: the role is the subject's OU."""
    ca_path = f"cacerts/{cert_file(root)}"
    lines = ["NodeOUs:", "  Enable: true"]
    for role in ROLES:
        lines += [
            f"  {role.capitalize()}OUIdentifier:",
            f"    Certificate: {ca_path}",
            f"    OrganizationalUnitIdentifier: {role}",
        ]
    return ("\n".join(lines) + "\n").encode()


def write_trust(msp_dir: Path, root: Authority, intermediate: Authority | None) -> None:
    """The parts every MSP directory of an org shares: CA certificates and NodeOUs."""
    write_file(msp_dir / "cacerts" / cert_file(root.cert), cert_pem(root.cert))
    if intermediate is not None:
        ica = intermediate.cert
        write_file(msp_dir / "intermediatecerts" / cert_file(ica), cert_pem(ica))
    write_file(msp_dir / "config.yaml", node_ous_config(root.cert))


def member_msp_dir(org_dir: Path, member: SigningIdentity) -> Path:
    return org_dir / MEMBER_DIRS[member.role] / member.name / "msp"


def write_org(
    orgs_dir: Path,
    domain: str,
    root: Authority,
    intermediate: Authority | None,
    crls: Iterable[x509.CertificateRevocationList],
    members: Iterable[SigningIdentity],
) -> Path:
    """One organisation's tree under ``orgs_dir``; returns ``orgs_dir/<domain>``."""
    org_dir = orgs_dir / domain
    ca_dir = org_dir / "ca"
    write_authority(ca_dir, root, ROOT_KEY)
    if intermediate is not None:
        write_authority(ca_dir, intermediate, INTERMEDIATE_KEY)
    org_msp = org_dir / "msp"
    write_trust(org_msp, root, intermediate)
    (org_msp / "admincerts").mkdir(exist_ok=True)
    (org_msp / "crls").mkdir(exist_ok=True)
    authorities = [root.cert] + ([] if intermediate is None else [intermediate.cert])
    for crl in crls:
        issuer = next(a for a in authorities if a.subject == crl.issuer)
        for where in (org_msp / "crls", ca_dir):
            write_file(where / crl_file(issuer), crl_pem(crl))
    for member in members:
        msp_dir = member_msp_dir(org_dir, member)
        write_trust(msp_dir, root, intermediate)
        write_file(msp_dir / "signcerts" / cert_file(member.cert), member.cert_pem)
        write_key(msp_dir / "keystore" / MEMBER_KEY, member.private_key)
    return org_dir


def write_authority(ca_dir: Path, authority: Authority, key_file: str) -> None:
    write_file(ca_dir / cert_file(authority.cert), cert_pem(authority.cert))
    write_key(ca_dir / key_file, authority.key)
