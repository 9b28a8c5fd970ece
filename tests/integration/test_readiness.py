"""/readyz while the disk is full (issue 9, item 6): not ready, with the reason, while commits
fail; ready again once one succeeds. The disk fills for real as far as SQLite can tell: its
`max_page_count` is set to the database's current size on the writer's connections, so the
next page it needs fails with SQLITE_FULL ("database or disk is full"), the very error a full
disk gives. Mail goes in over real SMTP."""

from __future__ import annotations

import os
import smtplib
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from postroom.core.clock import FakeClock
from tests.harness import ServerThread, make_config

UNLIMITED = 2**31 - 2


def big_message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "app@example.com"
    msg["To"] = "user@example.com"
    msg["Subject"] = subject
    msg.set_content(os.urandom(150_000).hex())  # incompressible: needs new pages
    return msg


def send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(big_message(subject))


class Disk:
    """Caps the database at its current size on every connection the writer checks out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.limit = UNLIMITED
        event.listen(engine, "checkout", self._apply)

    def _apply(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA max_page_count = {self.limit}")
        finally:
            cursor.close()

    def fill(self) -> None:
        with self.engine.connect() as conn:
            self.limit = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())

    def free(self) -> None:
        self.limit = UNLIMITED

    def close(self) -> None:
        event.remove(self.engine, "checkout", self._apply)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(tmp_path: Path, clock: FakeClock) -> Iterator[ServerThread]:
    # The writer thread (not the writer process) so that the test reaches its connections.
    config = replace(make_config(tmp_path / "data"), writer_process=False)
    thread = ServerThread(config, clock).start()
    try:
        yield thread
    finally:
        thread.stop()


def test_not_ready_while_the_disk_is_full(server: ServerThread, clock: FakeClock) -> None:
    store: Any = server.app.store
    disk = Disk(store._write)
    readyz = server.base_url + "/readyz"
    try:
        send(server.smtp_port, "before")
        assert httpx.get(readyz).text == "ready"

        disk.fill()
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(server.smtp_port, "while full")
        assert refused.value.smtp_code == 451
        clock.advance(3)
        answer = httpx.get(readyz)
        assert answer.status_code == 503
        assert answer.text.startswith("not ready: storage refuses writes")
        assert "database or disk is full" in answer.text
        assert "[SQL" not in answer.text and "INSERT" not in answer.text  # no statement, no data
        # Still answering (451) and still not ready on the next attempt.
        with pytest.raises(smtplib.SMTPDataError):
            send(server.smtp_port, "still full")
        assert httpx.get(readyz).status_code == 503

        disk.free()
        send(server.smtp_port, "after")
        assert httpx.get(readyz).text == "ready"
    finally:
        disk.close()


def test_a_failure_stops_counting_when_nothing_tries_again(
    server: ServerThread, clock: FakeClock
) -> None:
    """Out of rotation, no mail comes to show the disk has room again: after RETRY_AFTER
    without a failed attempt, the server says ready so that traffic can try."""
    from postroom.pipeline.health import RETRY_AFTER

    store: Any = server.app.store
    disk = Disk(store._write)
    readyz = server.base_url + "/readyz"
    try:
        disk.fill()
        with pytest.raises(smtplib.SMTPDataError):
            send(server.smtp_port, "while full")
        assert httpx.get(readyz).status_code == 503
        clock.advance(RETRY_AFTER)
        assert httpx.get(readyz).text == "ready"
    finally:
        disk.close()
