"""The console's network view for a classroom, in headless Chromium: activity as it happens.

The network's replica 0 is configured ``silent`` (it sends nothing: a crash
the others cannot tell from a slow node). Replica 0 is view 0's primary, so
the first write forces a view change. The page is opened *before* that write
and must then show, without a reload: the view change (from the ledger's
block views and from the session's trace), replica 0 marked down (it sent
nothing in the session), the committed transaction in the per-second
throughput, and the marks drawn on the message-rate strip.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from http_fixtures import console_in_browser, patch_client
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from test_http_console import ADMIN1, USER, WAIT_S, rows, screenshot, sign_in

from sim.http.client import HttpGateway

PIXELS_OF = """
const [r, g, b] = arguments[0];
const canvas = document.getElementById('rate-strip');
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let n = 0;
for (let i = 0; i < data.length; i += 4) {
  if (data[i] === r && data[i + 1] === g && data[i + 2] === b && data[i + 3] === 255) n++;
}
return n;
"""
VIEW_CHANGE_BLUE = (0x1F, 0x5F, 0xBF)
TX_BAR_BLUE = (0x2F, 0x6F, 0xB3)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpGateway, WebDriver]]:
    tmp = tmp_path_factory.mktemp("network-view")
    with console_in_browser(tmp, byzantine={0: "silent"}) as setup:
        yield setup


def node_row(driver: WebDriver, replica: int) -> str:
    return next(r for r in rows(driver, "nodes") if r.startswith(f"{replica} "))


def test_view_change_and_down_node_appear_as_they_happen(
    setup: tuple[HttpGateway, WebDriver],
) -> None:
    gateway, driver = setup
    driver.get(gateway.url + "/console")
    sign_in(driver, gateway, ADMIN1)
    driver.find_element(By.XPATH, "//nav/button[@data-view='network']").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: len(rows(d, "nodes")) == 4)
    WebDriverWait(driver, WAIT_S).until(
        lambda d: "0 sessions run by this gateway" in d.find_element(By.ID, "throughput").text
    )
    # Before anything happened: configured silent, but not yet seen down; no view change.
    assert "up (silent)" in node_row(driver, 0) and "DOWN" not in node_row(driver, 0)
    assert not any("view change" in e for e in rows(driver, "events"))
    assert driver.execute_script(PIXELS_OF, VIEW_CHANGE_BLUE) == 0

    patch_client(gateway).register(USER, "ubuntu-22.04", ["lab"])

    WebDriverWait(driver, WAIT_S).until(lambda d: "DOWN" in node_row(d, 0))
    assert "sent nothing during the last session (register)" in node_row(driver, 0)
    WebDriverWait(driver, WAIT_S).until(
        lambda d: "1 sessions run by this gateway" in d.find_element(By.ID, "throughput").text
    )
    events = rows(driver, "events")
    assert any("view change" in e and "block 1 committed in view 1" in e for e in events), events
    assert any("view change 1 1" in e and e.endswith("session") for e in events), events
    assert any("down 0" in e and "sent nothing during register" in e for e in events), events
    assert "primary" in node_row(driver, 1)
    throughput = driver.find_element(By.ID, "throughput").text
    assert re.search(r"\(1 in the last \d+ s", throughput), throughput
    assert driver.execute_script(PIXELS_OF, VIEW_CHANGE_BLUE) > 0
    assert driver.execute_script(PIXELS_OF, TX_BAR_BLUE) > 0
    screenshot(driver, "network")
