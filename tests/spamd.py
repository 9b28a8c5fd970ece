"""A real spamd (Debian's spamd package) on a free loopback port, for the spam check's tests:
local tests only (no network), no user configuration, one child. Skips with a "service
unavailable:" reason when spamd is not installed (a failure under CI, which installs it)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.services import require_executable

START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_spamd(work: Path) -> Iterator[str]:
    """spamd's HOST:PORT while the block runs; stopped (by its own pid) after."""
    binary = require_executable("spamd", "/usr/sbin/spamd")
    port = free_port()
    command = [
        binary,
        f"--listen=127.0.0.1:{port}",
        "--allowed-ips=127.0.0.1",
        "--nouser-config",
        "--local",  # no network tests (DNS blocklists, Razor, ...)
        "--max-children=1",
        "--min-children=1",
        "--syslog=stderr",
        f"--pidfile={work / 'spamd.pid'}",
    ]
    if os.geteuid() == 0:
        command.append("--username=nobody")
    log = (work / "spamd.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"spamd exited: {(work / 'spamd.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"spamd did not listen within {START_TIMEOUT:g} s")
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
