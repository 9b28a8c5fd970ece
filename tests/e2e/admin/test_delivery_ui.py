"""The Delivery tab in headless Chromium: log in, see a live project's queue per state and
domain, hold one entry with its button, cancel a domain's entries with the bulk form, see the
events; accessible names on every control, no script errors under the strict CSP."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from postroom.core.clock import FakeClock
from postroom.pipeline.deliveries import deliveries_for
from postroom.platform.factory import open_platform
from tests.e2e.admin.conftest import ADMIN, PASSWORD, new_page
from tests.e2e.admin.test_admin_ui import clean, expect
from tests.e2e.conftest import PageProblems, Shots
from tests.harness import ServerThread
from tests.integration.storage.factory import make_message

pytestmark = pytest.mark.chromium


def test_delivery_tab(
    browser: Any, admin_server: ServerThread, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    service = open_platform(admin_server.app.config)
    try:
        service.create_project("acme", "Acme Inc", "live")
    finally:
        service.close()
    recipients = ("ann@example.net", "bob@slow.example", "cy@slow.example")
    base_message = make_message(FakeClock(), to=recipients, project="acme", status="queued")
    envelope = dataclasses.replace(base_message.envelope, rcpt_params=({}, {}, {}))
    message = dataclasses.replace(
        base_message, envelope=envelope, deliveries=deliveries_for(envelope)
    )
    admin_server.call(admin_server.app.store.add(message))  # type: ignore[union-attr]

    base = admin_server.base_url
    page = new_page(browser, problems, base)
    page.goto(base + "/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(base + "/admin/projects/acme")
    page.get_by_role("link", name="Delivery").click()
    check(page.get_by_role("heading", name="Queue")).to_be_visible()
    check(page.get_by_role("row", name="slow.example 2 0")).to_be_visible()
    clean(page, problems)

    page.get_by_role("button", name="Hold bob@slow.example").click()
    check(page.get_by_text("Hold: 1 entry.")).to_be_visible()
    check(page.get_by_role("button", name="Release bob@slow.example")).to_be_visible()

    bulk = page.locator("form[action='/admin/projects/acme/delivery/act']").last
    bulk.get_by_label("Action").select_option("cancel")
    bulk.get_by_label("Entries in state").select_option("queued")
    bulk.get_by_label("For recipient domain").fill("slow.example")
    bulk.get_by_role("button", name="Apply").click()
    check(page.get_by_text("Cancel: 1 entry.")).to_be_visible()
    check(page.get_by_role("button", name="Cancel cy@slow.example")).to_have_count(0)
    check(page.get_by_role("row", name="cy@slow.example cancelled")).to_be_visible()
    clean(page, problems)
    shots.take(page, "admin-delivery", full_page=True)

    page.get_by_role("link", name=message.id).first.click()
    check(page.locator("p.lead", has_text="status")).to_contain_text("delivering")
    check(page.get_by_role("heading", name="bob@slow.example held")).to_be_visible()
    check(page.get_by_role("heading", name="cy@slow.example cancelled")).to_be_visible()
    clean(page, problems)
