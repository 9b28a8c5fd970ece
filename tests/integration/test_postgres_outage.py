"""PostgreSQL stopped under load: SMTP clients hear `451 4.3.0`, nothing acknowledged is lost,
and acceptance resumes by itself when the database is back.

The machine's shared PostgreSQL is never touched: the test runs its own instance (Debian's
binaries, initdb into a temporary directory, a free port on 127.0.0.1, its socket in that
directory), stops it with `pg_ctl stop` (fast, then immediate: a crash) while clients send,
and starts it again.
Everything it starts is stopped and removed whatever happens, and every wait is bounded.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.harness import ServerThread, make_config
from tests.services import SKIP_PREFIX

pytestmark = pytest.mark.timeout(300)

CLIENTS = 4
STOPPED_FOR = 3.0  # seconds the database stays down once the first 451 is heard
WAIT = 60.0  # bound on every wait


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip(f"{SKIP_PREFIX} PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivatePostgres:
    bindir: Path
    root: Path
    port: int
    user: str | None  # run the server as this user (initdb refuses root)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )

    def init(self) -> None:
        done = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c max_connections=50"
        )
        done = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        if done.returncode != 0:
            log = (self.root / "log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}{log}")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status").returncode == 0


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _binaries()
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(f"{SKIP_PREFIX} no postgres user to run a private PostgreSQL as")
        if shutil.which("runuser") is None:
            pytest.skip(f"{SKIP_PREFIX} runuser (util-linux) is needed to run PostgreSQL")
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="postroom-pg-"))
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        pg = PrivatePostgres(bindir, root, _free_port(), user)
        pg.init()
        pg.start()
        try:
            yield pg
        finally:
            if pg.running():
                pg.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Load:
    """Clients sending numbered messages until told to stop; what each one heard."""

    port: int
    acked: set[str] = field(default_factory=set)
    deferred: list[str] = field(default_factory=list)  # "451 4.3.0 ..." replies
    other: list[str] = field(default_factory=list)  # anything else: must stay empty
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    def next_subject(self) -> str:
        with self.lock:
            self.counter += 1
            return f"outage-{self.counter:06d}"

    def client(self) -> None:
        while not self.stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
                    smtp.ehlo("load.test")
                    for _ in range(20):
                        if self.stop.is_set():
                            break
                        self.send_one(smtp)
            except (OSError, smtplib.SMTPException) as exc:
                with self.lock:
                    self.other.append(f"connection: {exc!r}")
                return

    def send_one(self, smtp: smtplib.SMTP) -> None:
        subject = self.next_subject()
        body = f"Subject: {subject}\r\nFrom: a@example.com\r\n\r\nload\r\n"
        code, text = smtp.mail("a@example.com")
        if code == 250:
            code, text = smtp.rcpt("b@example.com")
        if code == 250:
            code, text = smtp.data(body.encode())
        reply = f"{code} {text.decode(errors='replace')}"
        with self.lock:
            if code == 250:
                self.acked.add(subject)
            elif code == 451 and text.startswith(b"4.3.0"):
                self.deferred.append(reply)
            else:
                self.other.append(reply)
        if code != 250:
            smtp.rset()

    def wait_for(self, what: str, predicate: object) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if callable(predicate) and predicate():
                return
            if self.other:
                break
            time.sleep(0.05)
        raise AssertionError(f"{what} within {WAIT} s; unexpected: {self.other[:5]}")


def _stored_subjects(base_url: str) -> set[str]:
    found: set[str] = set()
    with httpx.Client(base_url=base_url, timeout=60) as http:
        start = 0
        while True:
            page = http.get("/api/v1/messages", params={"start": start, "limit": 1000}).json()
            found.update(m["Subject"] for m in page["messages"])
            start += len(page["messages"])
            if not page["messages"] or start >= page["total"]:
                return found


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_stopped_under_load(
    private_postgres: PrivatePostgres, tmp_path: Path, mode: str
) -> None:
    """`fast` is a clean shutdown that cuts the connections; `immediate` a crash that
    PostgreSQL recovers from its WAL: acknowledged messages must survive both."""
    pg = private_postgres
    server = ServerThread(make_config(tmp_path / "data", database_url=pg.url)).start()
    load = Load(server.smtp_port)
    threads = [threading.Thread(target=load.client, daemon=True) for _ in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        load.wait_for("messages accepted before the outage", lambda: len(load.acked) >= 20)

        pg.stop(mode)
        load.wait_for("451 4.3.0 while PostgreSQL is down", lambda: len(load.deferred) >= 3)
        time.sleep(STOPPED_FOR)  # keep it down while the clients keep trying
        acked_before_restart = len(load.acked)
        deferred_while_down = len(load.deferred)

        pg.start()
        load.wait_for(
            "acceptance to resume by itself", lambda: len(load.acked) >= acked_before_restart + 20
        )
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(WAIT)
        try:
            stored = _stored_subjects(server.base_url) if pg.running() else set()
        finally:
            server.stop()

    assert load.other == [], load.other[:5]
    assert deferred_while_down >= 3
    assert all(reply.startswith("451 4.3.0") for reply in load.deferred)
    missing = load.acked - stored
    assert not missing, f"{len(missing)} acknowledged messages lost: {sorted(missing)[:5]}"
