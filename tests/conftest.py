"""Hypothesis profiles, chosen with HYPOTHESIS_PROFILE (default "ci").

"ci" is reproducible and bounded: derandomized (the same examples on every
machine, so a red CI run is a red local run), no deadline (the machine is
shared and simulated runs vary in wall time), and the failing example's blob
printed so it can be replayed with ``@reproduce_failure``. "long" is for
researchers hunting rare schedules: many more examples, random seeds.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped or xfailed test is not a passing test: fail the run if there is any.

    The project's rule is that every test runs everywhere the suite runs (CI
    installs what the live and browser tests need), so a skip can only mean a
    missing dependency or a disabled check, and either must turn CI red.
    """
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    unrun = {kind: len(reporter.stats.get(kind, [])) for kind in ("skipped", "xfailed", "xpassed")}
    unrun = {kind: count for kind, count in unrun.items() if count}
    if unrun and session.exitstatus == pytest.ExitCode.OK:
        detail = ", ".join(f"{count} {kind}" for kind, count in unrun.items())
        reporter.write_line(
            f"ledgersim: tests that did not run count as failures ({detail})", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
