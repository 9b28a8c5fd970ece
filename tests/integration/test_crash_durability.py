"""Invariant 1 (no loss): kill the server with SIGKILL under load; every message that got a 250
is stored exactly once and intact after a restart."""

from __future__ import annotations

import os
import random
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import require_postgres

CLIENTS = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Process:
    def __init__(self, args: list[str], log: Path) -> None:
        self.smtp_port, self.http_port = free_port(), free_port()
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "postroom.cli",
                "serve",
                *args,
                "--smtp",
                f"127.0.0.1:{self.smtp_port}",
                "--http",
                f"127.0.0.1:{self.http_port}",
                "--log-level",
                "warning",
            ],
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{self.http_port}/readyz", timeout=1).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, "server exited during start"
            time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def terminate(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def sender(port: int, stop: threading.Event, acked: list[tuple[str, str, bytes]]) -> None:
    """Send until the server dies; record (token, id, data) for every 250 after DATA."""
    try:
        client = smtplib.SMTP("127.0.0.1", port, timeout=10)
        client.ehlo("crash-test")
        while not stop.is_set():
            token = f"crash{uuid.uuid4().hex}"
            data = (
                f"From: a@example.com\r\nTo: b@example.com\r\nSubject: {token}\r\n\r\n"
                + f"{token} body line\r\n" * 40
            ).encode()
            client.mail("a@example.com")
            client.rcpt("b@example.com")
            code, reply = client.data(data)
            if code == 250:
                acked.append((token, reply.decode().rsplit(" ", 1)[-1], data))
    except (OSError, smtplib.SMTPException):
        return


@pytest.fixture(params=["sqlite", "postgres"])
def backend_args(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    args = ["--data-dir", str(tmp_path / "data")]
    if request.param == "sqlite":
        yield args
        return
    import psycopg

    url = require_postgres()
    name = f"postroom_crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield [*args, "--database-url", url.rsplit("/", 1)[0] + "/" + name]
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_sigkill_under_load_loses_no_acknowledged_message(
    tmp_path: Path, backend_args: list[str]
) -> None:
    seed = int(os.environ.get("POSTROOM_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    log = tmp_path / "server.log"
    server = Process(backend_args, log)
    acked: list[tuple[str, str, bytes]] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=sender, args=(server.smtp_port, stop, acked))
        for _ in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    # Kill at a random moment once some load is flowing.
    deadline = time.monotonic() + 30
    while len(acked) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 1.0))
    server.kill()
    stop.set()
    for t in threads:
        t.join(15)
    snapshot = list(acked)
    assert len(snapshot) >= 50, f"too little load before the kill (seed {seed})"

    restarted = Process(backend_args, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{restarted.http_port}", timeout=30) as http:
            for token, message_id, data in snapshot:
                raw = http.get(f"/api/v1/message/{message_id}/raw")
                assert raw.status_code == 200, f"acknowledged {message_id} lost (seed {seed})"
                assert raw.content.endswith(data), f"{message_id} altered (seed {seed})"
                found = http.get("/api/v1/search", params={"query": f"subject:{token}"}).json()
                assert found["messages_count"] == 1, (
                    f"{token} stored {found['messages_count']} times"
                )
    finally:
        restarted.terminate()
