"""The checks of a message over real HTTP on a running server, with mail captured over real
SMTP: html-check (Mailpit's shape, the fixture's known features), the errors as JSON naming
the problem, and another project's API key getting 404 for the same message."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from postroom.platform import IssuedApiKey
from tests.harness import ServerThread, make_config
from tests.integration.auth.conftest import create_admin, create_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PLAIN = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: plain\r\n\r\nno HTML here\r\n"


@dataclass
class Setup:
    server: ServerThread
    own: IssuedApiKey  # a read key of the default project, where captured mail goes
    other: IssuedApiKey  # a read key of another project

    def client(self, key: IssuedApiKey) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url,
            headers={"Authorization": f"Bearer {key.token}"},
            timeout=30,
        )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    config = make_config(tmp_path / "data")
    create_admin(config)
    own = create_key(config, "default", "read")
    other = create_key(config, "other-team", "read")
    server = ServerThread(config).start()
    try:
        yield Setup(server, own, other)
    finally:
        server.stop()


def capture(server: ServerThread, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        smtp.sendmail("news@shop.example", ["ann@example.com"], data)


def latest_id(http: httpx.Client) -> str:
    return str(http.get("/api/v1/messages", params={"limit": 1}).json()["messages"][0]["ID"])


def test_html_check_of_a_captured_message(setup: Setup) -> None:
    capture(setup.server, (FIXTURES / "html-check.eml").read_bytes())
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        answer = http.get(f"/api/v1/message/{message_id}/html-check")
        assert answer.status_code == 200, answer.text
        result = answer.json()
        slugs = {w["Slug"] for w in result["Warnings"]}
        assert {"html-video", "html-svg", "css-display-grid", "css-at-font-face"} <= slugs
        assert next(w for w in result["Warnings"] if w["Slug"] == "html-video")["Lines"] == [10]
        assert result["Total"]["Nodes"] == 9
        # "latest" works as for every message endpoint
        assert http.get("/api/v1/message/latest/html-check").json() == result


def test_html_check_errors_name_the_problem(setup: Setup) -> None:
    capture(setup.server, PLAIN)
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        no_html = http.get(f"/api/v1/message/{message_id}/html-check")
        assert no_html.status_code == 400
        assert no_html.json() == {"Error": "the message has no HTML body to check", "Field": "ID"}
        unknown = http.get("/api/v1/message/NOSUCHID/html-check")
        assert unknown.status_code == 404
        assert "Error" in unknown.json()


def test_another_projects_key_gets_404(setup: Setup) -> None:
    capture(setup.server, (FIXTURES / "html-check.eml").read_bytes())
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        assert http.get(f"/api/v1/message/{message_id}/html-check").status_code == 200
    with setup.client(setup.other) as http:
        for path in (
            f"/api/v1/message/{message_id}/html-check",
            "/api/v1/message/latest/html-check",
        ):
            answer = http.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["Error"]
