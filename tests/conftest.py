from __future__ import annotations

import os
from collections.abc import Generator

import pytest
from hypothesis import HealthCheck, settings

from tests.services import SKIP_PREFIX

# Property-based tests (hypothesis): `make test` runs a short, reproducible pass (a few
# seconds in all); POSTROOM_HYPOTHESIS=thorough explores ten times more with fresh random
# examples; bench/fuzz_long.py is the long run.
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "short",
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, database=None, suppress_health_check=_QUIET
)
settings.load_profile(os.environ.get("POSTROOM_HYPOTHESIS", "short"))


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
