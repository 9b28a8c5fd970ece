"""The Reputation tab in headless Chromium: log in, open a live project's tab from its page,
see the rates table and the chart (an SVG with an accessible title), a warning, then a pause
with its reason and the 554 answer submitters get; Resume sending resumes it (the notice
shown, the warning gone); accessible names on every control, no script errors under the
strict CSP."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.core.events import EventQuery, NewEvent
from postroom.platform.factory import open_platform
from postroom.storage.store import SqlMessageStore
from tests.e2e.admin.conftest import ADMIN, PASSWORD, new_page
from tests.e2e.admin.test_admin_ui import clean, expect
from tests.e2e.conftest import PageProblems, Shots
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium


def record(server: ServerThread, sends: int, bounces: int = 0, complaints: int = 0) -> None:
    """Events of a live project's sending, as the delivery worker writes them."""
    store = server.app.store
    assert isinstance(store, SqlMessageStore)
    now = server.app.clock.now()
    store.queue.record_reports(
        [NewEvent("acme", "send", now, "m1", f"r{i}@example.net") for i in range(sends)]
        + [
            NewEvent("acme", "bounce", now, "m1", f"b{i}@example.net", {"hard": True})
            for i in range(bounces)
        ]
        + [NewEvent("acme", "complaint", now, "m1", f"c{i}@example.net") for i in range(complaints)]
    )


def test_reputation_tab(
    browser: Any, admin_server: ServerThread, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    service = open_platform(admin_server.app.config)
    try:
        service.create_project("acme", "Acme Inc", mode="live")
    finally:
        service.close()
    guard = admin_server.app.reputation
    assert guard is not None
    base = admin_server.base_url
    page = new_page(browser, problems, base)
    page.goto(base + "/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(base + "/admin/projects/acme")
    page.get_by_role("link", name="Reputation").click()
    check(page.get_by_role("heading", name="Reputation", exact=True)).to_be_visible()
    check(page.get_by_text("Nothing sent in the last 30 days.")).to_be_visible()
    clean(page, problems)

    record(admin_server, 1000, complaints=2)  # 0.2 % complaints: a warning
    assert ("acme", "warning") in guard.run_once()
    page.reload()
    warning = page.get_by_role("alert")
    check(warning).to_contain_text("Warning")
    check(warning).to_contain_text("complaint rate 0.2% over 7 days")
    check(page.get_by_role("button", name="Resume sending")).to_have_count(0)
    check(page.get_by_role("img", name="Daily bounce rate")).to_be_visible()  # the chart
    check(page.get_by_role("row", name="7 days")).to_contain_text("1000")

    record(admin_server, 0, bounces=150)  # 15 % hard bounces: paused
    assert ("acme", "paused") in guard.run_once()
    page.reload()
    paused = page.get_by_role("alert")
    check(paused).to_contain_text("Sending is paused")
    check(paused).to_contain_text("bounce rate 15% over 7 days")
    check(paused).to_contain_text("554 5.7.1 Sending paused for this project")
    clean(page, problems)
    shots.take(page, "admin-reputation-paused", full_page=True)

    page.get_by_role("button", name="Resume sending").click()
    check(page.get_by_role("status").filter(has_text="Sending resumed")).to_be_visible()
    check(page.get_by_role("alert")).to_have_count(0)
    check(page.get_by_role("button", name="Resume sending")).to_have_count(0)
    clean(page, problems)
    store = admin_server.app.store
    assert isinstance(store, SqlMessageStore)
    levels = store.events.query("acme", EventQuery(types=("reputation",))).events
    assert [(e.detail["level"], e.detail.get("by")) for e in levels][-1] == ("resumed", ADMIN)
