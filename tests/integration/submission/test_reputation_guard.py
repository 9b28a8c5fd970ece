"""The reputation guard on the real server: a live project whose hard-bounce rate passes the
pause level is paused (a `reputation` event); its SMTP submissions then get `554 5.7.1 Sending
paused for this project` and its HTTP sends a 403 with the same sentence, through the change
counter (no cache dropped by hand), until an admin resumes it through the API, which an API
key may not do; another project's key never sees it."""

from __future__ import annotations

import smtplib

import httpx
import pytest

from postroom.core.events import EventQuery, NewEvent
from postroom.core.platform import ApiKey
from postroom.core.secrets import new_api_key
from tests.integration.auth.conftest import Browser

from .conftest import CREATED, Env

MESSAGE = b"From: App <app@example.com>\r\nTo: a@example.net\r\nSubject: Hi\r\n\r\nHello.\r\n"
NATIVE = {"from": "App <app@example.com>", "to": ["a@example.net"], "subject": "Hi", "text": "Hi"}
REPUTATION = "/api/v2/projects/{}/reputation"


def key(env: Env, project: str, scopes: tuple[str, ...] = ("send", "manage")) -> str:
    issued = new_api_key()
    env.platform.add_api_key(ApiKey(issued.key_id, project, "k", scopes, issued.digest, CREATED))
    return issued.token


def bearer(env: Env, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=env.server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def bad_sending(env: Env, project: str = "acme") -> None:
    """199 more recipients sent (200 with the real message) and 25 hard bounces (12.5 %) in
    the project's event log."""
    now = env.clock.now()
    sends = [NewEvent(project, "send", now, "m1", f"r{i}@example.net") for i in range(199)]
    bounces = [
        NewEvent(project, "bounce", now, "m1", f"r{i}@example.net", {"hard": True})
        for i in range(25)
    ]
    env.store.queue.record_reports(sends + bounces)


def test_a_paused_project_is_refused_until_an_admin_resumes_it(env: Env) -> None:
    guard = env.server.app.reputation
    assert guard is not None
    with env.smtp() as smtp:  # a session opened before the pause
        smtp.sendmail("app@example.com", ["a@example.net"], MESSAGE)
        bad_sending(env)
        assert guard.run_once() == [("acme", "paused")]
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("app@example.com", ["a@example.net"], MESSAGE)
    assert refused.value.smtp_code == 554
    assert refused.value.smtp_error.decode() == "5.7.1 Sending paused for this project"
    with env.smtp() as smtp, pytest.raises(smtplib.SMTPDataError) as again:
        smtp.sendmail("app@example.com", ["a@example.net"], MESSAGE)
    assert again.value.smtp_code == 554
    assert len(env.messages()) == 1

    acme = key(env, "acme")
    with bearer(env, acme) as api:
        sent = api.post("/api/v2/messages", json=NATIVE)
        assert sent.status_code == 403, sent.text
        assert sent.json()["Error"] == "Sending paused for this project"
        shown = api.get(REPUTATION.format("acme"))
        assert shown.status_code == 200
        body = shown.json()
        assert body["level"] == "paused" and body["paused"] is not None
        assert body["pause_reason"].startswith("bounce rate 12.5% over 7 days (25 of 200")
        assert body["judged"]["bounces"] == 25 and body["judged"]["sends"] == 200
        assert body["thresholds"]["bounce_rate"] == {"warn": 0.05, "pause": 0.1}
        # Per sending domain: the one real message (the synthetic events name no message).
        assert body["domains"] == {
            "example.com": {
                "sends": 1,
                "bounces": 0,
                "complaints": 0,
                "bounce_rate": 0.0,
                "complaint_rate": 0.0,
            }
        }
        # The project's own key may not lift its pause.
        lifted = api.post(REPUTATION.format("acme") + "/resume", json={})
        assert lifted.status_code == 403 and lifted.json()["Field"] == "Authorization"
    with bearer(env, key(env, "sandbox")) as other:
        assert other.get(REPUTATION.format("acme")).status_code in (403, 404)
        assert other.post(REPUTATION.format("acme") + "/resume", json={}).status_code in (
            403,
            404,
        )
    # Open mode (no admin yet) may read but not resume.
    with httpx.Client(base_url=env.server.base_url, timeout=30) as anyone:
        assert anyone.get(REPUTATION.format("acme")).json()["level"] == "paused"
        assert anyone.post(REPUTATION.format("acme") + "/resume", json={}).status_code == 403

    service = env.server.app.platform_service
    assert service is not None
    service.create_admin("root", "correct horse battery staple")
    env.clock.advance(5)  # past the admin list's cache
    browser = Browser(env.server.base_url)
    try:
        assert browser.login("root", "correct horse battery staple").status_code == 303
        wrong = browser.api("POST", REPUTATION.format("acme") + "/resume", json={"now": True})
        assert wrong.status_code == 400 and wrong.json()["Field"] == "now"
        resumed = browser.api("POST", REPUTATION.format("acme") + "/resume", json={})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["level"] == "ok" and resumed.json()["paused"] is None
        assert resumed.json()["judged"]["sends"] == 0  # the rates count from the resume
        twice = browser.api("POST", REPUTATION.format("acme") + "/resume", json={})
        assert twice.status_code == 400 and twice.json()["Field"] == "project"
        missing = browser.api("POST", REPUTATION.format("nobody") + "/resume", json={})
        assert missing.status_code == 404
    finally:
        browser.close()
    with env.smtp() as smtp:
        assert smtp.sendmail("app@example.com", ["a@example.net"], MESSAGE) == {}
    assert len(env.messages()) == 2
    page = env.store.events.query("acme", EventQuery(types=("reputation",)))
    assert [(e.detail["level"], e.detail.get("by")) for e in page.events] == [
        ("paused", None),
        ("resumed", "root"),
    ]
