"""The HTTP gateway over a live network: real nodes, a private mosquitto, callers who sign.

One ``net up`` network and one gateway process serve the module; the tests
run in order (the experiments first, the node kill last). The served tree
holds no caller's private key, only the gateway's own client key
(``Gateway@org1``), so every write shows the gateway relays envelopes it
could not have signed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from http_fixtures import callers_keys, headless_chromium, patch_client, serving
from live_helpers import wait_for, watched
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_http_console import WAIT_S, rows, sign_in

from sim.cli.main import main
from sim.errors import InputError
from sim.fabric.gateway import Refused
from sim.fabric.patchclient import Freshness, build_manifest
from sim.fabric.proof import verify_proof
from sim.fabric.verify import Trust
from sim.http.client import HttpError, HttpGateway
from sim.live import broker, cluster
from sim.live.faults import Nemesis
from sim.live.gatewayid import gateway_name
from sim.live.nemesis import apply_faults
from sim.live.netconfig import load_config
from sim.live.schedule import SETTLE_S, Fault

pytestmark = pytest.mark.live

ADMIN1 = "Admin@org1.example.com"
ADMIN2 = "Admin@org2.example.com"
USER = "User1@org1.example.com"
DATA = b"live kernel hotfix " * 400


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, HttpGateway]]:
    try:
        broker.find_mosquitto()
    except InputError as exc:
        pytest.fail(f"live tests need mosquitto: {exc}")
    tmp = tmp_path_factory.mktemp("httplive")
    network = tmp / "net"
    pbft = replace(cluster.DEFAULT_PBFT, view_change_timeout_ms=1000, client_retry_ms=500)
    with watched(network):
        config = cluster.up(network, cluster.UpOptions(pbft=pbft))
        keys = callers_keys(network, tmp, keep=gateway_name(config) or "")
        with serving(network, tmp / "gateway.log") as url:
            client = HttpGateway(url, keys, timeout_s=120)
            yield network, client
            client.close()


def test_the_gateway_has_its_own_identity_and_no_callers_key(
    live: tuple[Path, HttpGateway],
) -> None:
    network, gateway = live
    own = gateway_name(load_config(network))
    assert own == "Gateway@org1.example.com"
    served = network / "crypto" / "peerOrganizations"
    assert not list(served.glob(f"*/users/{ADMIN1}/msp/keystore"))
    # It is nobody's caller identity either.
    with pytest.raises(HttpError) as refused:
        gateway.request(own, "GET", "/api/whoami")
    assert refused.value.status == 401


def test_paper_experiments_end_to_end_over_http(live: tuple[Path, HttpGateway]) -> None:
    _network, gateway = live
    client = patch_client(gateway)
    manifest = build_manifest(
        DATA, name="livefix", version="1.0", file_name="f.bin", groups=["lab"]
    )
    uploaded = client.upload(ADMIN1, manifest, DATA)
    assert uploaded["status"] == "pending" and len(uploaded["file_on"]) == 4
    assert client.approve(ADMIN2, "livefix", "1.0")["status"] == "released"
    client.register(USER, "debian-12", ["lab"])
    got = client.download(USER, "livefix")
    assert got.fetch.data == DATA
    client.report(USER, "livefix", "1.0", "installed", False)
    # Administrators' reads: the gateway cannot ask as them, so the client signs the query.
    history = client.history(ADMIN2, "livefix")
    actions = [e["action"] for e in history["events"]]
    assert actions[:2] == ["upload", "release"] and {"download", "report"} <= set(actions)
    rows = client.compliance(ADMIN1)["rows"]
    assert [(r["user_id"], r["status"]) for r in rows] == [
        ("Org1/User1@org1.example.com", "installed")
    ]


def test_unsigned_admin_read_is_a_json_409_naming_the_way(live: tuple[Path, HttpGateway]) -> None:
    _network, gateway = live
    with pytest.raises(HttpError) as refused:
        gateway.request(ADMIN1, "GET", "/api/compliance")
    assert refused.value.status == 409 and refused.value.body["kind"] == "sign-to-read"
    catalog = gateway.request(USER, "GET", "/api/patches")["patches"]
    assert ("livefix", "1.0", "released") in [
        (p["name"], p["version"], p["status"]) for p in catalog
    ]


def test_release_proof_and_freshness_over_http(live: tuple[Path, HttpGateway]) -> None:
    _network, gateway = live
    trust = Trust.load(gateway.crypto_dir).msps
    proof = gateway.prove(USER, "livefix", "1.0")
    proven = verify_proof(proof, trust, replicas=4)
    assert proven.release["manifest"]["version"] == "1.0"
    # The same proof, read back from the ledger pages: its block and transaction are there.
    tx = gateway.request(USER, "GET", f"/api/tx/{proven.tx_id}")
    assert tx["validation_code"] == "VALID" and tx["block"] == proven.block
    block = gateway.request(USER, "GET", f"/api/blocks/{proven.block}")
    assert block["metadata"]["commit_certificate"] >= 3
    fresh = patch_client(gateway).download(
        USER, "livefix", fresh=Freshness(max_age_ms=60_000, replicas=4)
    )
    assert fresh.fetch.data == DATA
    with pytest.raises(Refused, match="stale or frozen"):
        patch_client(gateway).download(USER, "livefix", fresh=Freshness(1, replicas=4))


def test_bad_input_is_json_4xx(live: tuple[Path, HttpGateway]) -> None:
    _network, gateway = live
    prepared = gateway.request(ADMIN2, "POST", "/api/tx", {"function": "approve",
                                                           "args": ["livefix", "1.0"]})  # fmt: skip
    wrong = gateway.signer(ADMIN2).sign(b"other bytes").hex()
    with pytest.raises(HttpError) as refused:
        gateway.request(
            ADMIN2, "POST", f"/api/tx/{prepared['tx_id']}/endorse", {"signature": wrong}
        )
    assert refused.value.status == 403 and "does not verify" in str(refused.value)
    with pytest.raises(HttpError) as not_admin:
        gateway.publish_file_as(USER, b"a device placing files")
    assert not_admin.value.status == 403
    with pytest.raises(HttpError) as unknown:
        gateway.request(USER, "POST", "/api/query", {"function": "nope"})
    assert unknown.value.status == 400


def test_console_reads_as_the_signer_and_shows_a_killed_node_down(
    live: tuple[Path, HttpGateway],
) -> None:
    network, gateway = live
    with headless_chromium() as driver:
        driver.get(gateway.url + "/console")
        sign_in(driver, gateway, ADMIN1)
        # Compliance is an administrator's read: the browser signs it (sign-to-read).
        WebDriverWait(driver, WAIT_S).until(lambda d: rows(d, "compliance"))
        [line] = rows(driver, "compliance")
        assert "Org1/User1@org1.example.com" in line and "installed" in line
        driver.find_element(By.XPATH, "//nav/button[@data-view='network']").click()
        WebDriverWait(driver, WAIT_S).until(lambda d: len(rows(d, "nodes")) == 4)
        assert not any("DOWN" in r for r in rows(driver, "nodes"))
        backup = next(r for r in rows(driver, "nodes") if "backup" in r).split()[0]
        cluster.node_action(network, int(backup), "kill")
        try:
            WebDriverWait(driver, WAIT_S).until(
                lambda d: any(r.startswith(f"{backup} ") and "DOWN" in r for r in rows(d, "nodes"))
            )
            WebDriverWait(driver, WAIT_S).until(
                lambda d: any("node-kill" in e for e in rows(d, "events"))
            )
        finally:
            cluster.node_action(network, int(backup), "start")


def test_nemesis_faults_are_marked_in_the_network_view(live: tuple[Path, HttpGateway]) -> None:
    """The nemesis's own strike/heal loop, with one short pause of a node."""
    network, gateway = live
    nemesis = Nemesis(network, load_config(network))
    pause = Fault("pause", at_s=0.0, hold_s=0.5, pick=2)
    applied = asyncio.run(
        apply_faults(nemesis, [pause], time.monotonic(), SETTLE_S + 1.0, lambda _text: None)
    )
    assert [f["kind"] for f in applied] == ["pause"]
    activity = gateway.request(ADMIN1, "GET", "/api/network/activity?seconds=60")
    marks = [
        (m["replica"], m["detail"], m["source"]) for m in activity["gateway_sessions"]["events"]
    ]
    target = applied[0]["targets"][0]
    assert (target, "pause (strike)", "nemesis") in marks
    assert (target, "pause (heal)", "nemesis") in marks


def test_reads_and_writes_fail_over_when_a_node_is_killed(live: tuple[Path, HttpGateway]) -> None:
    network, gateway = live
    nodes = gateway.request(ADMIN1, "GET", "/api/network")["nodes"]
    primary = next(n["replica"] for n in nodes if n["role"] == "primary")
    said = cluster.node_action(network, primary, "kill")
    assert "killed" in said
    # The network view shows it down, and the kill is marked on the activity strip.
    nodes = gateway.request(ADMIN1, "GET", "/api/network")["nodes"]
    assert [n["up"] for n in nodes].count(False) == 1 and not nodes[primary]["up"]
    activity = gateway.request(ADMIN1, "GET", "/api/network/activity?seconds=60")
    assert str(primary) in activity["down"]
    marks = activity["gateway_sessions"]["events"]
    assert any(m["replica"] == primary and "node-kill" in m["detail"] for m in marks), marks
    # Writes go on (the backups change view), and so do reads and downloads.
    client = patch_client(gateway)
    manifest = build_manifest(DATA + b"2", name="livefix", version="1.1", file_name="f.bin",
                              groups=["lab"])  # fmt: skip
    assert client.upload(ADMIN1, manifest, DATA + b"2")["status"] == "pending"
    assert client.approve(ADMIN2, "livefix", "1.1")["status"] == "released"
    got = client.download(USER, "livefix")
    assert got.fetch.data == DATA + b"2" and got.fetch.served_by != nodes[primary]["peer"]
    assert client.compliance(ADMIN1)["rows"]
    wait_for(
        "a new view",
        lambda: (
            {n["view"] for n in gateway.request(ADMIN1, "GET", "/api/network")["nodes"] if n["up"]}
            != {nodes[primary]["view"]}
        ),
    )
    cluster.node_action(network, primary, "start")
    digest = hashlib.sha256(DATA + b"2").hexdigest()
    fetched = gateway.http.get(
        f"/api/files/{digest}?size={len(DATA) + 1}",
        headers=gateway.signed_headers(
            USER, "GET", f"/api/files/{digest}?size={len(DATA) + 1}", b""
        ),
    )
    assert fetched.status_code == 200 and fetched.content == DATA + b"2"


def test_gateway_refusals_on_live_directories_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = tmp_path / "net"
    config = cluster.init(network, cluster.UpOptions())  # no broker, no node running
    assert main(["gateway", "--network", str(network), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach broker" in err
    older = replace(config, extra={k: v for k, v in config.extra.items() if k != "gateway"})
    older.save(network)  # a network made before the gateway had an identity
    assert main(["gateway", "--network", str(network), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "names no gateway identity" in err
    assert main(["gateway", "--network", str(tmp_path / "nothing"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a network directory" in err
