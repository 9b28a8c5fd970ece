"""The submission path on PostgreSQL: the message, its queue entries (COPY) and the send
counters live in the shared database."""

from __future__ import annotations

import secrets
import smtplib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trustme
from sqlalchemy.engine import make_url

from tests.dnszone import DnsZone, dkimpy_verify
from tests.services import require_postgres

from .conftest import Env, start_env

pytestmark = pytest.mark.postgres

MESSAGE = b"From: App <app@example.com>\r\nTo: a@example.net\r\nSubject: pg\r\n\r\nHello\r\n"


@pytest.fixture
def pg_env(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> Iterator[Env]:
    url = require_postgres()
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"postroom_t_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    environment = start_env(tmp_path, ca, dns_zone, database_url=database_url)
    try:
        yield environment
    finally:
        environment.server.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_live_message_with_queue_entries_and_quota_on_postgres(pg_env: Env) -> None:
    pg_env.set_project(daily_quota=3)
    with pg_env.smtp() as client:
        client.sendmail("app@example.com", ["a@example.net", "b@example.net"], MESSAGE)
        client.sendmail("app@example.com", ["c@example.net"], MESSAGE)
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail("app@example.com", ["d@example.net"], MESSAGE)
        assert caught.value.smtp_code == 454
        assert caught.value.smtp_error == b"4.7.0 Throttling failure: Daily message quota exceeded"
    records = pg_env.messages()
    assert len(records) == 2 and all(r.status == "queued" for r in records)
    assert sorted(e.recipient for e in pg_env.queue()) == [
        "a@example.net",
        "b@example.net",
        "c@example.net",
    ]
    assert all(dkimpy_verify(pg_env.raw(r), pg_env.zone) for r in records)
    pipeline = pg_env.server.app.pipeline
    assert pipeline is not None and pipeline.submission is not None
    pg_env.server.call(pipeline.submission.quota.sync_all())
    since = pg_env.clock.now().replace(hour=0)
    assert pg_env.platform.count_sends("acme", since) == 3
