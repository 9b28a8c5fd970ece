"""A well-behaved SMTP client's latency while slow clients hold every connection slot.

Starts `postroom serve` (capture door, SQLite in a temporary directory, default limits:
1,000 connections, 100 per client) and measures, with smtplib, the time from connect to the
reply to QUIT of one complete transaction (EHLO, MAIL, RCPT, DATA, QUIT):

  baseline  `--rounds` transactions with nothing else connected;
  flood     the same while `--slow` connections from `--addresses` loopback addresses
            (127.0.0.2 onwards, `--slow / --addresses` each) hold the server, dripping one
            octet every `--interval` seconds and never finishing a line: half of them wait in
            a command, half are inside DATA. The transactions start once the slow ones have
            been idle for longer than the server's eviction threshold (1 s).

It prints median, 95th percentile and maximum latency for each phase, how many transactions
were refused, and how many slow connections were still open at the end (each served
transaction may close one slow connection to make room). Everything listens on 127.0.0.1
only; the server and every connection are closed at the end, also on errors.

    .venv/bin/python bench/slow_clients.py [--slow 1000] [--addresses 10] [--rounds 20]
        [--interval 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from postfix_instance import LOOPBACK, BenchError, free_port, stop_process, wait_for_port
from smtp_acceptance import _wait_ready, postroom_command


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "good@example.com"
    message["To"] = "someone@example.org"
    message["Subject"] = "a well-behaved client"
    message.set_content("hello\n")
    return message


def good_transaction(port: int) -> float | None:
    """Seconds from connect to the QUIT reply; None when refused."""
    started = time.perf_counter()
    try:
        with smtplib.SMTP(LOOPBACK, port, timeout=60) as client:
            client.send_message(_message())
    except (smtplib.SMTPException, OSError) as exc:
        print(f"    refused: {exc}", flush=True)
        return None
    return time.perf_counter() - started


async def open_slow(
    port: int, address: str, in_data: bool
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(LOOPBACK, port, local_addr=(address, 0))

    async def expect(code: bytes) -> None:
        line = await reader.readline()
        while line[3:4] == b"-":
            line = await reader.readline()
        if not line.startswith(code):
            raise BenchError(f"slow client from {address}: expected {code!r}, got {line!r}")

    await expect(b"220")
    if in_data:
        for command, code in (
            (b"EHLO slow.test", b"250"),
            (b"MAIL FROM:<slow@example.com>", b"250"),
            (b"RCPT TO:<victim@example.org>", b"250"),
            (b"DATA", b"354"),
        ):
            writer.write(command + b"\r\n")
            await expect(code)
    return reader, writer


async def until_closed(reader: asyncio.StreamReader) -> None:
    """Read (and drop) whatever the server still says, until it closes the connection."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass


async def drip(writers: list[asyncio.StreamWriter], interval: float) -> None:
    while True:
        for writer in writers:
            if not writer.is_closing():
                writer.write(b"x")
        await asyncio.sleep(interval)


def summary(label: str, latencies: list[float | None]) -> str:
    served = sorted(x for x in latencies if x is not None)
    refused = len(latencies) - len(served)
    if not served:
        return f"{label:9} served 0 of {len(latencies)}"
    p95 = served[min(len(served) - 1, round(0.95 * (len(served) - 1)))]
    return (
        f"{label:9} served {len(served)} of {len(latencies)} (refused {refused}): "
        f"median {statistics.median(served) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {served[-1] * 1000:.1f} ms"
    )


async def run(args: argparse.Namespace, port: int) -> list[str]:
    lines: list[str] = []
    baseline = [await asyncio.to_thread(good_transaction, port) for _ in range(args.rounds)]
    lines.append(summary("baseline", baseline))
    print("  " + lines[-1], flush=True)
    addresses = [f"127.0.0.{2 + i}" for i in range(args.addresses)]
    per_address = args.slow // args.addresses
    writers: list[asyncio.StreamWriter] = []
    watchers: list[asyncio.Task[None]] = []
    dripping: asyncio.Task[None] | None = None
    try:
        started = time.perf_counter()
        for address in addresses:
            for reader, writer in await asyncio.gather(
                *(open_slow(port, address, i % 2 == 1) for i in range(per_address))
            ):
                writers.append(writer)
                watchers.append(asyncio.create_task(until_closed(reader)))
        print(
            f"  {len(writers)} slow connections open from {len(addresses)} addresses "
            f"({time.perf_counter() - started:.1f} s to open)",
            flush=True,
        )
        dripping = asyncio.create_task(drip(writers, args.interval))
        await asyncio.sleep(1.5)
        flood: list[float | None] = []
        for _ in range(args.rounds):
            flood.append(await asyncio.to_thread(good_transaction, port))
            await asyncio.sleep(0.05)
        lines.append(summary("flood", flood))
        print("  " + lines[-1], flush=True)
        await asyncio.sleep(0.2)
        open_now = sum(1 for watcher in watchers if not watcher.done())
        lines.append(f"slow connections still open after the flood phase: {open_now}")
        print("  " + lines[-1], flush=True)
    finally:
        if dripping is not None:
            dripping.cancel()
        for watcher in watchers:
            watcher.cancel()
        for writer in writers:
            writer.transport.abort()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=1000, help="slow connections")
    parser.add_argument("--addresses", type=int, default=10, help="loopback addresses (≤ 250)")
    parser.add_argument("--rounds", type=int, default=20, help="good transactions per phase")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between drips")
    args = parser.parse_args(argv)
    if not 1 <= args.addresses <= 250 or args.slow < args.addresses or args.rounds < 1:
        parser.error("need 1..250 addresses, at least one slow connection each, 1+ rounds")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.slow + 200
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    with tempfile.TemporaryDirectory(prefix="postroom-slow-") as tmp:
        workdir = Path(tmp)
        smtp_port, http_port = free_port(), free_port()
        argv_serve = [
            str(postroom_command()),
            "serve",
            "--data-dir",
            str(workdir / "data"),
            "--smtp",
            f"{LOOPBACK}:{smtp_port}",
            "--http",
            f"{LOOPBACK}:{http_port}",
            "--log-level",
            "warning",
        ]
        log = workdir / "postroom.log"
        print(f"postroom serve on {LOOPBACK}:{smtp_port} (default limits)", flush=True)
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv_serve,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=workdir,
            )
            try:
                _wait_ready(f"http://{LOOPBACK}:{http_port}", process, log, timeout=60.0)
                wait_for_port(smtp_port, 10.0, process)
                lines = asyncio.run(run(args, smtp_port))
            finally:
                stop_process(process, grace=15.0)
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
