"""Helpers for the memory benchmarks: a `postroom serve` in a temporary directory, and the
resident memory (RSS) of it and its children (the writer process), sampled while work runs.

Used by http_body_limits.py, big_reads.py and big_messages.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(x) for x in f.read().split()]
    return found


def rss_of(pid: int) -> int:
    """Bytes resident for `pid`; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss(pid: int) -> tuple[int, int]:
    """(RSS of pid, RSS of pid and all its descendants)."""
    own = rss_of(pid)
    total = own
    stack = _children(pid)
    while stack:
        child = stack.pop()
        total += rss_of(child)
        stack += _children(child)
    return own, total


TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by pid and its living descendants."""
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        except (OSError, ValueError, IndexError):
            pass
        stack += _children(current)
    return total


class RssSampler:
    """Samples the RSS of a process tree every `interval` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_main = 0
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            own, total = tree_rss(self.pid)
            self.peak_main = max(self.peak_main, own)
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    smtp_port: int
    http_port: int
    data_dir: Path

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def rss(self) -> tuple[int, int]:
        return tree_rss(self.process.pid)


def http_json(url: str, timeout: float = 60.0) -> object:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    with opener.open(url, timeout=timeout) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def served(workdir: Path, *extra: str) -> Iterator[Served]:
    """`postroom serve` on free loopback ports with its data in `workdir`; stopped after."""
    smtp_port, http_port = free_port(), free_port()
    data_dir = workdir / "postroom-data"
    # POSTROOM_SRC=/path/to/a/checkout/src runs that code instead (before/after figures).
    source = os.environ.get("POSTROOM_SRC", "")
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source
    argv = [
        sys.executable,
        "-m",
        "postroom.cli",
        "serve",
        "--data-dir",
        str(data_dir),
        "--smtp",
        f"{LOOPBACK}:{smtp_port}",
        "--http",
        f"{LOOPBACK}:{http_port}",
        "--log-level",
        "warning",
        *extra,
    ]
    log = (workdir / "postroom.log").open("wb")
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"postroom serve exited {process.returncode}")
            with contextlib.suppress(OSError):
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(f"http://{LOOPBACK}:{http_port}/readyz", timeout=2):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("postroom serve not ready after 60 s")
            time.sleep(0.1)
        yield Served(process, smtp_port, http_port, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def mib(size: int) -> str:
    return f"{size / MIB:,.0f} MiB"
