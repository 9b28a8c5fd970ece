"""The Templates tab in headless Chromium: log in, save a template, preview it with sample
data (the HTML part in a sandboxed frame: its script does not run), see a missing variable
named; accessible names on every control, no script errors under the strict CSP."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.platform.factory import open_platform
from tests.e2e.admin.conftest import ADMIN, PASSWORD, new_page
from tests.e2e.admin.test_admin_ui import clean, expect
from tests.e2e.conftest import PageProblems, Shots
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium


def test_templates_tab(
    browser: Any, admin_server: ServerThread, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    service = open_platform(admin_server.app.config)
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
    page.get_by_role("link", name="Templates").click()
    check(page.get_by_role("heading", name="Email templates")).to_be_visible()
    check(page.get_by_text("No templates yet.")).to_be_visible()
    clean(page, problems)

    save = page.locator("form[action='/admin/projects/acme/templates']")
    save.get_by_label("Name").fill("welcome")
    save.get_by_label("Subject").fill("Welcome, {{name}}")
    save.get_by_label("Text").fill("Dear {{name}},\nthanks for joining.")
    save.get_by_label("HTML").fill(
        "<h1 id='hello'>Hi {{name}}</h1><script>document.title='ran'</script>"
    )
    save.get_by_role("button", name="Save template").click()
    check(page.get_by_text("Template created.")).to_be_visible()
    check(page.get_by_role("row", name="welcome")).to_contain_text("Welcome, {{name}}")

    preview = page.locator("form[action='/admin/projects/acme/templates/preview']")
    preview.get_by_label("Sample data (JSON)").fill('{"name": "Ann <ann@example.net>"}')
    preview.get_by_role("button", name="Render, send nothing").click()
    check(page.locator("#preview-subject")).to_have_text("Welcome, Ann <ann@example.net>")
    frame = page.frame_locator("#preview-html")
    check(frame.locator("#hello")).to_have_text("Hi Ann <ann@example.net>")
    assert page.title() != "ran"
    blocked = [c for c in problems.console if "Blocked script execution in 'about:srcdoc'" in c]
    assert blocked, problems.console  # the sandbox stopped the template's script
    problems.console[:] = [c for c in problems.console if c not in blocked]
    clean(page, problems)
    shots.take(page, "admin-templates", full_page=True)
    page.locator("#preview-html").scroll_into_view_if_needed()
    shots.take(page, "admin-template-preview")

    preview = page.locator("form[action='/admin/projects/acme/templates/preview']")
    preview.get_by_label("Sample data (JSON)").fill("{}")
    preview.get_by_role("button", name="Render, send nothing").click()
    check(page.get_by_role("alert")).to_contain_text("the variable 'name' is missing")
