"""The admin page of capture routes in headless Chromium: add a rule with the form (CSRF-checked),
mail sent with smtplib to a matching recipient lands in that project's inbox, a bad rule is
refused on the page naming the field, and Delete removes it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.config import HostPort
from postroom.platform.factory import open_platform
from tests.e2e.conftest import Shots, free_port
from tests.e2e.mail import send, simple
from tests.harness import ServerThread, make_config

pytestmark = pytest.mark.chromium
ADMIN, PASSWORD = "ada", "a long enough passphrase"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[ServerThread]:
    config = make_config(
        tmp_path / "data",
        smtp=HostPort("127.0.0.1", free_port()),
        capture_route=("user:staging=staging",),
    )
    service = open_platform(config)
    try:
        service.create_admin(ADMIN, PASSWORD)
        service.create_project("staging")
        service.create_project("team-a", "Team A")
        service.create_project("shop", mode="live")
    finally:
        service.close()
    srv = ServerThread(config).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_add_a_rule_in_the_admin_page_and_mail_follows_it(
    guarded: ServerThread, context: Any, shots: Shots
) -> None:
    from playwright.sync_api import expect

    page = context.new_page()  # not conftest's: this test answers the confirmation itself
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    questions: list[str] = []

    def answer(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)

    base = guarded.base_url
    page.goto(base + "/admin/capture-routes")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    check = expect
    check(page).to_have_url(base + "/admin/capture-routes")
    table = page.locator("#capture-routes")
    check(table.locator("tbody tr")).to_have_count(1)
    check(table).to_contain_text("--capture-route")

    form = page.locator("form[action='/admin/capture-routes']")
    # A project that is not one for captures is refused on the page, naming it.
    check(form.get_by_label("Into project").locator("option")).to_have_text(
        ["Default (default)", "staging", "Team A (team-a)"]
    )
    form.get_by_label("By").select_option("rcpt")
    form.get_by_label("Pattern").fill("*@team-a.test")
    form.get_by_label("Into project").select_option("team-a")
    form.get_by_role("button", name="Add rule").click()
    check(page.get_by_role("status").first).to_contain_text("Capture route added")
    check(table.locator("tbody tr")).to_have_count(2)
    check(table.locator("tbody tr").nth(1)).to_contain_text("*@team-a.test")
    shots.take(page, "capture-routes-01-added", full_page=True)

    send(guarded.smtp_port, simple("For team A", to="dev@team-a.test"))
    send(guarded.smtp_port, simple("For nobody", to="dev@else.test"))
    page.get_by_role("link", name="Inbox", exact=True).click()
    rows = page.locator("#message-list a.row")
    check(rows).to_have_count(1)
    check(rows.first).to_contain_text("For nobody")
    page.goto(base + "/p/team-a/")
    check(rows).to_have_count(1)
    check(rows.first).to_contain_text("For team A")
    shots.take(page, "capture-routes-02-team-a-inbox")

    # Without the form's token the post is refused (CSRF), nothing stored.
    forged = httpx.post(
        base + "/admin/capture-routes",
        data={"kind": "rcpt", "pattern": "*", "project": "team-a"},
        cookies={c["name"]: c["value"] for c in page.context.cookies()},
        timeout=10,
    )
    assert forged.status_code == 403

    page.goto(base + "/admin/capture-routes")
    form.get_by_label("Pattern").fill("has space")
    form.get_by_label("Into project").select_option("team-a")
    form.get_by_role("button", name="Add rule").click()
    check(page.get_by_role("alert")).to_contain_text("Pattern must be at most")
    check(form.get_by_label("Pattern")).to_have_attribute("aria-invalid", "true")
    check(form.get_by_label("Pattern")).to_have_value("has space")
    shots.take(page, "capture-routes-03-refused")

    page.get_by_role("button", name=re.compile(r"Delete the route rcpt:\*@team-a\.test")).click()
    check(page.get_by_role("status").first).to_contain_text("Capture route deleted")
    check(table.locator("tbody tr")).to_have_count(1)
    send(guarded.smtp_port, simple("After delete", to="dev@team-a.test"))
    listed = page.evaluate("async () => (await (await fetch('/api/v1/messages')).json()).total")
    assert listed == 2
    assert questions == ["Delete the capture route rcpt:*@team-a.test=team-a?"]
    assert errors == []
