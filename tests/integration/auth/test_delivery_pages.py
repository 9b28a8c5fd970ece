"""A project's Delivery tab in the admin pages, through its forms as a browser without
JavaScript posts them: the queue per state and domain, the entries, actions on one entry and
on every entry of a state or domain, the latest events; CSRF required; one project's page
never shows another's queue."""

from __future__ import annotations

import dataclasses
import html
import re

import httpx
import pytest

from postroom.core.types import NewMessage
from postroom.pipeline.deliveries import deliveries_for
from tests.harness import ServerThread
from tests.integration.auth.conftest import Browser
from tests.integration.storage.factory import make_message

BASE = "/admin/projects/acme/delivery"


def text(response: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def queue(server: ServerThread, project: str, *recipients: str) -> NewMessage:
    from postroom.core.clock import FakeClock

    base = make_message(FakeClock(), to=recipients, project=project, status="queued")
    envelope = dataclasses.replace(base.envelope, rcpt_params=tuple({} for _ in recipients))
    message = dataclasses.replace(base, envelope=envelope, deliveries=deliveries_for(envelope))
    server.call(server.app.store.add(message))  # type: ignore[union-attr]
    return message


@pytest.fixture
def admin(browser: Browser, server: ServerThread) -> Browser:
    assert browser.login().status_code == 303
    for project in ("acme", "other"):
        made = browser.submit(
            "/admin/projects",
            {"id": project, "name": project, "mode": "live", "daily_quota": "", "rate_limit": ""},
        )
        assert made.status_code == 303
    return browser


def test_the_delivery_tab(admin: Browser, server: ServerThread) -> None:
    queue(server, "acme", "a@example.net", "b@slow.example", "c@slow.example")
    queue(server, "other", "secret@elsewhere.example")
    page = text(admin.page(BASE))
    assert "queued 3" in page and "slow.example 2 0" in page
    assert "a@example.net" in page and "secret@elsewhere.example" not in page
    assert page.count("send") >= 3  # the latest events
    entries = server.app.store.queue.all_entries()  # type: ignore[union-attr]
    b = next(e for e in entries if e.recipient == "b@slow.example")
    held = admin.submit(BASE + "/act", {"entry": str(b.id), "action": "hold"}, BASE)
    assert held.status_code == 303 and "done=hold" in held.headers["location"]
    assert "Hold: 1 entry." in text(admin.page(held.headers["location"]))
    assert "held 1" in text(admin.page(BASE))
    bulk = admin.submit(
        BASE + "/act", {"action": "cancel", "state": "queued", "domain": "slow.example"}, BASE
    )
    assert "count=1" in bulk.headers["location"]  # c@ only: b@ is held
    listing = text(admin.page(BASE + "?state=cancelled")).split("Latest events")[0]
    assert "c@slow.example" in listing and "a@example.net" not in listing
    assert "cancelled" in text(admin.page(BASE))
    empty = admin.submit(BASE + "/act", {"action": "cancel", "state": "", "domain": ""}, BASE)
    assert empty.status_code == 400 and "choose a state or a domain" in text(empty).lower()
    other = next(e for e in entries if e.recipient == "secret@elsewhere.example")
    admin.submit(BASE + "/act", {"entry": str(other.id), "action": "cancel"}, BASE)
    assert server.app.store.queue.get(other.id).status == "queued"  # type: ignore[union-attr]
    assert "secret@elsewhere.example" in text(admin.page("/admin/projects/other/delivery"))
    assert admin.page("/admin/projects/nope/delivery").status_code == 404


def test_actions_need_the_csrf_token(admin: Browser, server: ServerThread) -> None:
    queue(server, "acme", "a@example.net")
    (entry,) = server.app.store.queue.all_entries()  # type: ignore[union-attr]
    response = admin.client.post(BASE + "/act", data={"entry": str(entry.id), "action": "hold"})
    assert response.status_code == 403
    assert server.app.store.queue.get(entry.id).status == "queued"  # type: ignore[union-attr]


def test_a_messages_page(admin: Browser, server: ServerThread) -> None:
    from datetime import UTC, datetime, timedelta

    from postroom.core.types import Attempt

    mine = queue(server, "acme", "a@example.net", "b@example.net")
    theirs = queue(server, "other", "secret@elsewhere.example")
    store = server.app.store
    assert store is not None
    queue_store = store.queue  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    claimed = {e.recipient: e for e in queue_store.claim("w", now, timedelta(minutes=5), 10)}
    tried = Attempt(
        now,
        0.42,
        451,
        "4.2.2",
        "451 4.2.2 Mailbox full",
        "mx.example.net",
        "192.0.2.1",
        25,
        "192.0.2.9:4000",
        "TLSv1.3",
        "TLS_AES_128_GCM_SHA256",
        ("dead.example.net[192.0.2.2]: 451 4.4.1 Connection failed",),
    )
    queue_store.defer(
        claimed["a@example.net"].id, "w", now, "451 4.2.2 Mailbox full", {}, attempt=tried
    )
    queue_store.complete(claimed["b@example.net"].id, "w", now, {"code": 250})
    page = text(admin.page(f"{BASE}/messages/{mine.id}"))
    assert "status delivering" in page
    assert "a@example.net deferred" in page and "b@example.net delivered" in page
    assert "mx.example.net [192.0.2.1]:25" in page and "TLSv1.3" in page
    assert "tried first: dead.example.net[192.0.2.2]" in page and "420 ms" in page
    assert "Not tried yet." in page  # b@ has no recorded attempt
    assert admin.page(f"{BASE}/messages/{theirs.id}").status_code == 404
    assert f"{BASE}/messages/{mine.id}" in admin.page(BASE).text
