"""Headless Chromium for the trace-page tests: load a page, read what it drew.

The page publishes its counters as ``data-*`` attributes on ``<body>``; a test
reads them from Chromium's ``--dump-dom``. Keys are pressed by a script added
after the page's own, dispatching the same ``keydown`` events a keyboard does;
``--screenshot`` takes a picture of the same page at the same fragment.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed for the trace-page tests: apt-get install -y chromium")


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
         f"--user-data-dir={profile}", "--hide-scrollbars", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _profile(tmp_path: Path) -> Path:
    return tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"


def dump_dom(html_path: Path, tmp_path: Path, fragment: str = "", size: str = "1400,800") -> str:
    done = _run(
        [f"--window-size={size}", "--enable-logging=stderr", "--dump-dom",
         html_path.resolve().as_uri() + fragment],
        _profile(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Uncaught" not in done.stderr, done.stderr[-2000:]
    return done.stdout


def body_attributes(html_path: Path, tmp_path: Path, fragment: str = "") -> dict[str, str]:
    """Load the page in headless Chromium and return ``<body>``'s data-* attributes."""
    return attributes_of(dump_dom(html_path, tmp_path, fragment))


def attributes_of(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))


def with_keys(page: str, keys: list[str], record_each: bool = False) -> str:
    """The page with a script that presses ``keys`` once it has drawn.

    With ``record_each``, the cursor, the selected slot and its filled cells after
    every key are kept in ``data-key-log`` (``cursor/slot/cells``, space-separated;
    ``-`` for none).
    """
    script = f"""<script>
(function () {{
  const log = [];
  for (const key of {json.dumps(keys)}) {{
    window.dispatchEvent(new KeyboardEvent("keydown", {{ key: key, bubbles: true }}));
    const ds = document.body.dataset;
    log.push((ds.cursor || "-") + "/" + (ds.slot || "-") + "/" + ds.slotCells);
  }}
  if ({json.dumps(record_each)}) document.body.dataset.keyLog = log.join(" ");
}})();
</script>
</body>"""
    assert page.count("</body>") == 1
    return page.replace("</body>", script)


def screenshot(html_path: Path, out: Path, tmp_path: Path, fragment: str, size: str) -> None:
    done = _run(
        [f"--window-size={size}", f"--screenshot={out}", html_path.resolve().as_uri() + fragment],
        _profile(tmp_path),
    )
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
