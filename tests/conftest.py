from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from tests.services import SKIP_PREFIX


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Under CI=true a missing service is a failure, not a skip."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if SKIP_PREFIX in reason:
            report.outcome = "failed"
            report.longrepr = f"CI requires this service: {reason}"
