"""The inbox behind an admin login: the same UI works with the session cookie and sends the
CSRF token with every change (the server refuses changes without it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.config import HostPort
from postroom.platform.factory import open_platform
from tests.e2e.conftest import PageProblems, free_port
from tests.e2e.mail import send, simple
from tests.harness import ServerThread, make_config

pytestmark = pytest.mark.chromium

ROWS = "#message-list a.row"
ADMIN, PASSWORD = "ada", "a long enough passphrase"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[ServerThread]:
    config = make_config(tmp_path / "data", smtp=HostPort("127.0.0.1", free_port()))
    service = open_platform(config)
    try:
        service.create_admin(ADMIN, PASSWORD)
    finally:
        service.close()
    srv = ServerThread(config).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_inbox_after_login_changes_things_with_the_csrf_token(
    guarded: ServerThread, page: Any, problems: PageProblems
) -> None:
    from playwright.sync_api import expect

    send(guarded.smtp_port, simple("Kept"))
    send(guarded.smtp_port, simple("Doomed"))
    assert httpx.get(f"{guarded.base_url}/api/v1/messages", timeout=10).status_code == 401

    page.goto(guarded.base_url + "/")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(guarded.base_url + "/")
    rows = page.locator(ROWS)
    expect(rows).to_have_count(2)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    rows.filter(has_text="Doomed").click()
    page.get_by_role("button", name="Delete message").click()
    expect(rows).to_have_count(1)
    page.reload()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Kept")
    # Still live behind the login.
    send(guarded.smtp_port, simple("Fresh"))
    expect(rows).to_have_count(2)
    assert not [c for c in problems.console if "403" in c or "401" in c], problems.console
