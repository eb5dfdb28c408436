"""The patchset contract's rules, each exercised through the in-memory harness."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaincode.patchset import (
    PatchManifest,
    PatchSetContract,
    manifest_from_json,
    manifest_to_json,
    sign_manifest,
)
from chaincode.shim import ContractError, Creator
from chaincode.testing import ContractHarness, creator_of
from msp.ca import NetworkCrypto, generate_network
from msp.msp import MSPManager

ADMIN1 = "Admin@org1.example.com"
ADMIN2 = "Admin@org2.example.com"
ADMIN1B = "Admin2@org1.example.com"
USER1 = "User1@org1.example.com"
USER2 = "User2@org1.example.com"
USER3 = "User1@org2.example.com"
DAY = 86_400_000


@pytest.fixture(scope="module")
def crypto() -> NetworkCrypto:
    return generate_network(2, 1, 2, seed=b"patchset-tests", admins=2)


def creator(crypto: NetworkCrypto, name: str) -> Creator:
    return creator_of(crypto.signer(name))


def manifest(name: str = "openssl", version: str = "1.0.1", **over: Any) -> PatchManifest:
    text = {
        "name": name,
        "version": version,
        "file": {"name": f"{name}-{version}.patch", "sha256": "ab" * 32, "size": 1234},
        "policy": {"install": "mandatory", "log": "write", "reboot": "rebooting"},
        "targets": {"groups": ["finance"], "os": []},
        "deadline_ms": None,
        "description": "fixes a heap overflow",
    }
    for key, value in over.items():
        section, _, field = key.partition("__")
        if field:
            text[section][field] = value  # type: ignore[index]
        else:
            text[section] = value
    return manifest_from_json(text)


class Net:
    """A harness plus the network's identities, with shorthands for the common steps."""

    def __init__(self, crypto: NetworkCrypto, **settings: Any) -> None:
        self.crypto = crypto
        # A manager of its own, so a test that adds a CRL leaves the others alone.
        self.msps = MSPManager(org.msp() for org in crypto.orgs)
        self.h = ContractHarness(PatchSetContract(**settings), msps=self.msps)
        self.creators: dict[str, Creator] = {}

    def as_creator(self, who: str) -> Creator:
        return self.creators.get(who) or creator(self.crypto, who)

    def call(self, who: str, function: str, *args: str, at: int | None = None) -> Any:
        return json.loads(self.h.invoke(self.as_creator(who), function, *args, timestamp_ms=at))

    def upload(self, m: PatchManifest, who: str = ADMIN1, signer: str | None = None) -> Any:
        signature = sign_manifest(self.crypto.signer(signer or who), m)
        return self.call(who, "upload", json.dumps(manifest_to_json(m)), signature)

    def release(self, m: PatchManifest, who: str = ADMIN1, approver: str = ADMIN2) -> None:
        self.upload(m, who=who)
        self.call(approver, "approve", m.name, m.version)

    def enroll(self, who: str, groups: list[str], os_name: str = "ubuntu-22.04") -> Any:
        return self.call(who, "register", json.dumps({"groups": groups, "os": os_name}))

    def fetch(self, who: str, name: str = "openssl", version: str = "") -> Any:
        """What a device does: ask for the release, 'fetch and verify' it, record the download."""
        release = self.call(who, "metadata", name, *([version] if version else []))
        manifest = release["manifest"]
        return self.call(who, "download", name, manifest["version"], manifest["file"]["sha256"])


@pytest.fixture
def net(crypto: NetworkCrypto) -> Net:
    return Net(crypto)


def refused(net: Net, who: str, function: str, *args: str, match: str) -> None:
    before = dict(net.h.world.values)
    with pytest.raises(ContractError, match=match):
        net.call(who, function, *args)
    assert net.h.world.values == before


# ----------------------------------------------------------------- access rules


@pytest.mark.parametrize(
    ("function", "args", "role", "who"),
    [
        ("upload", ("{}", "00"), "an admin", USER1),
        ("approve", ("openssl", "1.0.1"), "an admin", USER1),
        ("withdraw", ("openssl", "1.0.1", "bad"), "an admin", USER1),
        ("history", ("openssl",), "an admin", USER1),
        ("compliance", (), "an admin", USER1),
        ("register", ('{"os": "x"}',), "a client", ADMIN1),
        ("metadata", ("openssl",), "a client", ADMIN1),
        ("download", ("openssl", "1.0.1", "ab" * 32), "a client", ADMIN1),
        ("report", ("openssl", "1.0.1", "installed", "true"), "a client", ADMIN2),
        ("upload", ("{}", "00"), "an admin", "peer0.org1.example.com"),
    ],
)
def test_each_function_requires_its_role(
    net: Net, function: str, args: tuple[str, ...], role: str, who: str
) -> None:
    actual = net.crypto.signer(who).role
    refused(
        net,
        who,
        function,
        *args,
        match=f"^{function} requires {role} identity; caller {who} has role {actual}$",
    )


def test_upload_message_names_the_rule_exactly(net: Net) -> None:
    with pytest.raises(ContractError) as info:
        net.upload(manifest(), who=USER1)
    assert str(info.value) == (
        "upload requires an admin identity; caller User1@org1.example.com has role client"
    )


def test_wrong_argument_count_is_a_contract_error(net: Net) -> None:
    refused(net, ADMIN1, "approve", "openssl", match="approve takes name version")
    refused(net, ADMIN1, "compliance", "extra", match="compliance takes")


# ----------------------------------------------------------------- upload / approve


def test_upload_is_pending_until_a_second_admin_approves(net: Net) -> None:
    m = manifest()
    out = net.upload(m)
    assert (out["status"], out["signoffs"], out["deployer"]) == ("pending", 1, ADMIN1)
    net.enroll(USER1, ["finance"])
    refused(net, USER1, "metadata", "openssl", "1.0.1", match="not released yet .1 of 2 sign-offs")
    out = net.call(ADMIN2, "approve", "openssl", "1.0.1")
    assert (out["status"], out["approvals"]) == ("released", [ADMIN2])
    assert net.call(USER1, "metadata", "openssl", "1.0.1")["manifest"] == manifest_to_json(m)


def test_deployer_cannot_approve_own_upload(net: Net) -> None:
    net.upload(manifest())
    refused(net, ADMIN1, "approve", "openssl", "1.0.1", match="deployer .* cannot approve")


def test_double_approval_counts_once_and_says_so(crypto: NetworkCrypto) -> None:
    net = Net(crypto, approvals_required=3)
    net.upload(manifest())
    first = net.call(ADMIN2, "approve", "openssl", "1.0.1")
    state = dict(net.h.world.values)
    again = net.call(ADMIN2, "approve", "openssl", "1.0.1")
    assert "counted once" in again["note"]
    assert (again["signoffs"], again["status"]) == (first["signoffs"], "pending") == (2, "pending")
    assert net.h.world.values == state
    assert net.call(ADMIN1B, "approve", "openssl", "1.0.1")["status"] == "released"


def test_one_signoff_setting_releases_on_upload(crypto: NetworkCrypto) -> None:
    net = Net(crypto, approvals_required=1)
    assert net.upload(manifest())["status"] == "released"


@pytest.mark.parametrize("bad", [0, -1, "2", True])
def test_bad_settings_raise_locally(bad: object) -> None:
    with pytest.raises(ValueError, match="approvals_required"):
        PatchSetContract(approvals_required=bad)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"distinct_orgs": "yes"}, "distinct_orgs must be true or false"),
        ({"roles": "nodeou"}, "roles must be one of"),
        ({"max_version_jump": 0}, "max_version_jump must be an integer in"),
        ({"release_lifetime_ms": 2**60}, "release_lifetime_ms must be an integer"),
        ({"approvals": 2}, "unknown setting 'approvals'"),
    ],
)
def test_every_setting_is_checked_at_deployment(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PatchSetContract(**settings)


@pytest.mark.parametrize("older", ["1.0.0", "1.0.1", "1.0.1.0", "0.9", "1"])
def test_rollback_and_replay_are_refused(net: Net, older: str) -> None:
    net.release(manifest(version="1.0.1"))
    with pytest.raises(
        ContractError, match=r"not higher than the highest released version 1\.0\.1"
    ):
        net.upload(manifest(version=older))
    assert net.upload(manifest(version="1.0.10"))["version"] == "1.0.10"


def test_a_released_then_withdrawn_version_number_cannot_be_reused(net: Net) -> None:
    net.release(manifest(version="2.0"))
    net.call(ADMIN1, "withdraw", "openssl", "2.0", "broken build")
    net.call(ADMIN2, "withdraw", "openssl", "2.0", "broken build")
    with pytest.raises(ContractError, match="no rollback or replay"):
        net.upload(manifest(version="2.0"))


def test_forged_deployer_signature_is_rejected(net: Net) -> None:
    # Admin2 signs, Admin1 submits: the signer must be the creator.
    with pytest.raises(ContractError, match="deployer signature does not verify"):
        net.upload(manifest(), who=ADMIN1, signer=ADMIN2)
    assert net.h.world.values == {}


def test_signature_over_a_different_manifest_is_rejected(net: Net) -> None:
    signed = manifest(file__sha256="cd" * 32)
    signature = sign_manifest(net.crypto.signer(ADMIN1), signed)
    tampered = json.dumps(manifest_to_json(manifest()))
    refused(net, ADMIN1, "upload", tampered, signature, match="does not verify")
    refused(net, ADMIN1, "upload", tampered, "zz", match="signature must be hex")


def test_invalid_manifest_is_refused_with_the_key_named(net: Net) -> None:
    good = manifest_to_json(manifest())
    cases = [
        ({**good, "colour": "red"}, "unknown key 'colour'"),
        ({**good, "version": "1.02"}, "without leading zeros"),
        ({**good, "file": {**good["file"], "size": True}}, "file.size must be a int"),
        ({**good, "file": {**good["file"], "name": "../etc/passwd"}}, "plain file name"),
        ({**good, "policy": {**good["policy"], "log": "maybe"}}, "policy.log must be one of"),
        ({k: v for k, v in good.items() if k != "policy"}, "missing key 'policy'"),
    ]
    for text, message in cases:
        refused(net, ADMIN1, "upload", json.dumps(text), "00", match=message)
    refused(net, ADMIN1, "upload", "{not json", "00", match="not valid JSON")


def test_deadline_must_be_after_the_upload_time(net: Net) -> None:
    m = manifest(deadline_ms=5_000)
    sig = sign_manifest(net.crypto.signer(ADMIN1), m)
    text = json.dumps(manifest_to_json(m))
    with pytest.raises(ContractError, match="deadline_ms 5000 is not after"):
        net.call(ADMIN1, "upload", text, sig, at=5_000)
    assert net.call(ADMIN1, "upload", text, sig, at=4_999)["deadline_ms"] == 5_000


# ----------------------------------------------------------------- clients


def test_download_requires_enrollment_and_targeting(net: Net) -> None:
    net.release(manifest())
    refused(net, USER1, "metadata", "openssl", match="no enrolled device; call register")
    net.enroll(USER1, ["hr"], "windows-11")
    refused(net, USER1, "metadata", "openssl", match="does not target")
    refused(net, USER1, "download", "openssl", "1.0.1", "ab" * 32, match="does not target")
    net.enroll(USER1, ["finance", "hr"], "windows-11")
    out = net.call(USER1, "metadata", "openssl")
    assert out["fetch"] == {
        "blob": "sha256:" + "ab" * 32,
        "size": 1234,
        "from": "any peer of the channel",
    }
    assert out["deployer"]["name"] == ADMIN1
    assert net.fetch(USER1)["download"]["user_id"] == f"Org1/{USER1}"


def test_targeting_by_os_and_everyone(net: Net) -> None:
    net.release(manifest("kernel", targets={"os": ["rhel-9"]}))
    net.release(manifest("tzdata", targets={}))
    net.enroll(USER1, [], "rhel-9")
    net.enroll(USER2, ["finance"], "ubuntu-22.04")
    assert net.call(USER1, "metadata", "kernel")["manifest"]["name"] == "kernel"
    refused(net, USER2, "metadata", "kernel", match="does not target")
    assert net.call(USER2, "metadata", "tzdata")["manifest"]["name"] == "tzdata"


def test_download_without_version_takes_the_latest_released(net: Net) -> None:
    net.release(manifest(version="1.0"))
    net.release(manifest(version="1.2"))
    net.upload(manifest(version="1.3"))  # pending
    net.enroll(USER1, ["finance"])
    assert net.call(USER1, "metadata", "openssl")["manifest"]["version"] == "1.2"
    refused(net, USER1, "metadata", "nginx", match="nginx has no released version")


def test_withdraw_stops_downloads_and_keeps_history(net: Net) -> None:
    net.release(manifest())
    net.enroll(USER1, ["finance"])
    net.fetch(USER1, "openssl", "1.0.1")
    refused(net, ADMIN2, "withdraw", "openssl", "1.0.1", " ", match="a reason of 1 to")
    out = net.call(ADMIN2, "withdraw", "openssl", "1.0.1", "crashes on ARM")
    assert (out["status"], out["withdrawal"]["reason"]) == ("released", "crashes on ARM")
    out = net.call(ADMIN1, "withdraw", "openssl", "1.0.1", "confirmed")
    assert out["withdrawn"]["reason"] == "crashes on ARM"
    refused(
        net,
        USER1,
        "metadata",
        "openssl",
        "1.0.1",
        match="withdrawn by Admin@org1.example.com: crashes on ARM",
    )
    refused(net, ADMIN1, "withdraw", "openssl", "1.0.1", "again", match="already withdrawn")
    refused(net, ADMIN2, "approve", "openssl", "1.0.1", match="withdrawn; it cannot be approved")
    actions = [e["action"] for e in net.call(ADMIN1, "history", "openssl")["events"]]
    assert actions == ["upload", "release", "download", "propose-withdrawal", "withdraw"]


def test_report_requires_a_download_by_the_same_client(net: Net) -> None:
    net.release(manifest())
    net.enroll(USER1, ["finance"])
    net.enroll(USER2, ["finance"])
    net.fetch(USER1, "openssl", "1.0.1")
    refused(
        net,
        USER2,
        "report",
        "openssl",
        "1.0.1",
        "installed",
        "true",
        match="no verified download",
    )
    refused(
        net, USER1, "report", "openssl", "1.0.1", "done", "true", match="outcome must be one of"
    )
    refused(
        net, USER1, "report", "openssl", "1.0.1", "installed", "maybe", match="rebooted must be"
    )
    out = net.call(USER1, "report", "openssl", "1.0.1", "installed", "false", "exit 0")
    assert out["outcome"] == "installed"


def test_log_policy_write_keeps_the_full_report(net: Net) -> None:
    net.release(manifest())
    net.enroll(USER1, ["finance"])
    net.fetch(USER1, "openssl", "1.0.1")
    out = net.call(USER1, "report", "openssl", "1.0.1", "installed", "false", "dpkg: ok")
    assert (out["log"], out["rebooted"], out["detail"], out["reboot_pending"]) == (
        "write",
        False,
        "dpkg: ok",
        True,
    )


def test_log_policy_unwrite_keeps_only_the_outcome(net: Net) -> None:
    net.release(manifest(policy__log="unwrite"))
    net.enroll(USER1, ["finance"])
    net.fetch(USER1, "openssl", "1.0.1")
    sha = "ab" * 32
    refused(
        net, USER1, "report", "openssl", "1.0.1", "failed", "true", match="must name the sha256"
    )
    net.call(USER1, "report", "openssl", "1.0.1", "failed", "true", "secret path /home/u", sha)
    stored = [v for v in net.h.world.values.values() if b'"outcome"' in v]
    assert len(stored) == 1
    record = json.loads(stored[0])
    assert (record["outcome"], record["sha256"]) == ("failed", sha)
    assert not {"detail", "rebooted", "reboot_pending"} & set(record)
    assert b"secret path" not in b"".join(net.h.world.values.values())


# ----------------------------------------------------------------- audit


def test_history_shows_every_step_with_identities(net: Net) -> None:
    net.upload(manifest())
    net.call(ADMIN2, "approve", "openssl", "1.0.1")
    net.enroll(USER1, ["finance"])
    net.fetch(USER1, "openssl", "1.0.1")
    net.call(USER1, "report", "openssl", "1.0.1", "installed", "true")
    out = net.call(ADMIN2, "history", "openssl", "1.0.1")
    steps = [(e["action"], e["creator"]["name"]) for e in out["events"]]
    assert steps == [
        ("upload", ADMIN1),
        ("release", ADMIN2),
        ("download", USER1),
        ("report", USER1),
    ]
    assert all(len(e["tx_id"]) == 64 for e in out["events"])
    times = [e["timestamp_ms"] for e in out["events"]]
    assert times == sorted(times) and len(set(times)) == 4
    assert out["events"][0]["record"]["file"]["sha256"] == "ab" * 32
    refused(net, ADMIN1, "history", "nginx", match="no patch set named nginx")
    refused(net, ADMIN1, "history", "openssl", "9.9", match="no patch set openssl version 9.9")


def test_compliance_statuses_and_overdue_in_ledger_time(net: Net) -> None:
    deadline = 10 * DAY
    net.release(manifest(deadline_ms=deadline))
    net.release(manifest("fonts", policy__install="optional"))
    for user in (USER1, USER2, USER3):
        net.enroll(user, ["finance"])
    net.enroll("User2@org2.example.com", ["hr"])  # not targeted: no row
    net.fetch(USER1, "openssl", "1.0.1")
    net.call(USER1, "report", "openssl", "1.0.1", "installed", "true")
    net.fetch(USER2, "openssl", "1.0.1")
    net.fetch(USER3, "openssl", "1.0.1")
    net.call(USER3, "report", "openssl", "1.0.1", "failed", "false", "disk full")

    def table(at: int) -> dict[str, Any]:
        return net.call(ADMIN1, "compliance", at=at)

    before = table(deadline)
    by_user = {r["user_id"]: r for r in before["rows"]}
    assert {u: r["status"] for u, r in by_user.items()} == {
        f"Org1/{USER1}": "installed",
        f"Org1/{USER2}": "downloaded",
        f"Org2/{USER3}": "failed",
    }
    assert not any(r["overdue"] for r in before["rows"])
    after = table(deadline + 1)
    assert {r["user_id"] for r in after["rows"] if r["overdue"]} == {
        f"Org1/{USER2}",
        f"Org2/{USER3}",
    }
    assert after["summary"] == {"installed": 1, "downloaded": 1, "failed": 1, "overdue": 2}


def test_compliance_missing_and_superseded_versions(net: Net) -> None:
    net.release(manifest(version="1.0"))
    net.enroll(USER1, ["finance"])
    net.fetch(USER1, "openssl", "1.0")
    net.call(USER1, "report", "openssl", "1.0", "installed", "true")
    net.release(manifest(version="1.1"))
    rows = net.call(ADMIN1, "compliance")["rows"]
    assert [(r["version"], r["status"]) for r in rows] == [("1.1", "missing")]
    net.call(ADMIN1, "withdraw", "openssl", "1.1", "regression")
    net.call(ADMIN2, "withdraw", "openssl", "1.1", "regression")
    rows = net.call(ADMIN1, "compliance")["rows"]
    assert [(r["version"], r["status"]) for r in rows] == [("1.0", "installed")]


def test_catalog_lists_every_version_for_anyone(net: Net) -> None:
    net.release(manifest(version="1.10"))
    net.upload(manifest("zlib", "1.2"))
    rows = net.call(USER1, "catalog")["patches"]
    assert [(r["name"], r["version"], r["status"]) for r in rows] == [
        ("openssl", "1.10", "released"),
        ("zlib", "1.2", "pending"),
    ]


def test_register_validates_the_device(net: Net) -> None:
    refused(net, USER1, "register", "[]", match="register: device must be")
    refused(net, USER1, "register", '{"groups": ["a b"], "os": "x"}', match="not a valid name")
    refused(net, USER1, "register", '{"groups": [], "os": 3}', match="register: os")
    out = net.enroll(USER1, ["b", "a"], "debian-12")
    assert (out["groups"], out["os"], out["user_id"]) == (["a", "b"], "debian-12", f"Org1/{USER1}")
