"""Revoking a certificate on disk: the CA in ``ca/`` updates its CRL.

The CRL is written both next to the CA and into the organisation's
``msp/crls/``, which is what every verifier loads; a certificate issued by
the intermediate CA is revoked by the intermediate's own CRL.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography import x509

from msp.certs import Authority, issued_by
from msp.errors import MSPError
from msp.keys import load_private_key
from msp.layout import INTERMEDIATE_KEY, ROOT_KEY, crl_file, crl_pem, write_file
from msp.msp import read_pem_certificates


def _authorities(ca_dir: Path) -> list[Authority]:
    found = []
    for cert in read_pem_certificates(ca_dir, "*-cert.pem"):
        key_path = ca_dir / (ROOT_KEY if cert.issuer == cert.subject else INTERMEDIATE_KEY)
        if not key_path.is_file():
            raise MSPError(f"{key_path}: missing the private key of the CA in {ca_dir}")
        found.append(Authority(cert, load_private_key(key_path.read_bytes(), str(key_path))))
    if not found:
        raise MSPError(f"{ca_dir}: no CA certificate")
    return found


def revoke(
    ca_dir: str | Path, cert_path: str | Path, now: datetime | None = None
) -> x509.CertificateRevocationList:
    """Add the certificate at ``cert_path`` to its issuer's CRL and write the CRL out.

    ``now`` is the revocation date; without it the certificate's own start
    date is used, which keeps the result reproducible (the CLI passes the
    real time).
    """
    ca_path, target = Path(ca_dir), Path(cert_path)
    if not ca_path.is_dir():
        raise MSPError(f"{ca_path}: no such CA directory")
    if not target.is_file():
        raise MSPError(f"{target}: no such certificate file")
    try:
        cert = x509.load_pem_x509_certificate(target.read_bytes())
    except ValueError as exc:
        raise MSPError(f"{target}: not a PEM certificate ({exc})") from None
    issuer = next((a for a in _authorities(ca_path) if issued_by(cert, a.cert)), None)
    if issuer is None:
        raise MSPError(f"{target}: not issued by a CA in {ca_path}")
    name = crl_file(issuer.cert)
    previous = None
    if (ca_path / name).is_file():
        try:
            previous = x509.load_pem_x509_crl((ca_path / name).read_bytes())
        except ValueError as exc:
            raise MSPError(f"{ca_path / name}: not a CRL ({exc})") from None
    crl = issuer.revoke([cert.serial_number], now or cert.not_valid_before_utc, previous)
    for where in (ca_path, ca_path.parent / "msp" / "crls"):
        write_file(where / name, crl_pem(crl))
    return crl
