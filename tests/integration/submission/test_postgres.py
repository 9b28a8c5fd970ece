"""The submission path on PostgreSQL: the message, its queue entries (COPY) and the send
counters live in the shared database."""

from __future__ import annotations

import json
import os
import secrets
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import trustme
from sqlalchemy.engine import make_url

from postroom.core.clock import FakeClock
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
    # The server's clock starts at the real time: the CLI (another process) reads the real one.
    # The writer child process on PostgreSQL (the production default): message and queue
    # entries (COPY) committed by the child.
    clock = FakeClock(datetime.now(UTC))
    environment = start_env(
        tmp_path, ca, dns_zone, clock, database_url=database_url, writer_process=True
    )
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
    # Counted in the database with the messages, at once (no flush).
    since = pg_env.clock.now().replace(hour=0)
    assert pg_env.platform.count_sends("acme", since) == 3
    url = pg_env.server.app.config.database_url
    cli = subprocess.run(
        [sys.executable, "-m", "postroom.cli", "project", "usage", "acme", "--json"],
        env={**os.environ, "POSTROOM_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    usage = json.loads(cli.stdout)
    assert (usage["sent_24h"], usage["daily_quota"], usage["remaining_24h"]) == (3, 3, 0)


def test_a_big_spooled_message_is_stored_from_its_file_on_postgres(pg_env: Env) -> None:
    # Over the 1 MiB spool threshold: fixed up and signed from its file, then compressed from
    # it by the writer process into PostgreSQL (COPY).
    body = b"".join(b"line %07d of a big message  \r\n" % n for n in range(80_000))
    message = MESSAGE.replace(b"Hello\r\n", body)
    with pg_env.smtp() as client:
        client.sendmail("app@example.com", ["a@example.net"], message)
    [record] = pg_env.messages()
    raw = pg_env.raw(record)
    assert raw.endswith(b"\r\n\r\n" + body) and record.size == len(raw)
    assert dkimpy_verify(raw, pg_env.zone)
    spool = pg_env.server.app.spool.directory
    assert spool is not None and list(spool.iterdir()) == []
