"""A private, throw-away Postfix instance and an smtp-sink, for `bench/smtp_acceptance.py`.

The instance itself is the test support's (tests/postfix.py): its own configuration, queue and
data directories and log file under a directory the caller owns, listening on 127.0.0.1 only,
never resolving a name. Here it relays everything to an smtp-sink on 127.0.0.1. Every process
started here is stopped by the context manager that started it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.postfix import (
    LOOPBACK,
    POSTFIX,
    PostfixInstance,
    free_port,
    postfix_version,
    run_checked,
    stop_process,
    tail,
    wait_for_port,
)
from tests.postfix import PostfixError as BenchError

__all__ = [
    "LOOPBACK",
    "BenchError",
    "PrivatePostfix",
    "SmtpSink",
    "ensure_postfix_installed",
    "free_port",
    "postfix_version",
    "run_checked",
    "stop_process",
    "tail",
    "wait_for_port",
]

SBIN = Path("/usr/sbin")
SMTP_SOURCE = SBIN / "smtp-source"
SMTP_SINK = SBIN / "smtp-sink"
APT_TIMEOUT = 900.0


def ensure_postfix_installed() -> None:
    """Install Debian's postfix (which ships smtp-source and smtp-sink) when it is missing."""
    if SMTP_SOURCE.exists() and SMTP_SINK.exists() and POSTFIX.exists():
        return
    if os.geteuid() != 0:
        raise BenchError("postfix is not installed and this is not root: apt-get install postfix")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "postfix"]
    print("installing Debian's postfix (smtp-source, smtp-sink) ...", flush=True)
    first = subprocess.run(install, env=env, stdin=subprocess.DEVNULL, timeout=APT_TIMEOUT)
    if first.returncode != 0:
        subprocess.run(
            ["apt-get", "update", "-q"], env=env, stdin=subprocess.DEVNULL, timeout=APT_TIMEOUT
        )
        second = subprocess.run(install, env=env, stdin=subprocess.DEVNULL, timeout=APT_TIMEOUT)
        if second.returncode != 0:
            raise BenchError("apt-get install postfix failed")
    if not SMTP_SOURCE.exists():
        raise BenchError(f"{SMTP_SOURCE} still missing after installing postfix")


class SmtpSink:
    """`smtp-sink -c 127.0.0.1:PORT 1000`: accepts and discards mail, counting messages."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.output_path = workdir / f"smtp-sink-{self.port}.out"
        self._output: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SmtpSink:
        argv = [str(SMTP_SINK), "-c"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # smtp-sink refuses to keep root privileges
        argv += [f"{LOOPBACK}:{self.port}", "1000"]
        self._output = self.output_path.open("wb")
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            wait_for_port(self.port, 10.0, self._process)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if self._output is not None:
            self._output.close()
            self._output = None

    def messages(self) -> int:
        """Messages received so far: the last `mesg=N` of the `-c` counter line."""
        counts = re.findall(rb"mesg=(\d+)", self.output_path.read_bytes()[-4096:])
        return int(counts[-1]) if counts else 0


class PrivatePostfix(PostfixInstance):
    """A private Postfix relaying all mail to `[127.0.0.1]:relay_port` (an smtp-sink)."""

    def __init__(self, workdir: Path, relay_port: int, sessions: int, size: int) -> None:
        self.relay_port = relay_port
        self.sessions = sessions
        self.size = size
        settings = {
            "syslog_name": "postfix-bench",
            "myhostname": "postfix-bench.localhost",
            "relayhost": f"[{LOOPBACK}]:{relay_port}",
            "default_transport": "smtp",
            "relay_transport": "smtp",
            # As a stock Postfix does for clients on its own interfaces.
            "local_header_rewrite_clients": "permit_inet_interfaces",
            "message_size_limit": str(max(10_240_000, 2 * size + 65_536)),
        }
        super().__init__(workdir, settings, processes=max(100, sessions + 20))

    def __enter__(self) -> PrivatePostfix:
        super().__enter__()
        return self
