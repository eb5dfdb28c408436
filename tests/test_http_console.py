"""The web console in headless Chromium: load a key, approve in the browser, see compliance.

Driven by Selenium through Debian's ``chromium-driver`` (scripts/system-deps.sh);
nothing is downloaded. The browser signs with WebCrypto from a PEM it holds in
memory, so the approval below is the browser's own signature, converted to
low-S DER by the gateway. Set ``LEDGERSIM_SCREENSHOTS=DIR`` to keep a
screenshot of each view (docs/img/console-*.png were made that way).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_fixtures import console_in_browser, patch_client
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from sim.fabric.patchclient import build_manifest
from sim.http.client import HttpGateway, member_msp_dir
from sim.http.openapi import OPERATIONS

ADMIN1 = "Admin@org1.example.com"
ADMIN2 = "Admin@org2.example.com"
USER = "User1@org1.example.com"
WAIT_S = int(os.environ.get("LEDGERSIM_BROWSER_WAIT_S", "120"))
"""Seconds to wait for the page: a write runs a whole simulated session on a shared machine."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpGateway, WebDriver]]:
    with console_in_browser(tmp_path_factory.mktemp("console")) as setup:
        yield setup


def pem_of(gateway: HttpGateway, name: str) -> str:
    keystore = member_msp_dir(gateway.crypto_dir, name) / "keystore"
    return next(keystore.iterdir()).read_text()


def sign_in(driver: WebDriver, gateway: HttpGateway, name: str) -> None:
    driver.find_element(By.ID, "identity").clear()
    driver.find_element(By.ID, "identity").send_keys(name)
    driver.execute_script(
        "document.getElementById('pem').value = arguments[0]", pem_of(gateway, name)
    )
    driver.find_element(By.ID, "load").click()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: f"signed in as {name}" in d.find_element(By.ID, "status").text
    )
    assert driver.find_element(By.ID, "pem").get_attribute("value") == ""


def rows(driver: WebDriver, table: str) -> list[str]:
    """Each row's cells joined by spaces, read in one script: the page redraws tables."""
    script = (
        "return Array.from(document.querySelectorAll(arguments[0]),"
        " r => Array.from(r.cells, c => c.textContent).join(' '))"
    )
    return list(driver.execute_script(script, f"#{table} tbody tr"))


def screenshot(driver: WebDriver, name: str) -> None:
    where = os.environ.get("LEDGERSIM_SCREENSHOTS")
    if where:
        driver.save_screenshot(str(Path(where) / f"console-{name}.png"))


def test_admin_approves_in_the_browser_and_compliance_changes(
    setup: tuple[HttpGateway, WebDriver],
) -> None:
    gateway, driver = setup
    client = patch_client(gateway)
    clock = gateway.request(ADMIN1, "GET", "/api/network")["clock_ms"]
    data = b"browser approved fix"
    manifest = build_manifest(
        data,
        name="hotfix",
        version="1.0",
        file_name="hotfix.bin",
        groups=["lab"],
        deadline_ms=clock + 2_500,  # passed by the time compliance is read: overdue
    )
    client.upload(ADMIN1, manifest, data)
    client.register(USER, "ubuntu-22.04", ["lab"])

    driver.get(gateway.url + "/console")
    sign_in(driver, gateway, ADMIN2)
    WebDriverWait(driver, WAIT_S).until(lambda d: any("hotfix" in r for r in rows(d, "pending")))
    assert rows(driver, "compliance") == []  # nothing released yet
    approve = driver.find_element(By.XPATH, "//table[@id='pending']//button[text()='Approve']")
    approve.click()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: "approve hotfix 1.0: VALID" in d.find_element(By.ID, "message").text
    )
    WebDriverWait(driver, WAIT_S).until(lambda d: rows(d, "compliance"))
    assert rows(driver, "pending") == []
    [line] = rows(driver, "compliance")
    assert "Org1/User1@org1.example.com" in line and "OVERDUE" in line
    overdue = driver.find_elements(By.CSS_SELECTOR, "#compliance tbody tr.overdue")
    assert len(overdue) == 1
    driver.find_element(By.ID, "history-name").send_keys("hotfix")
    driver.find_element(By.ID, "history-load").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: len(rows(d, "history")) == 2)
    assert [r.split()[2] for r in rows(driver, "history")] == ["upload", "release"]
    screenshot(driver, "admin")
    released = gateway.request(USER, "GET", "/api/patches")["patches"][0]
    assert released["status"] == "released" and released["approvals"] == [ADMIN2]


def test_device_downloads_with_the_hash_checked_in_the_browser(
    setup: tuple[HttpGateway, WebDriver],
) -> None:
    gateway, driver = setup
    driver.get(gateway.url + "/console")
    sign_in(driver, gateway, USER)
    driver.find_element(By.XPATH, "//nav/button[@data-view='device']").click()
    download = WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element(By.XPATH, "//table[@id='catalog']//button[text()='Download']")
    )
    download.click()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: "sha256 checked; record VALID" in d.find_element(By.ID, "message").text
    )
    screenshot(driver, "device")
    history = gateway.request(ADMIN1, "GET", "/api/patches/hotfix/history")
    assert "download" in [e["action"] for e in history["events"]]


def test_device_saves_a_proof_that_verifies_offline(
    setup: tuple[HttpGateway, WebDriver], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sim.cli.main import main

    gateway, driver = setup
    driver.get(gateway.url + "/console")
    sign_in(driver, gateway, USER)
    driver.find_element(By.XPATH, "//nav/button[@data-view='device']").click()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element(
            By.XPATH, "//table[@id='catalog']//button[text()='Download proof']"
        )
    ).click()
    link = WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "proof-link"))
    assert link.get_attribute("download") == "hotfix-1.0.proof.json"
    saved = driver.execute_async_script(
        "fetch(arguments[0]).then(r => r.text()).then(arguments[1])", link.get_attribute("href")
    )
    proof = tmp_path / "saved.proof.json"
    proof.write_text(saved)
    device = tmp_path / "device" / "peerOrganizations"
    for org in (Path(gateway.crypto_dir) / "peerOrganizations").iterdir():
        shutil.copytree(org / "msp", device / org.name / "msp")
    capsys.readouterr()
    assert main(["patch", "verify-proof", str(proof), "--msp", str(device), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1.0"


def test_network_view_shows_nodes_and_blocks(setup: tuple[HttpGateway, WebDriver]) -> None:
    gateway, driver = setup
    driver.get(gateway.url + "/console")
    sign_in(driver, gateway, ADMIN1)
    driver.find_element(By.XPATH, "//nav/button[@data-view='network']").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: len(rows(d, "nodes")) == 4)
    WebDriverWait(driver, WAIT_S).until(lambda d: len(rows(d, "blocks")) >= 4)
    nodes = rows(driver, "nodes")
    assert sum("primary" in n for n in nodes) == 1
    assert any("approve by Admin@org2.example.com (VALID)" in b for b in rows(driver, "blocks"))
    throughput = driver.find_element(By.ID, "throughput").text
    assert "committed transactions/s" in throughput and "sessions run by this gateway" in throughput


def test_docs_page_lists_the_api_and_sends_signed_requests_offline(
    setup: tuple[HttpGateway, WebDriver],
) -> None:
    gateway, driver = setup
    driver.get(gateway.url + "/docs")
    WebDriverWait(driver, WAIT_S).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#operations section")) == len(OPERATIONS)
    )
    driver.find_element(By.ID, "identity").send_keys(ADMIN1)
    driver.execute_script(
        "document.getElementById('pem').value = arguments[0]", pem_of(gateway, ADMIN1)
    )
    driver.find_element(By.ID, "load").click()
    whoami = driver.find_element(
        By.XPATH, "//section[.//code[text()='GET /api/whoami']]//button[text()='Send']"
    )
    whoami.click()
    answer = WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element(By.XPATH, "//section[.//code[text()='GET /api/whoami']]//pre").text
    )
    assert answer.startswith("200") and '"name": "Admin@org1.example.com"' in answer
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(url.startswith(gateway.url) for url in resources), resources
