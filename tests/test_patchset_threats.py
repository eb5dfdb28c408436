"""The patchset contract against the TUF/Uptane threat model, one rule per test.

Each test names the attack it stops; docs/patchset.md's threat table points
here. The client side of some defences (checking a release proof offline,
refusing a stale answer by a verified block's time) is not in the contract
and is not claimed here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_ledger_fixtures import PEERS as LEDGER_PEERS
from test_ledger_fixtures import Net as LedgerNet
from test_ledger_fixtures import network as ledger_network
from test_patchset import Net, manifest, refused

from chaincode.patchset import manifest_to_json, sign_manifest
from chaincode.shim import ContractError, Creator
from chaincode.testing import CreatorRejected, creator_of, with_attributes
from msp.ca import NetworkCrypto, generate_network
from msp.certs import FIXED_NOT_BEFORE

ADMIN1 = "Admin@org1.example.com"
ADMIN1B = "Admin2@org1.example.com"
ADMIN1C = "Admin3@org1.example.com"
ADMIN2 = "Admin@org2.example.com"
ADMIN2B = "Admin2@org2.example.com"
USER1 = "User1@org1.example.com"
USER2 = "User2@org1.example.com"
SHA = "ab" * 32
DAY = 86_400_000


@pytest.fixture(scope="module")
def crypto() -> NetworkCrypto:
    return generate_network(2, 1, 2, seed=b"patchset-threats", admins=3)


@pytest.fixture
def net(crypto: NetworkCrypto) -> Net:
    return Net(crypto)


def withdraw_by_two(net: Net, version: str, name: str = "openssl") -> Any:
    net.call(ADMIN1, "withdraw", name, version, "regression")
    return net.call(ADMIN2, "withdraw", name, version, "regression")


def install(net: Net, who: str, version: str, name: str = "openssl") -> None:
    net.fetch(who, name, version)
    net.call(who, "report", name, version, "installed", "true")


# ----------------------------------------------------------------- key compromise: revocation


def test_a_revoked_admin_can_neither_upload_nor_approve(net: Net) -> None:
    net.upload(manifest(version="1.0"), who=ADMIN2)
    org1 = net.crypto.org("Org1")
    revoked = org1.revoking(net.crypto.signer(ADMIN1), when=FIXED_NOT_BEFORE)
    net.msps.msp("Org1").add_crl(revoked.crls[-1])
    before = dict(net.h.world.values)
    with pytest.raises(CreatorRejected, match=r"revoked by ca\.org1\.example\.com"):
        net.upload(manifest(version="1.1"))
    with pytest.raises(CreatorRejected, match="revoked"):
        net.call(ADMIN1, "approve", "openssl", "1.0")
    assert net.h.world.values == before
    # The organisation's other administrators are untouched by the CRL.
    assert net.call(ADMIN1B, "approve", "openssl", "1.0")["status"] == "released"


def test_a_creator_must_be_what_its_certificate_says(net: Net) -> None:
    user = net.crypto.signer(USER1)
    net.creators[USER1] = Creator(user.mspid, "admin", user.name, user.cert_pem)
    with pytest.raises(CreatorRejected, match=r"claims admin .* certificate says client"):
        net.call(USER1, "history", "openssl")
    stranger = generate_network(1, 0, 1, seed=b"another CA").signer(USER1)
    net.creators[USER1] = creator_of(stranger)
    with pytest.raises(CreatorRejected, match=r"unknown CA|does not verify"):
        net.call(USER1, "catalog")


# ----------------------------------------------------------------- fast-forward freeze


def test_a_pending_proposal_does_not_spend_its_version_number(net: Net) -> None:
    net.upload(manifest(version="999999999.999999999"))  # one admin, never approved
    net.release(manifest(version="1.1"), who=ADMIN1B)
    rows = net.call(USER1, "catalog")["patches"]
    assert [(r["version"], r["status"]) for r in rows] == [
        ("1.1", "released"),
        ("999999999.999999999", "pending"),
    ]


def test_the_deployer_retracting_a_proposal_frees_its_number(net: Net) -> None:
    net.upload(manifest(version="2.0"))
    with pytest.raises(ContractError, match="already pending"):
        net.upload(manifest(version="2.0"), who=ADMIN1B)
    out = net.call(ADMIN1, "withdraw", "openssl", "2.0", "wrong build")
    assert out["status"] == "withdrawn"
    again = net.upload(manifest(version="2.0", file__sha256="cd" * 32), who=ADMIN1B)
    assert (again["status"], again["deployer"]) == ("pending", ADMIN1B)


def test_one_release_may_not_jump_past_the_cap(crypto: NetworkCrypto) -> None:
    net = Net(crypto)
    net.release(manifest(version="1.0"))
    with pytest.raises(ContractError, match=r"jumps 101 past the highest release 1\.0"):
        net.upload(manifest(version="102.0"))
    net.release(manifest(version="101.5.999999999"))  # later parts are free
    wide = Net(crypto, max_version_jump=1_000_000_000)
    wide.release(manifest(version="1.0"))
    assert wide.upload(manifest(version="999999999.0"))["status"] == "pending"


def test_a_proposal_overtaken_by_a_higher_release_cannot_be_released(net: Net) -> None:
    net.upload(manifest(version="1.5"))
    net.release(manifest(version="2.0"), who=ADMIN1B)
    refused(net, ADMIN2, "approve", "openssl", "1.5", match="not higher than the highest released")


# ----------------------------------------------------------------- thresholds and roles


def test_one_admin_cannot_withdraw_a_release_alone(net: Net) -> None:
    net.release(manifest(version="1.0"))
    net.enroll(USER1, ["finance"])
    out = net.call(ADMIN1, "withdraw", "openssl", "1.0", "I say so")
    assert (out["status"], len(out["withdrawal"]["signoffs"])) == ("released", 1)
    again = net.call(ADMIN1, "withdraw", "openssl", "1.0", "I say so again")
    assert "counted once" in again["note"]
    assert net.call(USER1, "metadata", "openssl")["manifest"]["version"] == "1.0"
    assert net.call(ADMIN2, "withdraw", "openssl", "1.0", "agreed")["status"] == "withdrawn"
    refused(net, USER1, "metadata", "openssl", match="no released version")


def test_a_pending_proposal_needs_k_to_withdraw_unless_its_deployer_retracts(net: Net) -> None:
    net.upload(manifest(version="1.0"))
    assert net.call(ADMIN2, "withdraw", "openssl", "1.0", "veto")["status"] == "pending"
    assert net.call(ADMIN1B, "withdraw", "openssl", "1.0", "veto")["status"] == "withdrawn"


def test_threshold_three_needs_two_approvers_besides_the_deployer(crypto: NetworkCrypto) -> None:
    net = Net(crypto, approvals_required=3)
    net.upload(manifest())
    assert net.call(ADMIN2, "approve", "openssl", "1.0.1")["status"] == "pending"
    assert net.call(ADMIN1B, "approve", "openssl", "1.0.1")["status"] == "released"


def test_distinct_orgs_option_refuses_one_orgs_admins_alone(crypto: NetworkCrypto) -> None:
    net = Net(crypto, distinct_orgs=True)
    net.upload(manifest())
    out = net.call(ADMIN1B, "approve", "openssl", "1.0.1")
    assert (out["status"], out["signoffs"]) == ("pending", 2)
    net.enroll(USER1, ["finance"])
    refused(net, USER1, "metadata", "openssl", "1.0.1", match="from 1 of 2 distinct organisations")
    assert net.call(ADMIN2, "approve", "openssl", "1.0.1")["status"] == "released"
    net.call(ADMIN1, "withdraw", "openssl", "1.0.1", "bad")
    assert net.call(ADMIN1C, "withdraw", "openssl", "1.0.1", "bad")["status"] == "released"
    assert net.call(ADMIN2B, "withdraw", "openssl", "1.0.1", "bad")["status"] == "withdrawn"


def _with_role(net: Net, name: str, role: str) -> None:
    org = net.crypto.org(net.crypto.signer(name).mspid)
    member = with_attributes(org, net.crypto.signer(name), {"patchset.role": role})
    net.creators[name] = creator_of(member)


def test_attribute_roles_separate_deployers_from_approvers(crypto: NetworkCrypto) -> None:
    net = Net(crypto, roles="attribute")
    _with_role(net, ADMIN1, "deployer")
    _with_role(net, ADMIN1B, "deployer")
    _with_role(net, ADMIN2, "approver")
    m = manifest()
    refused(
        net,
        ADMIN2B,  # an administrator without the attribute
        "upload",
        json.dumps(manifest_to_json(m)),
        sign_manifest(crypto.signer(ADMIN2B), m),
        match=r"requires the certificate attribute patchset.role=deployer; .* has none",
    )
    refused(
        net,
        ADMIN2,
        "upload",
        json.dumps(manifest_to_json(m)),
        sign_manifest(crypto.signer(ADMIN2), m),
        match="patchset.role=deployer; Admin@org2.example.com has approver",
    )
    net.upload(m)
    refused(net, ADMIN1B, "approve", "openssl", "1.0.1", match="role=approver; .* has deployer")
    assert net.call(ADMIN2, "approve", "openssl", "1.0.1")["status"] == "released"
    refused(net, ADMIN2B, "withdraw", "openssl", "1.0.1", "no", match="deployer or approver")
    net.call(ADMIN2, "withdraw", "openssl", "1.0.1", "bad")
    assert net.call(ADMIN1B, "withdraw", "openssl", "1.0.1", "bad")["status"] == "withdrawn"


# ----------------------------------------------------------------- rollback / no downgrade


def test_a_device_is_never_sent_below_its_installed_version(net: Net) -> None:
    net.release(manifest(version="1.0"))
    net.release(manifest(version="1.1"))
    net.enroll(USER1, ["finance"])
    net.enroll(USER2, ["finance"])
    install(net, USER1, "1.1")
    withdraw_by_two(net, "1.1")
    refused(net, USER1, "metadata", "openssl", match="has openssl 1.1 installed; it is never sent")
    refused(net, USER1, "download", "openssl", "1.0", SHA, match="no downgrade")
    # A device that never had 1.1 is offered the newest release left.
    assert net.call(USER2, "metadata", "openssl")["manifest"]["version"] == "1.0"
    rows = {r["user_id"]: r for r in net.call(ADMIN1, "compliance")["rows"]}
    mine = rows[f"Org1/{USER1}"]
    assert (mine["version"], mine["status"], mine["installed_version"]) == (
        "1.0",
        "installed",
        "1.1",
    )
    assert rows[f"Org1/{USER2}"]["status"] == "missing"


def test_compliance_judges_against_the_newest_mandatory_release_for_the_group(net: Net) -> None:
    net.release(manifest(version="1.0", targets={"groups": ["finance", "hr"]}))
    net.release(manifest(version="1.1", targets={"groups": ["hr"]}))
    net.release(
        manifest(version="1.2", policy__install="optional", targets={"groups": ["finance", "hr"]})
    )
    net.enroll(USER1, ["finance"])
    net.enroll(USER2, ["hr"])
    rows = {r["user_id"]: r["version"] for r in net.call(ADMIN1, "compliance")["rows"]}
    assert rows == {f"Org1/{USER1}": "1.0", f"Org1/{USER2}": "1.1"}
    install(net, USER2, "1.2")  # a newer optional install supersedes the mandatory one
    statuses = {r["user_id"]: r["status"] for r in net.call(ADMIN1, "compliance")["rows"]}
    assert statuses == {f"Org1/{USER1}": "missing", f"Org1/{USER2}": "installed"}


# ----------------------------------------------------------------- honest logs


def test_metadata_writes_nothing_and_download_needs_the_verified_hash(net: Net) -> None:
    net.release(manifest(version="1.0"))
    net.enroll(USER1, ["finance"])
    before = dict(net.h.world.values)
    net.call(USER1, "metadata", "openssl")
    assert net.h.world.values == before
    refused(net, USER1, "download", "openssl", "1.0", match="call metadata.* first")
    refused(net, USER1, "download", "openssl", "1.0", "cd" * 32, match="does not match")
    refused(net, USER1, "report", "openssl", "1.0", "installed", "true", match="no verified")
    out = net.fetch(USER1, "openssl", "1.0")
    assert (out["logged"], out["download"]["sha256"], out["download"]["verified"]) == (
        True,
        SHA,
        True,
    )


def test_an_install_report_refers_to_the_received_hash(net: Net) -> None:
    net.release(manifest(version="1.0"))
    net.enroll(USER1, ["finance"])
    net.fetch(USER1, "openssl", "1.0")
    refused(
        net, USER1, "report", "openssl", "1.0", "installed", "true", "", "cd" * 32,
        match="is not the verified file",
    )  # fmt: skip
    out = net.call(USER1, "report", "openssl", "1.0", "installed", "true", "", SHA)
    assert out["sha256"] == SHA
    assert net.call(USER1, "report", "openssl", "1.0", "failed", "true")["sha256"] == SHA


def test_unwrite_policy_leaves_no_download_record(net: Net) -> None:
    net.release(manifest(version="1.0", policy__log="unwrite"))
    net.enroll(USER1, ["finance"])
    before = dict(net.h.world.values)
    out = net.fetch(USER1, "openssl", "1.0")
    assert (out["logged"], out["download"]) == (False, None)
    assert net.h.world.values == before
    net.call(USER1, "report", "openssl", "1.0", "installed", "true", "private detail", SHA)
    kinds = {k.split("\x00")[1] for k in net.h.world.values}
    assert "download" not in kinds
    assert b"private detail" not in b"".join(net.h.world.values.values())


# ----------------------------------------------------------------- hiding from compliance


def test_a_device_cannot_leave_its_target_groups_by_itself(net: Net) -> None:
    net.release(manifest(version="1.0"))
    net.enroll(USER1, ["finance"])
    refused(net, USER1, "register", '{"groups": [], "os": "ubuntu-22.04"}', match="only add groups")
    refused(net, USER1, "register", '{"groups": ["finance"], "os": "x"}', match="change os")
    net.enroll(USER1, ["finance", "lab"])  # widening is the device's own business
    assert [r["user_id"] for r in net.call(ADMIN1, "compliance")["rows"]] == [f"Org1/{USER1}"]
    refused(net, USER1, "reassign", f"Org1/{USER1}", "{}", match="requires an admin")
    net.call(ADMIN1, "reassign", f"Org1/{USER1}", '{"groups": ["lab"], "os": "ubuntu-22.04"}')
    assert net.call(ADMIN1, "compliance")["rows"] == []
    refused(net, ADMIN1, "reassign", "Org1/nobody", '{"os": "x"}', match="no enrolled device")


# ----------------------------------------------------------------- freeze: expiry


def test_an_expired_release_is_not_served_and_older_ones_do_not_stand_in(net: Net) -> None:
    net.release(manifest(version="1.0"))
    net.release(manifest(version="1.1", expires_ms=50_000))
    net.enroll(USER1, ["finance"])
    fresh = net.call(USER1, "metadata", "openssl", at=49_999)
    assert (fresh["expires_ms"], fresh["as_of_ms"], fresh["head"]) == (
        50_000,
        49_999,
        {"current": "1.1", "top": "1.1"},
    )
    refused(net, USER1, "metadata", "openssl", match="1.1 expired at 50000 .*refusing a stale")


def test_every_release_expires(crypto: NetworkCrypto) -> None:
    net = Net(crypto, release_lifetime_ms=DAY)
    m = manifest(version="1.0")
    signature = sign_manifest(crypto.signer(ADMIN1), m)
    out = net.call(ADMIN1, "upload", json.dumps(manifest_to_json(m)), signature, at=5_000)
    assert out["expires_ms"] == 5_000 + DAY
    m = manifest(version="1.1", expires_ms=10_000 + DAY + 1)
    signature = sign_manifest(crypto.signer(ADMIN1), m)
    with pytest.raises(ContractError, match="beyond the longest lifetime"):
        net.call(ADMIN1, "upload", json.dumps(manifest_to_json(m)), signature, at=10_000)


# ----------------------------------------------------------------- malformed input (item 9)


@pytest.mark.parametrize(
    ("function", "args", "who", "message"),
    [
        ("withdraw", ("openssl", "1.0", "bad \ud800"), ADMIN1, "reason is not valid Unicode"),
        ("register", ('{"os": "\ud800"}',), USER1, "device is not valid Unicode"),
        ("report", ("openssl", "1.0", "failed", "no", "\udfff"), USER1, "detail is not valid"),
    ],
)
def test_a_lone_surrogate_is_a_rule_message(
    net: Net, function: str, args: tuple[str, ...], who: str, message: str
) -> None:
    refused(net, who, function, *args, match=message)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("description", "\ud800", "description is not valid Unicode text"),
        (
            "deadline_ms",
            2**70,
            r"deadline_ms must be null or an integer .* \[0, 9007199254740991\]",
        ),
        ("expires_ms", 2**70, "expires_ms must be null or an integer"),
    ],
)
def test_out_of_range_manifest_fields_are_rule_messages(
    net: Net, field: str, value: Any, message: str
) -> None:
    text = manifest_to_json(manifest())
    text[field] = value
    refused(net, ADMIN1, "upload", json.dumps(text), "00", match=message)


def test_a_raw_lone_surrogate_in_the_manifest_argument_is_a_rule_message(net: Net) -> None:
    text = json.dumps(manifest_to_json(manifest()), ensure_ascii=False).replace("fixes", "\ud800")
    refused(net, ADMIN1, "upload", text, "00", match="patchset is not valid Unicode")


# ----------------------------------------------------------------- the threat table


def test_every_row_of_the_threat_table_names_tests_that_exist() -> None:
    """docs/patchset.md's table must not point at tests that were renamed or never written."""
    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "patchset.md").read_text()
    section = text[text.index("## Threats") :].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("|"))
    end = next(i for i in range(start, len(section)) if not section[i].startswith("|"))
    rows = [line for line in section[start:end] if "---" not in line]
    named = 0
    for row in rows[1:]:
        cell = row.rstrip(" |").rsplit(" | ", 1)[-1]
        current = Path(__file__).name
        for token in re.findall(r"`([^`]+)`", cell):
            # `file.py::test`, then `::test` in that file; a bare name is in this file.
            file, sep, test = token.rpartition("::")
            current = file or (current if sep else Path(__file__).name)
            source = (root / "tests" / current).read_text()
            assert f"def {test}(" in source, f"{token} named in the threat table does not exist"
            named += 1
    assert len(rows) > 10 and named >= 25, (len(rows), named)


def test_a_submitted_metadata_answer_is_void_if_the_head_moved_before_it_committed() -> None:
    """Freshness on a real peer: the answer's block dates it, because MVCC checks the head."""
    ledger = LedgerNet(ledger_network())
    ledger.config.policies["patchset"] = ledger.policy  # type: ignore[index]

    def tx(who: str, function: str, *args: str) -> bytes:
        client = ledger.client(who)
        proposal = client.propose("patchset", function, args, ledger.now_ms)
        endorsers = [ledger.endorsers[p] for p in LEDGER_PEERS]
        return client.endorse(proposal, endorsers, ledger.policy, ledger.now_ms).envelope

    def release(version: str) -> None:
        m = manifest(version=version)
        signature = sign_manifest(ledger.crypto.signer(ADMIN1), m)
        assert ledger.codes(tx(ADMIN1, "upload", json.dumps(manifest_to_json(m)), signature)) == [
            "VALID"
        ]
        assert ledger.codes(tx(ADMIN2, "approve", "openssl", version)) == ["VALID"]

    release("1.0")
    assert ledger.codes(tx(USER1, "register", '{"groups": ["finance"], "os": "x"}')) == ["VALID"]
    stale = tx(USER1, "metadata", "openssl", "1.0")
    release("1.1")
    fresh = tx(USER1, "metadata", "openssl", "1.0")
    assert ledger.codes(stale, fresh) == ["MVCC_READ_CONFLICT", "VALID"]
