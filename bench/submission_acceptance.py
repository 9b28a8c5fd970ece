"""Acceptance rate of the submission door: STARTTLS, AUTH and DKIM signing included.

Starts `postroom serve` with `--submission` in a temporary data directory holding a live
project whose domain has an active DKIM key (RSA 2048 by default), then `--clients` aiosmtplib
clients each open one connection, upgrade it with STARTTLS, log in once with AUTH PLAIN and
submit `--messages` messages of about `--size` octets on it, one after the other. Every 250 is
sent only after the message, signed, and its queue entry are durably committed.

Prints the wall time and the rate (messages per second), and the server's CPU time per message
(user + system of the server process and its children while the clients ran, from /proc:
steadier than the rate on a shared machine). Everything listens on 127.0.0.1
only; the server is stopped at the end, also on errors and Ctrl-C.

    .venv/bin/python bench/submission_acceptance.py [--clients 8] [--messages 250]
        [--size 2048] [--key rsa|ed25519|none] [--daily-quota N] [--database-url ...] [--keep]

Every accepted message counts its recipients toward the project's sending quota (in the
message's own transaction); `--daily-quota N` also gives the project a daily quota (large
enough for the run), so that the door checks it and reads the count again every 5 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib

from postroom.core.platform import DkimKey, Domain, Project, SmtpCredential
from postroom.core.secrets import new_secret, secret_digest
from postroom.dns.dkim import dns_record, dump_private_key, generate_ed25519, generate_rsa
from postroom.smtp.tls import generate_self_signed
from postroom.storage.engine import open_platform_store

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def prepare(data_dir: Path, database_url: str, key_kind: str, daily_quota: int | None) -> str:
    """Create the live project, its domain (with the DKIM key) and a credential; return the
    credential's password."""
    now = datetime.now(UTC)
    store = open_platform_store(database_url or str(data_dir))
    try:
        store.create_project(Project("bench", "Bench", "live", now, daily_quota=daily_quota))
        keys: tuple[DkimKey, ...] = ()
        if key_kind != "none":
            key = generate_rsa(2048) if key_kind == "rsa" else generate_ed25519()
            keys = (
                DkimKey(
                    selector="bench",
                    algorithm="rsa" if key_kind == "rsa" else "ed25519",
                    private_pem=dump_private_key(key).decode("ascii"),
                    public_record=dns_record(key),
                    status="active",
                    created=now,
                    activated=now,
                ),
            )
        store.add_domain(
            Domain("bench-domain", "bench", "example.com", "token", True, now, now, None, keys)
        )
        password = new_secret("prs")
        store.add_smtp_credential(
            SmtpCredential("bench-cred", "bench", "bench", secret_digest(password), (), now)
        )
        return password
    finally:
        store.close()


async def client(port: int, context: ssl.SSLContext, password: str, n: int, body: bytes) -> int:
    smtp = aiosmtplib.SMTP(
        hostname=LOOPBACK, port=port, tls_context=context, start_tls=True, timeout=60
    )
    await smtp.connect()
    await smtp.login("bench", password)
    sent = 0
    for i in range(n):
        message = (
            b"From: Bench <bench@example.com>\r\nTo: rcpt@example.net\r\n"
            + f"Subject: message {i}\r\n\r\n".encode()
            + body
        )
        await smtp.sendmail("bench@example.com", ["rcpt@example.net"], message)
        sent += 1
    await smtp.quit()
    return sent


async def run_clients(
    port: int, context: ssl.SSLContext, password: str, clients: int, messages: int, size: int
) -> tuple[int, float]:
    line = b"The quick brown fox jumps over the lazy dog, again and again. 0123456789\r\n"
    body = (line * (size // len(line) + 1))[:size]
    body = body[: body.rfind(b"\r\n") + 2]
    start = time.perf_counter()
    counts = await asyncio.gather(
        *(client(port, context, password, messages, body) for _ in range(clients))
    )
    return sum(counts), time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` and its live children so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--messages", type=int, default=250, help="per client")
    parser.add_argument("--size", type=int, default=2048, help="body octets per message")
    parser.add_argument("--key", choices=("rsa", "ed25519", "none"), default="rsa")
    parser.add_argument("--daily-quota", type=int, default=None, help="the project's quota")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="postroom-submission-bench-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        data_dir = workdir / "data"
        password = prepare(data_dir, args.database_url, args.key, args.daily_quota)
        cert, key = workdir / "cert.pem", workdir / "key.pem"
        generate_self_signed(cert, key, "localhost")
        port = free_port()
        argv = [
            sys.executable, "-c", "from postroom.cli import main; main()", "serve",
            "--data-dir", str(data_dir),
            "--smtp", f"{LOOPBACK}:{free_port()}",
            "--http", f"{LOOPBACK}:{free_port()}",
            "--submission", f"{LOOPBACK}:{port}",
            "--tls-cert", str(cert), "--tls-key", str(key),
            "--log-level", "warning",
        ]  # fmt: skip
        if args.database_url:
            argv += ["--database-url", args.database_url]
        log = (workdir / "server.log").open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                print((workdir / "server.log").read_text(), file=sys.stderr)
                return 1
            try:
                with socket.create_connection((LOOPBACK, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    print("the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(cert))
        cpu_before = cpu_seconds(process.pid)
        sent, seconds = asyncio.run(
            run_clients(port, context, password, args.clients, args.messages, args.size)
        )
        cpu = cpu_seconds(process.pid) - cpu_before
        backend = "PostgreSQL" if args.database_url else "SQLite"
        print(
            f"submission door, {backend}, STARTTLS + AUTH PLAIN, DKIM {args.key}, "
            f"daily quota {args.daily_quota or 'none'}: "
            f"{args.clients} clients x {args.messages} messages of ~{args.size} octets "
            f"on one connection each"
        )
        print(f"  {sent} messages in {seconds:.2f} s = {sent / seconds:.0f} msg/s")
        print(f"  server CPU {cpu:.2f} s = {1000 * cpu / max(sent, 1):.3f} ms per message")
        return 0
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
