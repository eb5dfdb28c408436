"""Membership service provider: CAs, enrollment, identities, MSP validation, policies.

Imports only ``cryptography`` and the standard library, reads no clock: every
time-dependent check takes ``now`` from its caller.
"""

from msp.ca import NetworkCrypto, OrgCrypto, generate_network, generate_org
from msp.certs import FIXED_NOT_AFTER, FIXED_NOT_BEFORE, Authority, Validity
from msp.errors import MSPError, Verdict
from msp.identity import Identity, SigningIdentity
from msp.keys import ALGORITHMS, ECDSA_P256, ED25519, KeySource
from msp.loader import load_network, load_signing_identity
from msp.msp import MSP, SIM_EPOCH, MSPManager, at_virtual_ms
from msp.names import ROLES, replica_peer_name
from msp.policy import AND, OR, OutOf, Policy, PolicyError, Principal, parse
from msp.revocation import revoke

__all__ = [
    "ALGORITHMS",
    "AND",
    "ECDSA_P256",
    "ED25519",
    "FIXED_NOT_AFTER",
    "FIXED_NOT_BEFORE",
    "MSP",
    "OR",
    "ROLES",
    "SIM_EPOCH",
    "Authority",
    "Identity",
    "KeySource",
    "MSPError",
    "MSPManager",
    "NetworkCrypto",
    "OrgCrypto",
    "OutOf",
    "Policy",
    "PolicyError",
    "Principal",
    "SigningIdentity",
    "Validity",
    "Verdict",
    "at_virtual_ms",
    "generate_network",
    "generate_org",
    "load_network",
    "load_signing_identity",
    "parse",
    "replica_peer_name",
    "revoke",
]
