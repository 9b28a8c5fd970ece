"""The admin pages in headless Chromium: log in, create a project, an SMTP credential (its
password shown once, copied with the button), add a domain and see its records, check DNS;
accessible names on every control, no script errors under the strict CSP."""

from __future__ import annotations

import re
from typing import Any

import pytest

from postroom.platform.factory import open_platform
from tests.dnszone import DnsZone
from tests.e2e.admin.conftest import ADMIN, PASSWORD, new_page
from tests.e2e.conftest import PageProblems, Shots
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium

# Every visible control must have an accessible name (label, aria-label or text).
UNNAMED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
  .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                   || el.textContent.trim() || el.getAttribute('title')))
  .map((el) => el.outerHTML)"""


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def clean(page: Any, problems: PageProblems) -> None:
    assert page.evaluate(UNNAMED) == [], page.url
    assert problems.errors == [], problems.errors
    assert [c for c in problems.console if c.startswith("error:")] == [], problems.console


def test_login_project_credential_and_domain(
    browser: Any,
    admin_server: ServerThread,
    dns_zone: DnsZone,
    shots: Shots,
    problems: PageProblems,
) -> None:
    check = expect()
    base = admin_server.base_url
    page = new_page(browser, problems, base)

    page.goto(base + "/admin/projects")
    check(page).to_have_url(re.compile(r"/login\?next=/admin/projects$"))
    check(page.get_by_role("heading", name="Log in to Postroom")).to_be_visible()
    check(page.get_by_label("Username")).to_be_focused()
    clean(page, problems)
    shots.take(page, "admin-01-login")

    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    check(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    check(page.get_by_label("Username")).to_have_value(ADMIN)
    check(page.get_by_label("Password")).to_have_value("")
    shots.take(page, "admin-02-login-failed")
    # The refused login is answered 401, which Chromium reports on the console: expected.
    assert problems.console == [
        "error: Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    problems.console.clear()

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    check(page).to_have_url(base + "/admin/projects")
    check(page.get_by_text(f"Signed in as {ADMIN}")).to_be_visible()
    check(page.get_by_role("link", name="Admin", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    clean(page, problems)

    form = page.locator("form[action='/admin/projects']")
    form.get_by_label("Project ID").fill("acme")
    form.get_by_label("Display name").fill("Acme Inc")
    form.get_by_label("Mode").select_option("live")
    form.get_by_label("Daily quota").fill("1000")
    form.get_by_role("button", name="Create project").click()
    check(page).to_have_url(base + "/admin/projects/acme?done=project-created")
    check(page.get_by_role("heading", level=1)).to_contain_text("Acme Inc")
    check(page.get_by_role("status").first).to_contain_text("Project created.")
    check(page.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    clean(page, problems)
    shots.take(page, "admin-03-project", full_page=True)

    page.get_by_role("link", name="SMTP & IP credentials").click()
    page.get_by_label("Username").fill("app-mailer")
    page.get_by_label("May send as").fill("example.com")
    page.get_by_role("button", name="Create SMTP credential").click()
    check(page.get_by_role("heading", name="SMTP credential created")).to_be_visible()
    secret = page.locator("#secret-value")
    password = secret.inner_text().strip()
    assert password.startswith("prs_") and len(password) > 40
    page.get_by_role("button", name="Copy password").click()
    check(page.get_by_role("button", name="Copy password")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == password
    clean(page, problems)
    shots.take(page, "admin-04-password-once")
    page.get_by_role("link", name="Done").click()
    check(page.get_by_role("row", name=re.compile("app-mailer"))).to_be_visible()
    assert password not in page.content()  # never shown again

    page.get_by_role("link", name="Domains").click()
    page.get_by_label("Domain", exact=True).fill("mail.example.test")
    page.get_by_role("button", name="Add domain").click()
    check(page).to_have_url(re.compile(r"/domains/mail\.example\.test\?done=domain-added$"))
    records = page.locator("li.record")
    service = open_platform(admin_server.app.config)
    try:
        report = service.records("acme", "mail.example.test")
    finally:
        service.close()
    check(records).to_have_count(len(report.records))
    for i, record in enumerate(report.records):
        item = records.nth(i)
        check(item.locator("code[id$='-name']")).to_have_text(record.name)
        check(item.locator("code[id$='-value']")).to_have_text(record.value)
        check(item.locator(".pill.status")).to_have_text("Not checked yet")
    clean(page, problems)
    shots.take(page, "admin-05-domain-records", full_page=True)

    dkim = page.get_by_role("button", name="Copy value of the DKIM record")
    dkim.click()
    wanted = next(r.value for r in report.records if r.kind == "dkim")
    assert page.evaluate("navigator.clipboard.readText()") == wanted

    for record in report.records:
        if record.kind in ("verification", "dkim"):
            dns_zone.add_txt(record.name, record.value)
    page.get_by_role("button", name="Check DNS now").click()
    check(page.get_by_role("status").first).to_contain_text("DNS checked")
    check(page.locator("#domain-title .pill")).to_have_text("Verified")
    check(records.filter(has_text="Ownership").locator(".pill.status")).to_have_text("OK")
    check(records.filter(has_text="DKIM").locator(".pill.status")).to_have_text("OK")
    shots.take(page, "admin-06-domain-verified", full_page=True)

    page.get_by_role("link", name="Projects").first.click()
    check(page.get_by_role("row", name=re.compile("Acme Inc"))).to_contain_text("Live")
    shots.take(page, "admin-07-projects")

    page.get_by_role("button", name="Log out").click()
    check(page).to_have_url(base + "/login?done=logged-out")
    check(page.get_by_role("status").first).to_have_text("You are logged out.")
    page.goto(base + "/admin/projects")
    check(page).to_have_url(re.compile(r"/login\?next="))
    assert problems.dialogs == []
    page.context.close()


def test_dark_mode_and_api_key_page(
    browser: Any, admin_server: ServerThread, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    base = admin_server.base_url
    page = new_page(browser, problems, base, color_scheme="dark")
    page.goto(base + "/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(base + "/admin/projects/default/api-keys")
    page.get_by_label("Name", exact=True).fill("ci-tests")
    page.get_by_label("read: the project's inbox in /api/v1").check()
    page.get_by_role("button", name="Create API key").click()
    check(page.get_by_role("heading", name="API key created")).to_be_visible()
    token = page.locator("#secret-value").inner_text().strip()
    assert token.startswith("prk_")
    clean(page, problems)
    shots.take(page, "admin-08-api-key-dark")
    # Revoking asks first; dismissing keeps the key.
    page.get_by_role("link", name="Done").click()
    dialogs: list[str] = []

    def answer(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", answer)
    page.get_by_role("button", name="Revoke API key ci-tests").click()
    assert dialogs and "Revoke API key ci-tests?" in dialogs[0]
    check(page.get_by_role("row", name=re.compile("ci-tests"))).to_be_visible()
    shots.take(page, "admin-09-keys-dark")
    page.context.close()
