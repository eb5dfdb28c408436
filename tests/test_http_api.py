"""The HTTP gateway, called over real HTTP: the paper's three experiments and bad input.

One gateway process serves the module (starting it runs a full simulated
network per write, so the experiments share it and run in order). Every
signature is made here, by the caller, with keys the gateway does not have.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from http_fixtures import patch_client, running_gateway

from chaincode.patchset import manifest_to_json, sign_manifest
from msp.keys import P256_ORDER
from sim.fabric.patchclient import build_manifest
from sim.http.client import HttpError, HttpGateway
from sim.http.signing import NONCE, SIGNATURE

ADMIN1 = "Admin@org1.example.com"
ADMIN2 = "Admin@org2.example.com"
USER = "User1@org1.example.com"
DATA = b"kernel hotfix " * 500


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpGateway]:
    with running_gateway(tmp_path_factory.mktemp("http")) as (url, keys):
        client = HttpGateway(url, keys)
        yield client
        client.close()


def height(gw: HttpGateway) -> int:
    nodes = gw.request(ADMIN1, "GET", "/api/network")["nodes"]
    heights = {n["height"] for n in nodes}
    assert len(heights) == 1, nodes
    return int(heights.pop())


def raw(gw: HttpGateway, user: str, method: str, target: str, body: bytes, **kw: Any) -> Any:
    """Send ``body`` as is, signed correctly unless ``headers`` overrides a header."""
    headers = gw.signed_headers(user, method, target, body)
    headers.update(kw.pop("headers", {}))
    return gw.http.request(method, target, content=body, headers=headers, **kw)


def assert_json_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert fragment in body["error"], body
    assert "Traceback" not in response.text and 'File "' not in response.text


# ---------------------------------------------------------------------- the experiments


def test_exam1_upload_and_approve_release_a_patch(gateway: HttpGateway) -> None:
    client = patch_client(gateway)
    manifest = build_manifest(
        DATA, name="hotfix", version="1.0", file_name="hotfix.bin", groups=["lab"]
    )
    uploaded = client.upload(ADMIN1, manifest, DATA)
    assert uploaded["status"] == "pending" and len(uploaded["file_on"]) == 4
    approved = client.approve(ADMIN2, "hotfix", "1.0")
    assert approved["status"] == "released"
    listed = gateway.request(USER, "GET", "/api/patches")["patches"]
    assert [(p["name"], p["version"], p["status"]) for p in listed] == [
        ("hotfix", "1.0", "released")
    ]


def test_exam2_download_checks_the_file_and_report_is_recorded(gateway: HttpGateway) -> None:
    client = patch_client(gateway)
    client.register(USER, "ubuntu-22.04", ["lab"])
    got = client.download(USER, "hotfix")
    assert got.fetch.data == DATA
    assert got.release["download"]["sha256"] == hashlib.sha256(DATA).hexdigest()
    report = client.report(USER, "hotfix", "1.0", "installed", False)
    assert report["outcome"] == "installed"


def test_exam3_history_and_compliance(gateway: HttpGateway) -> None:
    history = gateway.request(ADMIN2, "GET", "/api/patches/hotfix/history")
    actions = [e["action"] for e in history["events"]]
    assert actions[:2] == ["upload", "release"] and "download" in actions and "report" in actions
    rows = gateway.request(ADMIN1, "GET", "/api/compliance")["rows"]
    assert [(r["user_id"], r["status"]) for r in rows] == [
        ("Org1/User1@org1.example.com", "installed")
    ]


def test_release_proof_over_http_verifies_offline_with_only_cas_and_crls(
    gateway: HttpGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``patch proof --gateway`` signs metadata here; verify-proof needs only msp/ dirs."""
    from sim.cli.main import main

    callers = Path(gateway.crypto_dir)
    network = tmp_path / "mine"
    network.mkdir()
    (network / "crypto").symlink_to(callers)
    proof_file = tmp_path / "proof.json"
    common = ["--network", str(network), "--gateway", gateway.url, "--as", USER]
    assert main(["patch", "proof", "hotfix", *common, "--out", str(proof_file)]) == 0
    device = tmp_path / "device" / "peerOrganizations"
    for org in (callers / "peerOrganizations").iterdir():
        shutil.copytree(org / "msp", device / org.name / "msp")
    assert not list(device.rglob("keystore")) and not list(device.rglob("*_sk"))
    capsys.readouterr()
    verify = ["patch", "verify-proof", str(proof_file), "--msp", str(device), "--json"]
    assert main(verify) == 0
    proven = json.loads(capsys.readouterr().out)
    assert (proven["name"], proven["version"]) == ("hotfix", "1.0")
    # Without tx_id the route proves the caller's latest metadata call: the same bytes.
    latest = raw(gateway, USER, "GET", "/api/patches/hotfix/proof", b"")
    assert latest.status_code == 200 and latest.content == proof_file.read_bytes()
    # A changed release inside the file no longer verifies.
    edited = json.loads(proof_file.read_text())
    edited["release"]["manifest"]["file"]["sha256"] = "0" * 64
    proof_file.write_text(json.dumps(edited))
    assert main(verify) == 1


def test_proof_needs_the_callers_own_committed_metadata_call(gateway: HttpGateway) -> None:
    assert_json_error(
        raw(gateway, ADMIN2, "GET", "/api/patches/hotfix/proof", b""),
        404,
        "no committed metadata transaction",
    )
    registered = gateway.sign_and_send(
        USER,
        gateway.request(USER, "POST", "/api/devices", {"os": "ubuntu-22.04", "groups": ["lab"]}),
    )
    target = f"/api/patches/hotfix/proof?tx_id={registered['tx_id']}"
    assert_json_error(raw(gateway, USER, "GET", target, b""), 409, "not a metadata call")


def test_activity_counts_what_the_blocks_hold(gateway: HttpGateway) -> None:
    """Throughput per second agrees with the blocks' own times and codes, read one by one."""
    activity = gateway.request(USER, "GET", "/api/network/activity?seconds=300")
    since, until = activity["since_ms"], activity["until_ms"]
    expected: dict[int, int] = {}
    for number in range(1, height(gateway)):
        meta = gateway.request(USER, "GET", f"/api/blocks/{number}")["metadata"]
        if since <= meta["timestamp_ms"] <= until:
            second = meta["timestamp_ms"] // 1000
            expected[second] = expected.get(second, 0) + meta["validation_codes"].count("VALID")
    got = {s["second"]: s["transactions"] for s in activity["ledger"]["per_second"]}
    assert {s: n for s, n in got.items() if n} == expected and sum(expected.values()) >= 4
    covered = len(got)  # the network is younger than 300 s: the window starts at 0
    assert covered == until // 1000 + 1 and activity["ledger"]["seconds"] == covered
    assert activity["ledger"]["tx_per_s"] == sum(expected.values()) / covered
    sent = sum(s["messages"] for s in activity["gateway_sessions"]["per_second"])
    assert sent > 0 and activity["down"] == {} and activity["byzantine"] == {}
    for bad in ("0", "301", "abc", "-1"):
        response = raw(gateway, USER, "GET", f"/api/network/activity?seconds={bad}", b"")
        assert_json_error(response, 400, "seconds must be")


def test_committed_transaction_and_its_block_are_readable(gateway: HttpGateway) -> None:
    prepared = gateway.request(
        USER, "POST", "/api/devices", {"os": "ubuntu-22.04", "groups": ["lab", "web"]}
    )
    result = gateway.sign_and_send(USER, prepared)
    assert result["validation_code"] == "VALID"
    tx = gateway.request(USER, "GET", f"/api/tx/{result['tx_id']}")
    assert tx["validation_code"] == "VALID" and tx["function"] == "register"
    block = gateway.request(USER, "GET", f"/api/blocks/{tx['block']}")
    assert block["data"][tx["index"]]["tx_id"] == result["tx_id"]
    assert block["metadata"]["validation_codes"][tx["index"]] == "VALID"
    assert block["header"]["number"] == tx["block"]


def test_streamed_download_has_size_and_sha256(gateway: HttpGateway) -> None:
    sha = hashlib.sha256(DATA).hexdigest()
    target = f"/api/files/{sha}?size={len(DATA)}"
    response = raw(gateway, USER, "GET", target, b"")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["x-content-sha256"] == sha
    assert response.content == DATA


def test_browser_style_raw_high_s_signature_is_accepted(gateway: HttpGateway) -> None:
    """WebCrypto's raw r||s, even with the high S a browser may produce, becomes low-S DER."""
    key = gateway.signer(USER)
    prepared = gateway.request(
        USER,
        "POST",
        "/api/tx",
        {
            "function": "register",
            "args": [json.dumps({"os": "ubuntu-22.04", "groups": ["lab", "web", "db"]})],
        },
    )
    r, s = decode_dss_signature(key.sign(bytes.fromhex(prepared["bytes"])))
    high = r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big")
    endorse_at = f"/api/tx/{prepared['tx_id']}/endorse"
    endorsed = gateway.request(USER, "POST", endorse_at, {"signature": high.hex()})
    r, s = decode_dss_signature(key.sign(bytes.fromhex(endorsed["bytes"])))
    low = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    done = gateway.request(
        USER, "POST", f"/api/tx/{prepared['tx_id']}/submit", {"signature": low.hex()}
    )
    assert done["validation_code"] == "VALID"


def test_openapi_lists_every_route(gateway: HttpGateway) -> None:
    document = httpx.get(gateway.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    for path in (
        "/api/patches",
        "/api/compliance",
        "/api/tx/{tx_id}/submit",
        "/api/blocks/{number}",
    ):
        assert path in document["paths"]
    docs = httpx.get(gateway.url + "/docs").text
    assert "openapi.json" in docs and "http://" not in docs and "https://" not in docs


# ---------------------------------------------------------------------- bad input


def test_malformed_json_is_400(gateway: HttpGateway) -> None:
    before = height(gateway)
    response = raw(
        gateway,
        ADMIN1,
        "POST",
        "/api/tx",
        b'{"function": "approve", ',
        headers={"content-type": "application/json"},
    )
    assert_json_error(response, 400, "malformed JSON")
    assert height(gateway) == before


def test_wrong_content_type_is_415(gateway: HttpGateway) -> None:
    body = json.dumps({"function": "approve", "args": ["hotfix", "1.0"]}).encode()
    response = raw(gateway, ADMIN1, "POST", "/api/tx", body, headers={"content-type": "text/plain"})
    assert_json_error(response, 415, "application/json")
    response = raw(
        gateway, ADMIN1, "POST", "/api/files", b"x", headers={"content-type": "text/plain"}
    )
    assert_json_error(response, 415, "octet-stream")


def test_oversized_upload_is_413(gateway: HttpGateway) -> None:
    big = b"\0" * (16 * 1024 * 1024 + 1)
    response = raw(
        gateway,
        ADMIN1,
        "POST",
        "/api/files",
        big,
        headers={"content-type": "application/octet-stream"},
    )
    assert_json_error(response, 413, "exceeds the limit")


def test_unknown_identity_is_401(gateway: HttpGateway) -> None:
    response = raw(
        gateway,
        ADMIN1,
        "GET",
        "/api/patches",
        b"",
        headers={"x-ledgersim-identity": "Mallory@org9.example.com"},
    )
    assert_json_error(response, 401, "unknown identity")
    response = gateway.http.get("/api/patches")
    assert_json_error(response, 401, "missing X-Ledgersim-Identity")


def test_request_signed_over_other_bytes_is_401(gateway: HttpGateway) -> None:
    other = gateway.signed_headers(ADMIN1, "GET", "/api/compliance", b"")
    response = raw(
        gateway,
        ADMIN1,
        "GET",
        "/api/patches",
        b"",
        headers={SIGNATURE: other[SIGNATURE], NONCE: other[NONCE]},
    )
    assert_json_error(response, 401, "does not verify")


def test_replayed_request_is_401(gateway: HttpGateway) -> None:
    headers = gateway.signed_headers(ADMIN1, "GET", "/api/patches", b"")
    first = gateway.http.get("/api/patches", headers=headers)
    assert first.status_code == 200
    assert_json_error(gateway.http.get("/api/patches", headers=headers), 401, "replayed")


def test_stale_request_is_401(gateway: HttpGateway) -> None:
    headers = gateway.signed_headers(ADMIN1, "GET", "/api/patches", b"")
    headers["x-ledgersim-timestamp"] = str(int(headers["x-ledgersim-timestamp"]) - 120_000)
    assert_json_error(gateway.http.get("/api/patches", headers=headers), 401, "")


def test_proposal_signed_over_wrong_bytes_writes_nothing(gateway: HttpGateway) -> None:
    before = height(gateway)
    prepared = gateway.request(
        ADMIN2, "POST", "/api/patches/hotfix/1.0/withdraw", {"reason": "bad"}
    )
    wrong = gateway.signer(ADMIN2).sign(b"something else").hex()
    response = raw(
        gateway,
        ADMIN2,
        "POST",
        f"/api/tx/{prepared['tx_id']}/endorse",
        json.dumps({"signature": wrong}).encode(),
        headers={"content-type": "application/json"},
    )
    assert_json_error(response, 403, "proposal signature does not verify")
    # Endorsed properly, but the transaction signed by someone else's key: refused too.
    endorsed = gateway.request(
        ADMIN2,
        "POST",
        f"/api/tx/{prepared['tx_id']}/endorse",
        {"signature": gateway.signer(ADMIN2).sign(bytes.fromhex(prepared["bytes"])).hex()},
    )
    forged = gateway.signer(ADMIN1).sign(bytes.fromhex(endorsed["bytes"])).hex()
    with pytest.raises(HttpError) as caught:
        gateway.request(
            ADMIN2, "POST", f"/api/tx/{prepared['tx_id']}/submit", {"signature": forged}
        )
    assert caught.value.status == 403
    assert height(gateway) == before
    assert gateway.request(USER, "GET", "/api/patches")["patches"][0]["withdrawal"] is None


def test_contract_refusal_is_409_and_never_ordered(gateway: HttpGateway) -> None:
    before = height(gateway)
    with pytest.raises(HttpError) as caught:
        gateway.submit(ADMIN1, "approve", ["hotfix", "9.9"])
    assert caught.value.status in (404, 409) and "9.9" in str(caught.value)
    assert height(gateway) == before


def test_someone_elses_prepared_transaction_is_404(gateway: HttpGateway) -> None:
    prepared = gateway.request(ADMIN2, "POST", "/api/patches/hotfix/1.0/approve")
    signature = gateway.signer(ADMIN1).sign(bytes.fromhex(prepared["bytes"])).hex()
    with pytest.raises(HttpError) as caught:
        gateway.request(
            ADMIN1, "POST", f"/api/tx/{prepared['tx_id']}/endorse", {"signature": signature}
        )
    assert caught.value.status == 404


def test_unknown_routes_and_bad_fields_are_json_4xx(gateway: HttpGateway) -> None:
    assert_json_error(gateway.http.get("/nope"), 404, "Not Found")
    response = raw(gateway, ADMIN1, "GET", "/api/blocks/abc", b"")
    assert_json_error(response, 400, "block number")
    response = raw(gateway, ADMIN1, "GET", "/api/blocks/999", b"")
    assert_json_error(response, 404, "no block 999")
    body = json.dumps({"function": "approve", "args": [1, 2]}).encode()
    response = raw(
        gateway, ADMIN1, "POST", "/api/tx", body, headers={"content-type": "application/json"}
    )
    assert_json_error(response, 400, "list of strings")


def test_upload_without_its_file_is_409(gateway: HttpGateway) -> None:
    """An upload may be prepared and endorsed before its file is placed, never ordered."""
    data = b"never placed"
    manifest = build_manifest(data, name="ghost", version="1.0", file_name="ghost.bin")
    signature = sign_manifest(gateway.signer(ADMIN1), manifest)
    before = height(gateway)
    prepared = gateway.request(
        ADMIN1,
        "POST",
        "/api/patches",
        {"manifest": manifest_to_json(manifest), "signature": signature},
    )
    with pytest.raises(HttpError) as caught:
        gateway.sign_and_send(ADMIN1, prepared)
    assert caught.value.status == 409 and "/api/files" in str(caught.value)
    assert height(gateway) == before


def test_caller_keys_are_not_in_the_served_tree(gateway: HttpGateway) -> None:
    served = Path(gateway.crypto_dir).parent / "net" / "crypto"
    assert not list(served.glob("peerOrganizations/*/users/*/msp/keystore"))


def test_patch_command_goes_through_the_gateway(
    gateway: HttpGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sim.cli.main import main

    keys_dir = Path(gateway.crypto_dir).parent  # holds callers-crypto; --network wants DIR/crypto
    network = tmp_path / "mine"
    network.mkdir()
    (network / "crypto").symlink_to(keys_dir / "callers-crypto")
    common = ["--network", str(network), "--gateway", gateway.url]
    assert main(["patch", "list", *common, "--as", USER, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert ("hotfix", "1.0") in {(p["name"], p["version"]) for p in listed["patches"]}
    data = tmp_path / "tool.bin"
    data.write_bytes(b"cli through http")
    upload = ["--file", str(data), "--name", "tool", "--version", "1.0", "--group", "lab"]
    assert main(["patch", "upload", *common, "--as", ADMIN1, *upload]) == 0
    assert main(["patch", "approve", *common, "--as", ADMIN2, "tool", "1.0"]) == 0
    capsys.readouterr()
    assert main(["patch", "list", *common, "--as", USER, "--json"]) == 0
    statuses = {p["name"]: p["status"] for p in json.loads(capsys.readouterr().out)["patches"]}
    assert statuses["tool"] == "released"
    assert main(["patch", "list", *common, "--as", "Nobody@org1.example.com"]) == 2
    assert "no MSP directory" in capsys.readouterr().err


def test_a_transaction_is_submitted_once(gateway: HttpGateway) -> None:
    before = height(gateway)
    body = {
        "function": "register",
        "args": ['{"os": "ubuntu-22.04", "groups": ["lab", "web", "db", "ops"]}'],
    }
    prepared = gateway.request(USER, "POST", "/api/tx", body)
    key = gateway.signer(USER)
    at = f"/api/tx/{prepared['tx_id']}"
    endorsed = gateway.request(
        USER,
        "POST",
        at + "/endorse",
        {"signature": key.sign(bytes.fromhex(prepared["bytes"])).hex()},
    )
    signature = {"signature": key.sign(bytes.fromhex(endorsed["bytes"])).hex()}
    assert gateway.request(USER, "POST", at + "/submit", signature)["validation_code"] == "VALID"
    with pytest.raises(HttpError) as caught:
        gateway.request(USER, "POST", at + "/submit", signature)
    assert caught.value.status == 404
    assert height(gateway) == before + 1


def test_deeply_nested_json_is_400_not_a_crash(gateway: HttpGateway) -> None:
    """100,000 brackets fit the size limit but overflowed the parser: was a 500 and a traceback."""
    body = b"[" * 100_000 + b"]" * 100_000
    response = raw(
        gateway, ADMIN1, "POST", "/api/tx", body, headers={"content-type": "application/json"}
    )
    assert_json_error(response, 400, "nested too deeply")
