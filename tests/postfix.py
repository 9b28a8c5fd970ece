"""A private, throw-away Postfix instance (Debian's postfix), for tests and benchmarks.

Nothing here touches the system Postfix: the instance has its own configuration directory,
queue directory, data directory and log file under a directory the caller owns, listens on
127.0.0.1 only and never resolves a name. Two uses:

* `ReceivingPostfix`: a real receiving MX for the outbound MTA's tests. It takes mail for the
  given domains and delivers every recipient into one Maildir under the work directory.
* `PostfixInstance` with `relayhost` set (bench/postfix_instance.py): relays everything to an
  smtp-sink, for the acceptance benchmark.

Starting an instance needs root (`postfix start`); `postfix_absent()` says why one cannot run
here, so tests skip with that reason. Every process started here is stopped by the context
manager that started it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

SBIN = Path("/usr/sbin")
POSTFIX = SBIN / "postfix"
POSTCONF = SBIN / "postconf"

LOOPBACK = "127.0.0.1"
COMMAND_TIMEOUT = 120.0

# Queue subdirectories that hold mail not yet delivered.
PENDING_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


class PostfixError(RuntimeError):
    """A step of running a private Postfix instance could not be carried out."""


def run_checked(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> str:
    """Run a short command, return its output, raise PostfixError with its output on failure."""
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
        raise PostfixError(f"{' '.join(argv)}: no answer after {timeout:.0f} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise PostfixError(f"{' '.join(argv)} exited {done.returncode}: {output}")
    return done.stdout


def postfix_absent() -> str | None:
    """Why a private Postfix cannot run here (None when it can)."""
    if not (POSTFIX.exists() and POSTCONF.exists()):
        return "Postfix is not installed (Debian package postfix; scripts/test-services.sh)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (postfix start)"
    return None


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
            raise PostfixError(
                f"process {process.pid} exited {process.returncode} before listening"
            )
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                message = f"nothing listens on {LOOPBACK}:{port} after {timeout:.0f} s"
                raise PostfixError(message) from exc
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


class PostfixInstance:
    """A Postfix instance of our own: `postfix -c <workdir>/etc start|stop`.

    It starts from the system's main.cf and master.cf (falling back to the packaged
    prototypes), then points every directory into `workdir`, drops every inet service but
    one smtpd on 127.0.0.1:`port`, turns off chroot, DNS, TLS, milters, content filters,
    lookup tables and header rewriting, and applies `settings` (main.cf parameters) last.
    """

    def __init__(
        self, workdir: Path, settings: dict[str, str] | None = None, *, processes: int = 100
    ) -> None:
        self.workdir = workdir
        self.config_dir = workdir / "etc"
        self.queue_dir = workdir / "spool"
        self.data_dir = workdir / "data"
        self.maillog = workdir / "maillog"
        self.port = free_port()
        self.settings = dict(settings or {})
        self.processes = processes
        self._started = False

    # -- configuration -------------------------------------------------------------------

    def _postconf(self, *args: str) -> str:
        return run_checked([str(POSTCONF), "-c", str(self.config_dir), *args])

    def main_settings(self) -> dict[str, str]:
        wd = self.workdir
        base = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(wd),
            "syslog_name": "postfix-private",
            "myhostname": "postfix-private.localhost",
            "mydomain": "localhost",
            "myorigin": "$myhostname",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "relayhost": "",
            # Never a DNS query, neither for a next hop nor for the client's name.
            "smtp_dns_support_level": "disabled",
            "lmtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            # Plain SMTP on both sides.
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
            # Mail from loopback clients is not "local": no headers added or rewritten.
            "local_header_rewrite_clients": "",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "default_process_limit": str(self.processes),
        }
        base.update(self.settings)
        return base

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
                    raise PostfixError("no master.cf to start from (is postfix installed?)")
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

    def __enter__(self) -> PostfixInstance:
        reason = postfix_absent()
        if reason is not None:
            raise PostfixError(reason)
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
        with contextlib.suppress(PostfixError, subprocess.SubprocessError):
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


class ReceivingPostfix(PostfixInstance):
    """A receiving MX: mail for `domains` goes through Postfix's virtual(8) delivery agent into
    the Maildir `<workdir>/mail/inbox/` (every recipient into the same one), owned by nobody."""

    def __init__(self, workdir: Path, domains: list[str], hostname: str) -> None:
        self.mail_dir = workdir / "mail"
        settings = {
            "myhostname": hostname,
            "virtual_mailbox_domains": " ".join(domains),
            "virtual_mailbox_base": str(self.mail_dir),
            "virtual_mailbox_maps": "static:inbox/",  # a trailing slash means Maildir
            "virtual_uid_maps": "static:65534",
            "virtual_gid_maps": "static:65534",
            "virtual_minimum_uid": "100",
            "virtual_transport": "virtual",
            "smtpd_relay_restrictions": "reject_unauth_destination",
        }
        super().__init__(workdir, settings, processes=20)

    def __enter__(self) -> ReceivingPostfix:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.mail_dir, 65534, 65534)
        super().__enter__()
        return self

    def delivered(self) -> list[bytes]:
        """The messages in the Maildir (new/), oldest first, as Postfix stored them (LF)."""
        new = self.mail_dir / "inbox" / "new"
        if not new.is_dir():
            return []
        files = sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime, p.name))
        return [p.read_bytes() for p in files]

    def wait_delivered(self, count: int, timeout: float = 30.0) -> list[bytes]:
        """The delivered messages once there are `count` of them (or after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(found := self.delivered()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return found


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
    except (PostfixError, OSError):
        return "?"
