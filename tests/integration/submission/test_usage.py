"""Usage agrees with what the doors enforce, the moment it is read: a message's sends are
counted in the store in the message's own transaction. Sent with a real SMTP client until the
door says 454, then read at once through the management API, the admin page, /metrics and the
CLI in another process (it reads the database)."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import trustme

from postroom.core.clock import FakeClock
from tests.dnszone import DnsZone

from .conftest import Env, start_env
from .test_http_send import body, send_key

MESSAGE = b"From: App <app@example.com>\r\nTo: a@example.net\r\nSubject: q\r\n\r\nHello\r\n"
QUOTA = 7


@pytest.fixture
def live_env(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> Iterator[Env]:
    # The server's clock starts at the real time: the CLI (another process) reads the real one.
    environment = start_env(tmp_path, ca, dns_zone, FakeClock(datetime.now(UTC)))
    try:
        yield environment
    finally:
        environment.server.stop()


def send_until_refused(env: Env) -> int:
    """Messages of 2 recipients, then of 1, until the door refuses; the recipients accepted."""
    accepted = 0
    with env.smtp() as client:
        for size in (2, 1):
            while True:
                rcpts = [f"r{accepted + i}@example.net" for i in range(size)]
                try:
                    client.sendmail("app@example.com", rcpts, MESSAGE)
                except smtplib.SMTPDataError as refused:
                    assert (refused.smtp_code, refused.smtp_error) == (
                        454,
                        b"4.7.0 Throttling failure: Daily message quota exceeded",
                    )
                    break
                accepted += size
    return accepted


def cli_usage(env: Env) -> dict[str, object]:
    data_dir = env.server.app.config.data_dir
    done = subprocess.run(
        [sys.executable, "-m", "postroom.cli", "project", "usage", "acme", "--json"],
        env={**os.environ, "POSTROOM_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out: dict[str, object] = json.loads(done.stdout)
    return out


def test_usage_right_after_454_agrees_with_the_door(live_env: Env) -> None:
    env = live_env
    env.set_project(daily_quota=QUOTA)
    assert send_until_refused(env) == QUOTA

    expected = {
        "project": "acme",
        "sent_24h": QUOTA,
        "daily_quota": QUOTA,
        "rate_limit": None,
        "remaining_24h": 0,
    }
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        assert http.get("/api/v2/projects/acme/usage").json() == expected
        page = http.get("/admin/projects/acme", headers={"Accept": "text/html"}).text
        assert f"<dd>{QUOTA} recipients</dd>" in page and "(0 left)" in page
        metrics = http.get("/metrics").text
        assert f'postroom_quota_daily_used{{project="acme"}} {QUOTA}.0' in metrics
    assert cli_usage(env) == expected
    assert len(env.messages()) == QUOTA // 2 + 1


def test_a_refused_message_counts_nothing(live_env: Env) -> None:
    env = live_env
    env.set_project(daily_quota=3)
    with env.smtp() as client:
        client.sendmail("app@example.com", ["a@example.net"], MESSAGE)
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail(
                "app@example.com", ["b@example.net", "c@example.net", "d@x.net"], MESSAGE
            )
        with pytest.raises(smtplib.SMTPResponseException):  # unverified sender: not counted
            client.sendmail("app@pending.example", ["e@example.net"], MESSAGE)
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        assert http.get("/api/v2/projects/acme/usage").json()["sent_24h"] == 1
    assert cli_usage(env)["sent_24h"] == 1


def test_http_send_counts_in_the_same_count(live_env: Env) -> None:
    """POST /api/v1/send (the http_send door) and SMTP count toward one quota, read at once."""
    env = live_env
    env.set_project(daily_quota=3)
    token = send_key(env, "acme")
    payload = body(To=[{"Email": "a@example.net"}, {"Email": "b@example.net"}])
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post("/api/v1/send", json=payload, headers=auth).status_code == 200
        with env.smtp() as client:
            client.sendmail("app@example.com", ["c@example.net"], MESSAGE)
        over = http.post("/api/v1/send", json=body(), headers=auth)
        assert over.status_code == 429
        assert http.get("/api/v2/projects/acme/usage").json()["sent_24h"] == 3
    assert cli_usage(env)["remaining_24h"] == 0
