"""An administrator's suspension of a project's sending (issue 13: SES's
AccountSuspendedException), on a running server over real sockets, on SQLite and PostgreSQL:
suspended from another process (the CLI) or the management API, the project's very next
message is refused by every door (no cache dropped by hand: the change counter moves with the
suspension), an SMTP session already open included, at its next MAIL; resuming lifts it."""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import subprocess
import sys
from typing import Any

import httpx
import pytest

from tests.integration.auth.conftest import Browser

from .client import Client
from .conftest import SANDBOX_PASSWORD, Env
from .test_key_changes import any_env, plain_sql  # noqa: F401  (any_env: SQLite + PostgreSQL)
from .test_native_send import key

MESSAGE = b"From: App <app@example.com>\r\nTo: a@example.net\r\nSubject: Hi\r\n\r\nHello.\r\n"
REFUSED = "5.7.1 Account suspended: an administrator has suspended sending for this project"


def cli(env: Env, *args: str, code: int = 0) -> dict[str, Any]:
    """`postroom ARGS --json` in another process on the server's database: its JSON."""
    config = env.server.app.config
    where = {"POSTROOM_DATABASE_URL": config.database_url} if config.database_url else {}
    data = [] if config.database_url else ["--data-dir", str(config.data_dir)]
    done = subprocess.run(
        [sys.executable, "-m", "postroom.cli", *args, "--json", *data],
        env={**os.environ, **where},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr + done.stdout
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_the_cli_suspends_and_resumes_a_project_for_an_open_smtp_session(
    any_env: Env,  # noqa: F811
) -> None:
    env = any_env
    with env.smtp() as smtp:  # opened, and sending, before the suspension
        assert smtp.sendmail("app@example.com", ["a@example.net"], MESSAGE) == {}
        shown = cli(env, "project", "suspend", "acme", "--reason", "unpaid invoices")
        assert shown["suspended"] is not None and shown["suspend_reason"] == "unpaid invoices"
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # at MAIL FROM
            smtp.sendmail("app@example.com", ["a@example.net"], MESSAGE)
        assert refused.value.smtp_code == 550
        assert refused.value.smtp_error.decode() == f"{REFUSED} (unpaid invoices)"
        # The other project's sessions are not touched.
        with env.smtp("sandbox", SANDBOX_PASSWORD) as other:
            sandboxed = MESSAGE.replace(b"app@example.com", b"x@sandbox.example")
            assert other.sendmail("x@sandbox.example", ["b@example.net"], sandboxed) == {}
        listed = {p["id"]: p for p in cli(env, "project", "list")["projects"]}
        assert listed["acme"]["suspended"] == shown["suspended"]
        assert listed["sandbox"]["suspended"] is None
        resumed = cli(env, "project", "resume", "acme")
        assert resumed["suspended"] is None and resumed["suspend_reason"] is None
        assert smtp.sendmail("app@example.com", ["a@example.net"], MESSAGE) == {}
    assert len(env.messages()) == 2
    again = cli(env, "project", "resume", "acme", code=2)
    assert again["Field"] == "id" and "not suspended" in again["Error"]
    long = cli(env, "project", "suspend", "acme", "--reason", "x" * 501, code=2)
    assert long["Field"] == "reason"
    assert "ghost" in cli(env, "project", "suspend", "ghost", code=2)["Error"]


NATIVE = {"from": "App <app@example.com>", "to": ["a@example.net"], "subject": "Hi", "text": "Hi"}
SUSPENSION = "/api/v2/projects/{}/suspension"


def bearer(env: Env, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=env.server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_the_api_suspends_for_admins_only_and_the_native_api_refuses_with_403(
    any_env: Env,  # noqa: F811
) -> None:
    env = any_env
    acme = key(env, "acme", ("send", "manage"))
    with bearer(env, acme) as api:
        assert api.post("/api/v2/messages", json=NATIVE).status_code in (200, 201, 202)
        # The project's own manage key may not suspend nor resume it; open mode neither.
        for path in (SUSPENSION, SUSPENSION + "/resume"):
            own = api.post(
                path.format("acme"), json={"reason": "x"} if "resume" not in path else {}
            )
            assert own.status_code == 403 and own.json()["Field"] == "Authorization"
    with bearer(env, key(env, "sandbox", ("send", "manage"))) as other:
        assert other.post(SUSPENSION.format("acme"), json={}).status_code in (403, 404)
    with httpx.Client(base_url=env.server.base_url, timeout=30) as anyone:
        refused = anyone.post(SUSPENSION.format("acme"), json={})
        assert refused.status_code == 403 and refused.json()["Field"] == "Authorization"

    service = env.server.app.platform_service
    assert service is not None
    service.create_admin("root", "correct horse battery staple")
    env.clock.advance(5)  # past the admin list's cache
    browser = Browser(env.server.base_url)
    try:
        assert browser.login("root", "correct horse battery staple").status_code == 303
        for body, field in (
            ({"reason": 7}, "reason"),
            ({"reason": "x" * 501}, "reason"),
            ({"reason": "bad\u0007bell"}, "reason"),
            ({"until": "tomorrow"}, "until"),
        ):
            bad = browser.api("POST", SUSPENSION.format("acme"), json=body)
            assert bad.status_code == 400 and bad.json()["Field"] == field, bad.text
        not_json = browser.api(
            "POST",
            SUSPENSION.format("acme"),
            content=b"reason=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert not_json.status_code == 415
        assert browser.api("POST", SUSPENSION.format("nobody"), json={}).status_code == 404
        done = browser.api("POST", SUSPENSION.format("acme"), json={"reason": "abuse report"})
        assert done.status_code == 200, done.text
        assert done.json()["suspended"] is not None
        assert done.json()["suspend_reason"] == "abuse report"
        # The very next send of the project's key is refused (no cache dropped by hand).
        with bearer(env, acme) as api:
            sent = api.post("/api/v2/messages", json=NATIVE)
            assert sent.status_code == 403, sent.text
            assert sent.json() == {
                "Error": f"{REFUSED[6:]} (abuse report)",
                "Field": "account_suspended",
            }
            shown = api.get("/api/v2/projects/acme").json()
            assert shown["suspend_reason"] == "abuse report"
        resumed = browser.api("POST", SUSPENSION.format("acme") + "/resume", json={})
        assert resumed.status_code == 200 and resumed.json()["suspended"] is None
        twice = browser.api("POST", SUSPENSION.format("acme") + "/resume", json={})
        assert twice.status_code == 400 and twice.json()["Field"] == "id"
        extra = browser.api("POST", SUSPENSION.format("acme") + "/resume", json={"now": 1})
        assert extra.status_code == 400 and extra.json()["Field"] == "now"
    finally:
        browser.close()
    with bearer(env, acme) as api:
        assert api.post("/api/v2/messages", json=NATIVE).status_code in (200, 201, 202)
    assert len(env.messages()) == 2


async def test_an_ip_credential_session_is_refused_at_its_next_mail_and_plain_sql_counts(
    any_env: Env,  # noqa: F811
) -> None:
    """A client sending without AUTH under an IP credential: the suspension, written with
    plain SQL on a connection of its own (nothing in the server hears of it but the database's
    change counter), refuses its next MAIL; lifting it the same way lets it send."""
    env = any_env
    env.add_ip_credential("127.0.0.2/32")
    client = await Client.connect(env.submission_port, local_host="127.0.0.2")
    await client.ehlo()
    reply = await client.message("app@example.com", ["r@example.net"], MESSAGE)
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    await asyncio.to_thread(
        plain_sql,
        env,
        "UPDATE projects SET suspended_us = 1, suspend_reason = 'by SQL' WHERE id = 'acme'",
    )
    assert await client.command("MAIL FROM:<app@example.com>") == f"550 {REFUSED} (by SQL)"
    await asyncio.to_thread(
        plain_sql, env, "UPDATE projects SET suspended_us = NULL WHERE id = 'acme'"
    )
    reply = await client.message("app@example.com", ["r@example.net"], MESSAGE)
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    await client.close()
    assert len(env.messages()) == 2
