"""A real gateway process on 127.0.0.1 over a fresh simulated network, for the HTTP tests.

The network directory the gateway serves has every member's keystore removed:
the callers sign with keys from their own copy of the MSP tree, so a test
that passes shows the gateway needs no member's private key on disk.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from sim.fabric.patchclient import PatchClient
from sim.fabric.simnet import init_sim_network
from sim.fabric.verify import Trust
from sim.http.client import HttpGateway


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_gateway(
    tmp: Path, byzantine: dict[int, str] | None = None
) -> Iterator[tuple[str, Path]]:
    """(base URL, the callers' crypto tree) of a gateway started for the test."""
    network = tmp / "net"
    init_sim_network(network, seed=7, byzantine=byzantine)
    keys = callers_keys(network, tmp)
    with serving(network, tmp / "gateway.log") as url:
        yield url, keys


def callers_keys(network: Path, tmp: Path, keep: str = "") -> Path:
    """Move the callers' keys out of the served tree: a copy for them, none for the gateway
    (``keep``: a member whose key stays, the gateway's own identity on a live network)."""
    keys = tmp / "callers-crypto"
    shutil.copytree(network / "crypto", keys)
    for keystore in (network / "crypto").glob("peerOrganizations/*/users/*/msp/keystore"):
        if keystore.parent.parent.name != keep:
            shutil.rmtree(keystore)
    return keys


@contextmanager
def serving(network: Path, log_path: Path) -> Iterator[str]:
    """``ledgersim gateway`` for ``network`` in a child process, until the block ends."""
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "gateway", "--network", str(network), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/openapi.json", timeout=2)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text()) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def patch_client(gateway: HttpGateway) -> PatchClient:
    """A patch client over HTTP that trusts the callers' own CA certificates and CRLs."""
    return PatchClient(gateway, Trust.load(gateway.crypto_dir).msps)


@contextmanager
def headless_chromium() -> Iterator[WebDriver]:
    """Debian's Chromium driven through its chromedriver: nothing is downloaded."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def console_in_browser(
    tmp: Path, byzantine: dict[int, str] | None = None
) -> Iterator[tuple[HttpGateway, WebDriver]]:
    """A gateway on a fresh simulated network, its Python caller and a browser to drive the
    console with; all closed afterwards, the browser first."""
    with running_gateway(tmp, byzantine) as (url, keys):
        gateway = HttpGateway(url, keys)
        try:
            with headless_chromium() as driver:
                yield gateway, driver
        finally:
            gateway.close()
