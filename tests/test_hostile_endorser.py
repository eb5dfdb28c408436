"""The endorser's own checks of a proposal, apart from the validator that would catch it later.

Refusing early matters: an endorser that simulated for a revoked creator would
hand out signed results (and read the state on its behalf). The hostile creators
themselves are in tests/test_hostile_identities.py (status 403 and
``creator rejected: <the MSP's reason>`` for each); here, valid members sending
proposals that are wrong in other ways, and proposals whose tx id the ledger
already holds because an envelope with it was committed, valid or not.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaincode.endorser import (
    STATUS_BAD_REQUEST,
    STATUS_CONFLICT,
    STATUS_FORBIDDEN,
    STATUS_NOT_FOUND,
    Endorser,
)
from ledger.codec import encode
from ledger.peer import PeerLedger
from ledger.transaction import STATUS_OK, ProposalResponse, SignedProposal, TxHeader
from msp.identity import SigningIdentity
from sim.explore.hostile import BUILDERS, CHANNEL, ESTABLISHING, HostileChannel, serialized
from sim.explore.hostile_identities import NOW_MS, identity_pool


def fresh_ledger() -> PeerLedger:
    return PeerLedger(HostileChannel(identity_pool()).config(), lambda item: item)


def process(raw: bytes, signature: bytes, ledger: PeerLedger | None = None) -> ProposalResponse:
    pool = identity_pool()
    endorser = Endorser(pool.peer("Org2"), ledger or fresh_ledger(), pool.manager(), CHANNEL)
    return endorser.process(SignedProposal(raw, signature), NOW_MS)


def user() -> SigningIdentity:
    return identity_pool().user("Org1")


def header(label: str) -> TxHeader:
    """The header the generators give the honest user's transaction ``label``."""
    return HostileChannel(identity_pool()).header(serialized(user()), label, key=label)


def signed_by_user(h: TxHeader) -> tuple[bytes, bytes]:
    raw = encode(h)
    return raw, user().sign(raw)


def test_honest_proposal_is_endorsed() -> None:
    """Control: the same endorser and ledger endorse a correct proposal."""
    response = process(*signed_by_user(header("ok")))
    assert (response.status, response.message) == (STATUS_OK, "")
    assert response.result is not None and response.endorsement is not None
    peer = identity_pool().peer("Org2")
    assert peer.verify(encode(response.result), response.endorsement.signature)


def test_proposal_signed_by_another_member_is_refused() -> None:
    """A valid creator field, but the signature is another member's, or truncated.

    Defeats mutant ``endorser-signature-unchecked``.
    """
    raw, signature = signed_by_user(header("forged"))
    other = identity_pool().user("Org2").sign(raw)
    for bad in (other, signature[:-1], b""):
        response = process(raw, bad)
        assert (response.status, response.message) == (STATUS_FORBIDDEN, "bad proposal signature")
        assert response.result is None and response.endorsement is None


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        (
            {"tx_id": "f" * 64},
            STATUS_BAD_REQUEST,
            "transaction id does not match nonce and creator",
        ),
        ({"channel": "elsewhere"}, STATUS_NOT_FOUND, "channel 'elsewhere' not found"),
        ({"chaincode": "nope"}, STATUS_NOT_FOUND, "chaincode 'nope' is not deployed"),
    ],
)
def test_wrong_proposal_of_a_valid_member_is_refused(
    changes: dict[str, str], status: int, message: str
) -> None:
    """Defeats mutant ``endorser-tx-id-unchecked`` (first case)."""
    response = process(*signed_by_user(replace(header("wrong"), **changes)))  # type: ignore[arg-type]
    assert (response.status, response.message) == (status, message)
    assert response.result is None and response.endorsement is None


def test_undecodable_proposal_is_a_bad_request() -> None:
    response = process(b"\x93garbage", b"")
    assert response.status == STATUS_BAD_REQUEST
    assert response.message.startswith("malformed proposal (")


USER_HEADER_KINDS = (
    "honest",
    "reordered-endorsements",
    "replayed-endorsements",
    "truncated-endorsements",
    "duplicate-writes",
    "failed-response",
    "foreign-namespace",
    "stale-read",
    "phantom-range",
    "creator-signature-by-another",
    "truncated-envelope",
)
"""Kinds whose envelope carries :func:`header` of its label unchanged."""


@pytest.mark.parametrize("kind", USER_HEADER_KINDS)
def test_committed_tx_id_is_a_conflict_only_if_established(kind: str) -> None:
    """After the envelope is committed, the endorser refuses a proposal with its tx id
    exactly when validation established that id (any code from the creator check on,
    VALID or not); an envelope that failed before that leaves the id free, so a forger
    cannot squat on a victim's id.

    Defeats mutant ``endorser-duplicate-unchecked``.
    """
    pool = identity_pool()
    tx = BUILDERS[kind](HostileChannel(pool), "seen", pool.hostile["revoked"])
    ledger = fresh_ledger()
    code = ledger.commit(1, (tx.item,), timestamp_ms=NOW_MS).codes[0]
    assert code is tx.expected
    h = header("seen")
    response = process(*signed_by_user(h), ledger)
    if code in ESTABLISHING:
        assert (response.status, response.message) == (
            STATUS_CONFLICT,
            f"duplicate transaction id {h.tx_id}",
        )
    else:
        assert response.status == STATUS_OK
