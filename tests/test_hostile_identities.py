"""Hostile identities are refused with their exact reason by the MSP, by the endorser
(before simulating anything) and by commit-time validation.

The certificate chains go above the end certificate: members issued by an
intermediate CA that its root has revoked, by one that has expired or is not yet
valid, by one the MSP does not list; certificates with several NodeOU roles or
none; impostor CAs whose names (and even forged key identifiers) collide with a
trusted root. Each property's docstring names the mutant it defeats
(``tests/fabric_mutants.py``); the properties take no fixtures so the mutant tests
can call them.
"""

from __future__ import annotations

from hypothesis import given, settings

from chaincode.endorser import STATUS_FORBIDDEN, Endorser
from ledger.codec import encode
from ledger.peer import PeerLedger
from ledger.transaction import SignedProposal
from msp.identity import SigningIdentity
from sim.explore.hostile import BUILDERS, CHANNEL, HostileChannel
from sim.explore.hostile_identities import (
    NOW,
    NOW_MS,
    HostileIdentity,
    honest_members,
    hostile_identities,
    identity_pool,
)

FAST = settings(max_examples=30, deadline=None)


def check_refused(hostile: HostileIdentity) -> None:
    """Refused everywhere it can be presented, always for the same stated reason."""
    pool = identity_pool()
    manager = pool.manager()
    verdict = manager.validate(hostile.signer, NOW)
    assert (verdict.ok, verdict.reason) == (False, hostile.reason), hostile.kind
    signed = manager.authenticate(
        hostile.signer.mspid, hostile.signer.cert_pem, b"x", hostile.signer.sign(b"x"), NOW
    )
    assert not signed.ok and hostile.reason in signed.reason
    channel = HostileChannel(pool)
    ledger = PeerLedger(channel.config(), lambda item: item)
    endorser = Endorser(pool.peer("Org1"), ledger, pool.manager(), CHANNEL)
    header = channel.header(hostile.serialized, "refused", key="refused")
    raw = encode(header)
    response = endorser.process(SignedProposal(raw, hostile.signer.sign(raw)), NOW_MS)
    assert (response.status, response.message) == (
        STATUS_FORBIDDEN,
        f"creator rejected: {hostile.reason}",
    )
    assert response.result is None and response.endorsement is None
    for kind, code in (
        ("hostile-creator", "BAD_CREATOR_SIGNATURE"),
        ("hostile-endorser", "ENDORSEMENT_POLICY_FAILURE"),
    ):
        tx = BUILDERS[kind](channel, "t", hostile)
        ledger = PeerLedger(channel.config(), lambda item: item)
        result = ledger.commit(1, (tx.item,), timestamp_ms=NOW_MS)
        assert [c.name for c in result.codes] == [code], (kind, hostile.kind)


def check_refused_kinds(*kinds: str) -> None:
    @FAST
    @given(hostile=hostile_identities(kinds))
    def run(hostile: HostileIdentity) -> None:
        check_refused(hostile)

    run()


@settings(max_examples=60, deadline=None)
@given(hostile=hostile_identities())
def test_every_hostile_identity_is_refused_with_its_reason(hostile: HostileIdentity) -> None:
    """The whole catalogue: MSP, endorser and validator agree, with the same reason.

    Defeats mutant ``endorser-creator-unchecked`` (the endorser simulates for a creator
    the MSP refused, leaving the refusal to commit time).
    """
    check_refused(hostile)


@FAST
@given(member=honest_members())
def test_honest_members_pass_everywhere(member: SigningIdentity) -> None:
    """Control: the pool's honest members (under the root and under the live
    intermediate) are valid with their own role, so refusals above are not a broken pool."""
    manager = identity_pool().manager()
    assert manager.validate(member, NOW).ok
    assert manager.validate(member, NOW, role=member.role).ok


def test_members_under_a_revoked_intermediate_are_refused() -> None:
    """The root's CRL revokes an intermediate CA: every member it issued is refused, with
    the intermediate's serial named; a member revoked by the intermediate's own CRL too.

    Defeats mutant ``crl-checked-for-end-certificate-only``.
    """
    check_refused_kinds("issuer-revoked", "revoked-by-intermediate", "revoked")


def test_members_of_an_expired_or_future_issuer_are_refused() -> None:
    """An issuing CA that has expired, or is not yet valid, bounds its members' validity.

    Defeats mutants ``issuer-expiry-ignored``, ``issuer-start-ignored`` and
    ``not-after-unchecked``.
    """
    check_refused_kinds("issuer-expired", "issuer-not-yet-valid", "expired", "not-yet-valid")


def test_several_roles_or_none_is_no_role() -> None:
    """Two or three NodeOU roles in one subject, no OU, or an unknown OU: no role at all.

    Defeats mutant ``first-of-several-roles`` (the first known OU wins, so a certificate
    reading client+admin would act as a client, or as an admin in another order).
    """
    check_refused_kinds("two-roles", "three-roles", "no-role", "unknown-role")


def test_names_colliding_with_a_trusted_ca_are_refused() -> None:
    """An impostor CA with the trusted root's exact subject (and, for one member, its key
    identifier forged into the AKI), a certificate named like the root itself, a CA
    certificate used as an identity, another org's certificate under this MSP id, an
    intermediate the MSP does not list.

    Defeats mutants ``issuer-matched-by-name`` (an issuer found by subject alone) and
    ``ca-certificate-accepted`` (the root's own certificate then fails only for lack of
    a role: the exact reason tells the two apart).
    """
    check_refused_kinds(
        "impostor-ca",
        "impostor-ca-forged-aki",
        "named-like-root",
        "ca-certificate",
        "other-org",
        "issuer-unlisted",
        "unknown-msp",
    )
