"""A start that fails half way closes what it had opened (app.py's exit stack).

The HTTP port is taken by another socket; the server opens its store (with the writer child
process, as in production) and its SMTP listeners first, then fails on the HTTP port. After
the error nothing may remain: no writer child, no SMTP listener accepting connections.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from postroom.app import Application
from postroom.config import HostPort
from postroom.core.errors import ConfigError
from tests.harness import make_config

WRITER = "postroom.storage.writer_child"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def writer_children() -> set[int]:
    """The writer child processes of this process, read from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if WRITER.encode() in cmdline:
                found.add(int(pid))
    return found


def alive(pid: int) -> bool:
    """Running or unreaped (a zombie still has its /proc entry)."""
    return Path(f"/proc/{pid}").exists()


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_a_taken_http_port_leaves_no_writer_child_and_no_listener(
    tmp_path: Path, busy_port: int
) -> None:
    smtp, submission = free_port(), free_port()
    config = make_config(
        tmp_path / "data",
        smtp=HostPort("127.0.0.1", smtp),
        submission=HostPort("127.0.0.1", submission),
        http=HostPort("127.0.0.1", busy_port),
        writer_process=True,  # the production default: a child process writes messages
    )
    app = Application(config)
    before = writer_children()
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:  # notes every writer child started while the server starts
        while not done.is_set():
            seen.update(writer_children() - before)
            done.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(ConfigError) as info:
            asyncio.run(app.run(asyncio.Event()))
    finally:
        done.set()
        watcher.join()
    assert str(info.value) == f"cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    assert seen, "the writer child was never started: the test would prove nothing"
    assert not [pid for pid in seen if alive(pid)]  # stopped and reaped
    assert writer_children() == before
    assert refuses(smtp) and refuses(submission)
    assert app.listening() == () and not app.ready()


def test_serve_reports_the_taken_port_and_exits(tmp_path: Path, busy_port: int) -> None:
    """`postroom serve` as users run it: a clear message, exit status 2, nothing left."""
    smtp = free_port()
    command = [
        sys.executable,
        "-c",
        "import sys; from postroom.cli import main; sys.exit(main())",
        "serve",
        "--data-dir",
        str(tmp_path / "data"),
        "--smtp",
        f"127.0.0.1:{smtp}",
        "--http",
        f"127.0.0.1:{busy_port}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"postroom: cannot listen on 127.0.0.1:{busy_port}: Address already in use" in (
        done.stderr
    )
    assert refuses(smtp)
