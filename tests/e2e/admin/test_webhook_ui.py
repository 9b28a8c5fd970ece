"""The Webhooks tab in headless Chromium (issue 11): add a webhook with the form (its secret
shown once), see its failing requests with status and latency, resend one, then — a day of
failures later on the server's clock — the warning that Postroom disabled it, on the list and
on its page, and Enable again. A real HTTP receiver on loopback answers 500 to everything."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from postroom.core.clock import FakeClock
from postroom.core.events import NewEvent
from postroom.events.signing import verify
from postroom.platform.factory import open_platform
from postroom.storage.store import SqlMessageStore
from tests.e2e.admin.conftest import ADMIN, PASSWORD, new_page
from tests.e2e.admin.test_admin_ui import clean, expect
from tests.e2e.conftest import PageProblems, Shots
from tests.harness import ServerThread, make_config
from tests.integration.submission.test_webhooks_e2e import HttpReceiver

pytestmark = pytest.mark.chromium


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def hook_server(tmp_path: Path, clock: FakeClock) -> Iterator[ServerThread]:
    """An admin's server whose webhook worker may call loopback URLs, on a fake clock."""
    config = make_config(tmp_path / "data", webhook_allow_private=True, webhook_timeout=0.5)
    service = open_platform(config)
    try:
        service.create_admin(ADMIN, PASSWORD)
        service.create_project("acme", "Acme Inc", mode="live")
    finally:
        service.close()
    server = ServerThread(config, clock).start()
    try:
        yield server
    finally:
        server.stop()


def store_of(server: ServerThread) -> SqlMessageStore:
    store = server.app.store
    assert isinstance(store, SqlMessageStore)
    return store


def until(clock: FakeClock, done: Callable[[], bool], step: float, what: str) -> None:
    """Move the fake clock on by `step` until `done()` (bounded: 60 s real)."""
    deadline = time.monotonic() + 60
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        clock.advance(step)
        time.sleep(0.05)


def log_in(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def test_webhooks_tab(
    browser: Any,
    hook_server: ServerThread,
    clock: FakeClock,
    shots: Shots,
    problems: PageProblems,
) -> None:
    check = expect()
    failing = HttpReceiver(lambda n: 500)
    try:
        base = hook_server.base_url
        page = new_page(browser, problems, base)
        log_in(page, base)
        page.goto(base + "/admin/projects/acme")
        page.get_by_role("link", name="Webhooks").click()
        check(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
        check(page.get_by_text("No webhooks yet.")).to_be_visible()

        page.get_by_label("URL").fill(failing.url)
        page.get_by_role("checkbox", name="send", exact=True).check()
        page.get_by_role("button", name="Add webhook").click()
        check(page.get_by_role("note")).to_contain_text("It is shown only this once.")
        secret = page.locator("#secret-value").inner_text().strip()
        (hook,) = store_of(hook_server).webhooks.list("acme")
        clean(page, problems)
        page.get_by_role("link", name="Done").click()
        check(page.get_by_text("No requests yet.")).to_be_visible()
        check(page.get_by_text(secret)).to_have_count(0)  # shown once only

        now = clock.now()
        store_of(hook_server).queue.record_reports(
            [NewEvent("acme", "send", now, "m1", "reader@example.net")]
        )
        until(clock, lambda: len(failing.requests) >= 2, 60.0, "two failed requests")
        sent = failing.requests[0]
        stamp = int(sent.headers["postroom-timestamp"])
        assert verify(secret, sent.headers, sent.body, now=stamp)  # the secret shown signs
        page.reload()
        warning = page.get_by_role("alert")
        check(warning).to_contain_text("Every request since")
        check(warning).to_contain_text("After a day of failures Postroom disables the webhook.")
        rows = page.get_by_role("row").filter(has_text="500")
        check(rows.first).to_be_visible()
        check(rows.first).to_contain_text("ms")
        clean(page, problems)
        shots.take(page, "admin-webhook-failing", full_page=True)

        first = store_of(hook_server).webhooks.requests("acme", hook.id, 50)[-1]
        page.get_by_role("button", name=f"Resend request {first.id}").click()
        check(page.get_by_role("status").filter(has_text="queued to be sent again")).to_be_visible()

        def disabled() -> bool:
            return store_of(hook_server).webhooks.get("acme", hook.id).enabled is False

        until(clock, disabled, 1800.0, "the webhook disabled after a day of failures")
        log_in(page, base)  # a day on: the admin's session has expired
        page.goto(base + "/admin/projects/acme/webhooks")
        alert = page.get_by_role("alert")
        check(alert).to_contain_text("Postroom disabled the webhook to")
        check(alert).to_contain_text(failing.url)
        check(alert).to_contain_text("every request failed for")
        check(page.get_by_role("row").filter(has_text=failing.url)).to_contain_text(
            "disabled by Postroom"
        )
        clean(page, problems)
        shots.take(page, "admin-webhooks-disabled", full_page=True)

        page.get_by_role("link", name="Look at its requests").click()
        check(page.get_by_role("alert")).to_contain_text("Postroom disabled this webhook.")
        page.get_by_role("button", name="Enable").click()
        check(page.get_by_role("status").filter(has_text="Webhook enabled.")).to_be_visible()
        check(page.get_by_role("alert")).to_have_count(0)
        assert store_of(hook_server).webhooks.get("acme", hook.id).enabled
        clean(page, problems)
    finally:
        failing.stop()
