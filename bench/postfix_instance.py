"""A private, throw-away Postfix instance and an smtp-sink, for `bench/smtp_acceptance.py`.

Nothing here touches the system Postfix: the instance has its own configuration directory,
queue directory, data directory and log file under a directory the caller owns, listens on
127.0.0.1 only, relays everything to an smtp-sink on 127.0.0.1 and never resolves a name.
Every process started here is stopped by the context manager that started it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

SBIN = Path("/usr/sbin")
SMTP_SOURCE = SBIN / "smtp-source"
SMTP_SINK = SBIN / "smtp-sink"
POSTFIX = SBIN / "postfix"
POSTCONF = SBIN / "postconf"

LOOPBACK = "127.0.0.1"
COMMAND_TIMEOUT = 120.0
APT_TIMEOUT = 900.0

# Queue subdirectories that hold mail not yet delivered.
PENDING_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


class BenchError(RuntimeError):
    """A benchmark step could not be carried out."""


def run_checked(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> str:
    """Run a short command, return its output, raise BenchError with its output on failure."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(argv)}: no answer after {timeout:.0f} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {output}")
    return done.stdout


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None) -> None:
    """Wait until 127.0.0.1:port accepts connections (or the process that should listen dies)."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise BenchError(f"process {process.pid} exited {process.returncode} before listening")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                message = f"nothing listens on {LOOPBACK}:{port} after {timeout:.0f} s"
                raise BenchError(message) from exc
            time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM one process we started, SIGKILL it if it lingers, and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


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


class PrivatePostfix:
    """A Postfix instance of our own: `postfix -c <workdir>/etc start|stop`.

    It starts from the system's main.cf and master.cf (falling back to the packaged
    prototypes), then points every directory into `workdir`, drops every inet service but
    one smtpd on 127.0.0.1:`port`, turns off chroot, DNS, TLS, milters, content filters
    and lookup tables, and relays all mail to `[127.0.0.1]:relay_port`.
    """

    def __init__(self, workdir: Path, relay_port: int, sessions: int, size: int) -> None:
        self.workdir = workdir
        self.config_dir = workdir / "etc"
        self.queue_dir = workdir / "spool"
        self.data_dir = workdir / "data"
        self.maillog = workdir / "maillog"
        self.port = free_port()
        self.relay_port = relay_port
        self.sessions = sessions
        self.size = size
        self._started = False

    # -- configuration -------------------------------------------------------------------

    def _postconf(self, *args: str) -> str:
        return run_checked([str(POSTCONF), "-c", str(self.config_dir), *args])

    def main_settings(self) -> dict[str, str]:
        wd = self.workdir
        return {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(wd),
            "syslog_name": "postfix-bench",
            "myhostname": "postfix-bench.localhost",
            "mydomain": "localhost",
            "myorigin": "$myhostname",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "relayhost": f"[{LOOPBACK}]:{self.relay_port}",
            "default_transport": "smtp",
            "relay_transport": "smtp",
            # Never a DNS query, neither for the relay host nor for the client's name.
            "smtp_dns_support_level": "disabled",
            "lmtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            # Plain SMTP on both sides, like the Postroom capture door and smtp-source.
            "smtpd_tls_security_level": "none",
            "smtp_tls_security_level": "none",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_client_restrictions": "",
            "smtpd_helo_restrictions": "",
            "smtpd_sender_restrictions": "",
            "smtpd_recipient_restrictions": "",
            "smtpd_data_restrictions": "",
            # Whatever the system config routes through, this instance does not.
            "alias_maps": "",
            "alias_database": "",
            "virtual_alias_maps": "",
            "virtual_alias_domains": "",
            "canonical_maps": "",
            "sender_canonical_maps": "",
            "recipient_canonical_maps": "",
            "transport_maps": "",
            "header_checks": "",
            "body_checks": "",
            "content_filter": "",
            "smtpd_milters": "",
            "non_smtpd_milters": "",
            # Let the benchmark's sessions in, whatever --sessions says.
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "default_process_limit": str(max(100, self.sessions + 20)),
            "message_size_limit": str(max(10_240_000, 2 * self.size + 65_536)),
        }

    def configure(self) -> None:
        self.config_dir.mkdir(mode=0o755)
        self.queue_dir.mkdir(mode=0o755)  # `postfix check` creates what is inside
        for name, fallbacks in (
            ("main.cf", ("/etc/postfix/main.cf", "/usr/share/postfix/main.cf.dist")),
            ("master.cf", ("/etc/postfix/master.cf", "/usr/share/postfix/master.cf.dist")),
        ):
            target = self.config_dir / name
            source = next((Path(p) for p in fallbacks if Path(p).is_file()), None)
            if source is None:
                if name == "master.cf":
                    raise BenchError("no master.cf to start from (is postfix installed?)")
                target.write_text("")
            else:
                shutil.copyfile(source, target)

        self._postconf("-e", *(f"{k}={v}" for k, v in self.main_settings().items()))

        # Drop every inet listener (smtp, submission, smtps, postscreen...) of the copy.
        for line in self._postconf("-M").splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1] == "inet":
                self._postconf("-M", "-X", f"{fields[0]}/inet")
        listen = f"{LOOPBACK}:{self.port}"
        self._postconf("-M", f"{listen}/inet={listen} inet n - n - - smtpd")
        if "postlog" not in self._postconf("-M"):
            self._postconf("-M", "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd")
        # chroot would need copies of /etc files inside the private queue directory.
        self._postconf("-F", "*/*/chroot=n")

    # -- life cycle ----------------------------------------------------------------------

    def _postfix(self, command: str) -> None:
        run_checked([str(POSTFIX), "-c", str(self.config_dir), command])

    def __enter__(self) -> PrivatePostfix:
        if os.geteuid() != 0:
            raise BenchError("a private Postfix instance needs root (postfix start)")
        self.configure()
        try:
            self._postfix("check")
            self._started = True
            self._postfix("start")
            wait_for_port(self.port, 30.0, None)
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

    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        """`postfix stop`; if the master outlives it, kill that master by its pid."""
        if not self._started:
            return
        self._started = False
        pid = self.master_pid()
        with contextlib.suppress(BenchError, subprocess.SubprocessError):
            self._postfix("stop")
        if pid is None:
            return
        deadline = time.monotonic() + 15.0
        while _alive(pid) and _is_master(pid, self.config_dir):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
                break
            time.sleep(0.1)

    # -- observation ---------------------------------------------------------------------

    def pending(self) -> int:
        """Queue files not yet delivered (maildrop, incoming, active, deferred, hold)."""
        count = 0
        for queue in PENDING_QUEUES:
            for _root, _dirs, files in os.walk(self.queue_dir / queue):
                count += len(files)
        return count

    def deferred(self) -> int:
        return sum(len(files) for _r, _d, files in os.walk(self.queue_dir / "deferred"))

    def sent(self) -> int:
        """Deliveries the log reports as `status=sent`."""
        try:
            with self.maillog.open("rb") as log:
                return sum(1 for line in log if b" status=sent " in line)
        except OSError:
            return 0

    def wait_drained(self, timeout: float) -> float | None:
        """Seconds until the queue emptied, or None when it did not within `timeout`."""
        start = time.monotonic()
        while self.pending() > 0:
            if time.monotonic() - start > timeout:
                return None
            time.sleep(0.2)
        return time.monotonic() - start


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_master(pid: int, config_dir: Path) -> bool:
    """Whether `pid` is still a Postfix master (pids get reused; never kill a stranger)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return b"master" in cmdline and str(config_dir).encode() in environ


def postfix_version() -> str:
    try:
        return run_checked([str(POSTCONF), "-d", "-h", "mail_version"]).strip()
    except (BenchError, OSError):
        return "?"
