"""The auth log lines name their fields for what they hold: a client address in `client`, a user
name in `user`, a request in `request`; never a client or a user dressed up as `path`. And the
formatters `postroom serve` installs print those fields."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from postroom.cli import _JsonFormatter, _TextFormatter
from tests.integration.auth.conftest import ADMIN, Browser, ServerFactory

CLIENT = "127.0.0.1"


def auth_records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "postroom.auth" and r.getMessage() == message]


def test_auth_log_lines_use_honest_field_names(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="postroom")
    server = start_server(login_max_failures=1)
    b = Browser(server.base_url)
    try:
        assert b.login(ADMIN, "wrong").status_code == 401
        assert b.login(ADMIN, "wrong again").status_code == 429
        with httpx.Client(base_url=server.base_url) as c:
            refused = c.get("/api/v1/messages", headers={"Authorization": "Bearer nope"})
            assert refused.status_code == 401
    finally:
        b.close()

    (failed,) = auth_records(caplog, "web login failed")
    (throttled,) = auth_records(caplog, "web login refused: too many failures")
    (key,) = auth_records(caplog, "API key refused")
    for record in (failed, throttled):
        assert record.__dict__["client"] == CLIENT
        assert "path" not in record.__dict__
    assert key.__dict__["request"] == "GET /api/v1/messages"
    assert "path" not in key.__dict__


def test_login_and_csrf_lines(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="postroom")
    server = start_server()
    b = Browser(server.base_url)
    try:
        assert b.login().status_code == 303
        bad = b.client.post(
            "/api/v2/projects", json={"id": "x"}, headers={"X-CSRF-Token": "f" * 40}
        )
        assert bad.status_code == 403
    finally:
        b.close()

    (login,) = auth_records(caplog, "web login")
    assert (login.__dict__["user"], login.__dict__["client"]) == (ADMIN, CLIENT)
    assert "path" not in login.__dict__
    (csrf,) = auth_records(caplog, "CSRF token missing or wrong")
    assert csrf.__dict__["request"] == "POST /api/v2/projects"
    assert "path" not in csrf.__dict__

    as_json = json.loads(_JsonFormatter().format(login))
    assert (as_json["user"], as_json["client"]) == (ADMIN, CLIENT)
    as_text = _TextFormatter("%(message)s").format(csrf)
    assert as_text == "CSRF token missing or wrong request=POST /api/v2/projects"
