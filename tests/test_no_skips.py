"""The suite's conftest turns a skipped or xfailed test into a failed run.

Checked by running pytest on a scratch directory holding a copy of the real
conftest: once with only a passing test (exit 0), once with a skip and once
with an xfail (exit 1 each), so the hook itself is shown able to fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

PASSING = "def test_ok():\n    assert 1 + 1 == 2\n"
SKIPPED = "import pytest\n\n@pytest.mark.skip(reason='demo')\ndef test_skipped():\n    pass\n"
XFAILED = "import pytest\n\n@pytest.mark.xfail\ndef test_broken():\n    assert False\n"


def run_suite(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(body)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_a_clean_run_passes(tmp_path: Path) -> None:
    assert run_suite(tmp_path, PASSING).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize(("body", "kind"), [(SKIPPED, "skipped"), (XFAILED, "xfailed")])
def test_tests_that_did_not_run_fail_the_run(tmp_path: Path, body: str, kind: str) -> None:
    done = run_suite(tmp_path, PASSING + "\n" + body)
    assert done.returncode == 1, done.stdout
    assert f"count as failures (1 {kind})" in done.stdout
