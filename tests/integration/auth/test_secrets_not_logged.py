"""No secret reaches the log: passwords (right or wrong), session tokens, CSRF tokens, API keys
and generated SMTP passwords, through every path that logs around them."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from tests.harness import ServerThread
from tests.integration.auth.conftest import ADMIN, PASSWORD, Browser


def logged_text(records: list[logging.LogRecord]) -> str:
    """What the server logged (the test's own HTTP client logs its traffic: left out)."""
    parts = []
    for record in records:
        if record.name.startswith(("httpx", "httpcore")):
            continue
        parts.append(record.getMessage())
        parts.extend(repr(v) for k, v in record.__dict__.items() if k not in ("msg", "args"))
    return "\n".join(parts)


def test_secrets_never_reach_the_log(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    b = Browser(server.base_url)
    try:
        wrong_password = "Wr0ng-but-close-" + PASSWORD
        assert b.login(ADMIN, wrong_password).status_code == 401
        assert b.login("nobody-" + PASSWORD, wrong_password).status_code == 401
        assert b.login().status_code == 303
        session = b.client.cookies["postroom_session"]
        csrf = b.csrf
        assert b.client.post("/api/v2/projects", json={"id": "x"}).status_code == 403
        assert (
            b.client.post("/api/v2/projects", json={"id": "x"}, headers={"X-CSRF-Token": "f" * 40})
        ).status_code == 403
        created = b.submit("/admin/projects/default/credentials", {"username": "mailer"})
        password = re.search(r'id="secret-value" class="secret-value">([^<]+)<', created.text)
        key_page = b.submit("/admin/projects/default/api-keys", {"name": "ci", "scopes": "read"})
        token = re.search(r'id="secret-value" class="secret-value">([^<]+)<', key_page.text)
        assert password and token
        with httpx.Client(base_url=server.base_url) as c:
            auth = {"Authorization": f"Bearer {token.group(1)}"}
            assert c.get("/api/v1/messages", headers=auth).status_code == 200
            assert c.post("/api/v1/send", headers=auth, json={}).status_code == 403
            bad = {"Authorization": f"Bearer {token.group(1)[:-3]}xyz"}
            assert c.get("/api/v1/messages", headers=bad).status_code == 401
        assert b.submit("/logout", {}, "/logout").status_code == 303
    finally:
        b.close()

    text = logged_text(caplog.records)
    assert "web login failed" in text and "web login" in text  # the log was captured
    assert "smtp credential created" in text and "api key created" in text
    for secret in (
        PASSWORD,
        wrong_password,
        session,
        csrf,
        password.group(1),
        token.group(1),
        token.group(1)[:-3],
    ):
        assert secret not in text
