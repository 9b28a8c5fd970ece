"""The Webhooks tab through its forms, as a browser without JavaScript posts them: add (the
secret shown once, errors on the form), a webhook's page with its latest requests (status,
latency, bodies) and Resend, disable, enable, new secret, delete; the warning on a webhook
Postroom disabled; another project's pages never reach the webhook; CSRF needed."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from sqlalchemy import insert, update

from postroom.storage import codec
from postroom.storage.store import SqlMessageStore
from postroom.storage.webhooks import webhook_outbox, webhook_requests, webhooks
from tests.harness import ServerThread
from tests.integration.auth.conftest import Browser, ServerFactory

BASE = "/admin/projects/acme/webhooks"


@pytest.fixture
def server(start_server: ServerFactory) -> ServerThread:
    return start_server(webhook_allow_private=True, webhooks=False)


@pytest.fixture
def admin(browser: Browser) -> Browser:
    assert browser.login().status_code == 303
    for project in ("acme", "other"):
        made = browser.submit(
            "/admin/projects",
            {"id": project, "name": project, "mode": "live", "daily_quota": "", "rate_limit": ""},
        )
        assert made.status_code == 303
    return browser


def text(response: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def store_of(server: ServerThread) -> SqlMessageStore:
    store = server.app.store
    assert isinstance(store, SqlMessageStore)
    return store


def log_request(store: SqlMessageStore, hook: str, status: int | None) -> int:
    with store._write.begin() as conn:
        outbox = conn.execute(
            insert(webhook_outbox)
            .values(
                webhook_id=hook, event_id=9, project="acme", status="failed", attempts=1,
                next_attempt_us=0, created_us=0, body='{"eventType":"Bounce"}',
            )
            .returning(webhook_outbox.c.id)
        ).scalar_one()  # fmt: skip
        return int(
            conn.execute(
                insert(webhook_requests)
                .values(
                    webhook_id=hook, outbox_id=outbox, event_id=9,
                    time_us=codec.to_micros(codec.from_micros(1_767_225_600_000_000)),
                    status_code=status, latency_ms=12.4, error=None if status else "no answer",
                    request_body='{"eventType":"Bounce"}', response_body="try later",
                    succeeded=False,
                )
                .returning(webhook_requests.c.id)
            ).scalar_one()
        )  # fmt: skip


def test_add_look_resend_disable_rotate_delete(admin: Browser, server: ServerThread) -> None:
    assert "No webhooks yet." in text(admin.page(BASE))
    refused = admin.submit(BASE, {"url": "ftp://x.example/", "types": ["bounce"]})
    assert refused.status_code == 400 and "url must start with http" in text(refused).lower()
    none = admin.submit(BASE, {"url": "https://x.example/", "description": "crm"})
    assert none.status_code == 400 and "types must be a non-empty array" in text(none).lower()
    made = admin.submit(
        BASE,
        {"url": "http://127.0.0.1:9/in", "types": ["bounce", "complaint"], "include_headers": "on"},
    )
    assert made.status_code == 201
    secret = re.search(r"whsec_[\w-]+", made.text)
    assert secret is not None and "shown only this once" in text(made)
    (hook,) = store_of(server).webhooks.list("acme")
    assert hook.types == ("bounce", "complaint") and hook.include_headers
    listing = admin.page(BASE)
    assert "http://127.0.0.1:9/in" in text(listing) and secret.group(0) not in listing.text

    page = BASE + f"/{hook.id}"
    assert "No requests yet." in text(admin.page(page))
    request_id = log_request(store_of(server), hook.id, 503)
    log_request(store_of(server), hook.id, None)
    shown = text(admin.page(page))
    assert "503" in shown and "12 ms" in shown and "try later" in shown and "no answer" in shown
    assert '{"eventType":"Bounce"}' in shown
    resent = admin.submit(page + "/resend", {"request": str(request_id)}, page)
    assert (resent.status_code, resent.headers["location"]) == (303, page + "?done=resent")
    pending = store_of(server).webhooks.outbox("acme", hook.id, status="pending")
    assert [i.resend_of for i in pending] == [request_id]

    off = admin.submit(page + "/act", {"action": "disable"}, page)
    assert off.headers["location"] == page + "?done=disabled"
    assert not store_of(server).webhooks.get("acme", hook.id).enabled
    on = admin.submit(page + "/act", {"action": "enable"}, page)
    assert on.headers["location"] == page + "?done=enabled"
    rotated = admin.submit(page + "/act", {"action": "rotate"}, page)
    fresh = re.search(r"whsec_[\w-]+", rotated.text)
    assert rotated.status_code == 200 and fresh is not None and fresh.group(0) != secret.group(0)

    # A webhook Postroom disabled carries a warning on the tab and on its page.
    with store_of(server)._write.begin() as conn:
        conn.execute(
            update(webhooks)
            .where(webhooks.c.id == hook.id)
            .values(enabled=False, disabled_reason="every request failed for 24 hours; HTTP 503")
        )
    warned = text(admin.page(BASE))
    assert "Postroom disabled the webhook to http://127.0.0.1:9/in" in warned
    assert "every request failed for 24 hours; HTTP 503" in warned
    assert "Postroom disabled this webhook." in text(admin.page(page))

    # Another project's pages do not reach it.
    other = f"/admin/projects/other/webhooks/{hook.id}"
    assert admin.page(other).status_code == 404
    token_page = "/admin/projects/other/webhooks"
    for path, data in (
        (other + "/act", {"action": "delete"}),
        (other + "/resend", {"request": str(request_id)}),
    ):
        assert admin.submit(path, data, token_page).status_code == 404
    assert store_of(server).webhooks.get("acme", hook.id).id == hook.id
    assert "No webhooks yet." in text(admin.page(token_page))

    gone = admin.submit(page + "/act", {"action": "delete"}, page)
    assert gone.headers["location"] == BASE + "?done=deleted"
    assert "No webhooks yet." in text(admin.page(BASE))


def test_forms_need_the_csrf_token(admin: Browser) -> None:
    response = admin.client.post(BASE, data={"url": "http://127.0.0.1/", "types": "send"})
    assert response.status_code == 403
