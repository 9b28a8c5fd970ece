"""The Reputation tab through its forms, as a browser without JavaScript posts them: rates per
window, the daily table and its SVG chart; a paused project's warning with the reason and the
Resume button, which needs the CSRF token and resumes it (a `resumed` event naming the admin);
a warning's reason; the tab of a project that does not exist is a 404."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from postroom.core.events import EventQuery, NewEvent
from postroom.storage.store import SqlMessageStore
from tests.harness import ServerThread
from tests.integration.auth.conftest import ADMIN, Browser, ServerFactory

BASE = "/admin/projects/acme/reputation"


@pytest.fixture
def server(start_server: ServerFactory) -> ServerThread:
    return start_server(reputation_check_interval=0.0)  # judged by the test, not the job


@pytest.fixture
def admin(browser: Browser) -> Browser:
    assert browser.login().status_code == 303
    made = browser.submit(
        "/admin/projects",
        {"id": "acme", "name": "Acme", "mode": "live", "daily_quota": "", "rate_limit": ""},
    )
    assert made.status_code == 303
    return browser


def text(response: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def store_of(server: ServerThread) -> SqlMessageStore:
    store = server.app.store
    assert isinstance(store, SqlMessageStore)
    return store


def sent(server: ServerThread, sends: int, bounces: int = 0, complaints: int = 0) -> None:
    now = server.app.clock.now()
    store_of(server).queue.record_reports(
        [NewEvent("acme", "send", now, "m1", f"r{i}@example.net") for i in range(sends)]
        + [
            NewEvent("acme", "bounce", now, "m1", f"r{i}@example.net", {"hard": True})
            for i in range(bounces)
        ]
        + [NewEvent("acme", "complaint", now, "m1", f"r{i}@example.net") for i in range(complaints)]
    )


def test_rates_chart_pause_and_resume(admin: Browser, server: ServerThread) -> None:
    empty = admin.page(BASE)
    assert empty.status_code == 200
    assert "Nothing sent in the last 30 days." in text(empty)
    assert 'aria-current="page">Reputation<' in empty.text

    guard = server.app.reputation
    assert guard is not None
    sent(server, 1000, complaints=2)  # 0.2 % complaints: a warning
    assert guard.run_once() == [("acme", "warning")]
    warned = text(admin.page(BASE))
    assert "Warning" in warned and "complaint rate 0.2% over 7 days (2 of 1000" in warned
    assert "Resume sending" not in warned

    sent(server, 0, bounces=150)  # 15 % hard bounces: paused
    assert guard.run_once() == [("acme", "paused")]
    page = admin.page(BASE)
    shown = text(page)
    assert "Sending is paused" in shown and "bounce rate 15% over 7 days (150 of 1000" in shown
    assert "554 5.7.1 Sending paused for this project" in shown
    assert "<svg" in page.text and "<polyline" in page.text  # the chart, drawn server-side
    assert "<script" not in page.text.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "1000 150 15.00 % 2 0.200 %" in shown  # the daily table and the windows

    forged = admin.client.post(BASE + "/resume", data={})  # no CSRF token
    assert forged.status_code == 403
    assert guard.report(server.app.platform.get_project("acme"))["level"] == "paused"  # type: ignore[union-attr]
    resumed = admin.submit(BASE + "/resume", {}, page=BASE)
    assert resumed.status_code == 303 and resumed.headers["location"].endswith("done=resumed")
    after = text(admin.page(BASE + "?done=resumed"))
    assert "Sending resumed" in after and "Sending is paused" not in after
    events = store_of(server).events.query("acme", EventQuery(types=("reputation",))).events
    assert [(e.detail["level"], e.detail.get("by")) for e in events] == [
        ("warning", None),
        ("paused", None),
        ("resumed", ADMIN),
    ]
    assert admin.page("/admin/projects/nobody/reputation").status_code == 404
