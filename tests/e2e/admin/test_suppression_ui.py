"""The suppression list tab in headless Chromium: log in, add an address (an error shown on
the form for a bad one), import CSV pasted into the form, search, remove after confirming;
accessible names on every control, no script errors under the strict CSP."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.platform.factory import open_platform
from tests.e2e.admin.conftest import ADMIN, PASSWORD, new_page
from tests.e2e.admin.test_admin_ui import clean, expect
from tests.e2e.conftest import PageProblems, Shots
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium


def test_suppression_tab(
    browser: Any, admin_server: ServerThread, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    config = admin_server.app.config
    service = open_platform(config)
    try:
        service.create_project("acme", "Acme Inc")
    finally:
        service.close()
    base = admin_server.base_url
    page = new_page(browser, problems, base)
    page.goto(base + "/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(base + "/admin/projects/acme")
    page.get_by_role("link", name="Suppression list").click()
    check(page.get_by_role("heading", name="Suppression list")).to_be_visible()
    check(page.get_by_text("No suppressed addresses.")).to_be_visible()
    clean(page, problems)

    add = page.locator("form[action='/admin/projects/acme/suppressions']")
    add.get_by_label("Address").fill("gone@example.net")
    add.get_by_label("Reason", exact=True).select_option("bounce")
    add.get_by_label("Note").fill("5.1.1 user unknown")
    add.get_by_role("button", name="Suppress").click()
    check(page.get_by_text("Address added to the suppression list")).to_be_visible()
    check(page.get_by_role("row", name="gone@example.net")).to_contain_text("bounce")

    imported = page.locator("form[action='/admin/projects/acme/suppressions/import']")
    imported.get_by_label("CSV", exact=True).fill("email,reason\nann@example.org,unsubscribe\n")
    imported.get_by_role("button", name="Import").click()
    check(page.get_by_role("row", name="ann@example.org")).to_contain_text("unsubscribe")
    clean(page, problems)
    shots.take(page, "admin-suppressions", full_page=True)

    page.get_by_label("Search").fill("ANN@")
    page.get_by_role("button", name="Search").click()
    check(page.get_by_role("row", name="gone@example.net")).to_have_count(0)
    page.goto(base + "/admin/projects/acme/suppressions")
    # The form asks first (window.confirm); this browser answers yes and notes the question.
    page.evaluate(
        "window.confirm = (text) => { sessionStorage.setItem('asked', text); return true; }"
    )
    page.get_by_role("button", name="Remove gone@example.net").click()
    check(page.get_by_text("Address removed from the suppression list")).to_be_visible()
    check(page.get_by_role("row", name="gone@example.net")).to_have_count(0)
    asked = page.evaluate("sessionStorage.getItem('asked')")
    assert asked.startswith("Remove gone@example.net from the suppression list?")
    clean(page, problems)
