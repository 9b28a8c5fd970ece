"""100,000 messages queued for a slow destination: the delivering server's memory (RSS).

Issue 10 (benchmark): "with 100,000 messages queued for a slow destination, the server's RSS
stays under 300 MB and a restart resumes without loss".

What it does:
1. Queues --messages live messages (one recipient each, r<N>@slow.example, 2 KB) straight
   into a fresh SQLite store (or --database-url) the way the pipeline writes them (message and
   queue entry in one transaction), and creates their live project.
2. Starts a slow receiving SMTP server on loopback: every reply comes --delay seconds late
   (250 to everything), so deliveries crawl and nearly the whole queue stays pending.
3. Starts `postroom serve` (all roles, delivery on) routed to it (`--routes
   slow.example=smtp+plain://127.0.0.1:PORT`) and samples the RSS of the server and its writer
   child every 20 ms for --seconds, while reading the queue view
   (/api/v2/projects/acme/queue) every few seconds as an operator would.
4. Stops it, starts it again for --restart-seconds, and checks that nothing was lost:
   delivered + pending = --messages in the queue, and the receiver kept getting mail.

Prints the peak RSS (main process, and with the writer child), the deliveries, the queue.

    .venv/bin/python bench/queue_memory.py [--messages 100000] [--seconds 120] [--delay 1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from served import LOOPBACK, RssSampler, http_json, mib, served

PROJECT = "acme"
BODY = ("The slow destination's message. " * 64)[:2048]


async def queue_messages(target: str, count: int) -> None:
    """`count` queued live messages, written like the pipeline writes them."""
    from postroom.core.clock import SystemClock
    from postroom.core.ids import new_id
    from postroom.core.platform import Project
    from postroom.core.types import Envelope, NewMessage
    from postroom.pipeline.complete import complete_message
    from postroom.pipeline.deliveries import deliveries_for
    from postroom.storage.engine import open_platform_store, open_store

    clock = SystemClock()
    platform = open_platform_store(target)
    try:
        platform.create_project(Project(PROJECT, "Acme", "live", clock.now()))
    finally:
        platform.close()
    store = open_store(target, clock, writer_process=False, complete=complete_message)
    began = time.monotonic()
    try:

        async def add(number: int) -> None:
            recipient = f"r{number}@slow.example"
            raw = (
                f"From: App <app@example.com>\r\nTo: {recipient}\r\n"
                f"Message-ID: <q{number}@example.com>\r\nSubject: slow {number}\r\n\r\n{BODY}\r\n"
            ).encode()
            envelope = Envelope("app@example.com", (recipient,), {}, ({},))
            message = NewMessage(
                id=new_id(clock.now()),
                project=PROJECT,
                created=clock.now(),
                raw=raw,
                envelope=envelope,
                summary=None,
                tags=(),
                status="queued",
                deliveries=deliveries_for(envelope),
                sends=1,
            )
            await store.add(message)

        step = 2000
        for first in range(0, count, step):
            await asyncio.gather(*(add(n) for n in range(first, min(first + step, count))))
    finally:
        await store.close()
    print(f"queued {count:,} messages in {time.monotonic() - began:.0f} s")


class SlowReceiver:
    """An SMTP server on loopback answering 250 to everything, each reply `delay` s late."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.delivered = 0
        self.connections = 0
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._session, LOOPBACK, 0, backlog=1024)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _reply(self, writer: asyncio.StreamWriter, text: bytes) -> None:
        await asyncio.sleep(self.delay)
        writer.write(text)
        await writer.drain()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._reply(writer, b"220 slow.example ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    await self._reply(writer, b"250-slow.example\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    await self._reply(writer, b"354 go on\r\n")
                    while await reader.readline() not in (b".\r\n", b""):
                        pass
                    await self._reply(writer, b"250 2.0.0 ok\r\n")
                    self.delivered += 1  # once the 250 is on its way
                elif verb == b"QUIT":
                    await self._reply(writer, b"221 bye\r\n")
                    break
                else:
                    await self._reply(writer, b"250 2.0.0 ok\r\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def queue_states(target: str) -> Counter[str]:
    from postroom.storage.engine import open_store

    store = open_store(target, writer_process=False)
    try:
        return Counter(e.status for e in store.queue.all_entries())
    finally:
        asyncio.run(store.close())


def anonymous(pid: int) -> int:
    """The anonymous part of a process's RSS (heap: caches, objects), from /proc."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_server(
    workdir: Path, receiver: SlowReceiver, seconds: float, database: list[str], label: str
) -> None:
    routes = f"slow.example=smtp+plain://{LOOPBACK}:{receiver.port}"
    extra = ["--routes", routes, "--delivery-allow-private", "--delivery", *database]
    before = receiver.delivered
    with served(workdir, *extra) as server, RssSampler(server.process.pid) as sampler:
        rest_main, rest_total = server.rss()
        deadline = time.monotonic() + seconds
        views = 0
        began = time.monotonic()
        while time.monotonic() < deadline:
            http_json(f"{server.base}/api/v2/projects/{PROJECT}/queue")
            views += 1
            if views % 6 == 0:  # every 30 s: the RSS as it is, and its anonymous part
                main_now, total_now = server.rss()
                print(
                    f"  {time.monotonic() - began:4.0f} s: RSS {mib(main_now)} main "
                    f"(anonymous {mib(anonymous(server.process.pid))}), {mib(total_now)} "
                    f"with the writer; {receiver.delivered - before:,} delivered",
                    flush=True,
                )
            time.sleep(5)
        end_main, end_total = server.rss()
    print(
        f"{label}: {seconds:.0f} s; RSS after start {mib(rest_main)} (with writer "
        f"{mib(rest_total)}), at the end {mib(end_main)} ({mib(end_total)}), PEAK "
        f"{mib(sampler.peak_main)} main, {mib(sampler.peak_total)} with the writer child; "
        f"{receiver.delivered - before:,} delivered to the slow receiver "
        f"({receiver.connections} connections so far); {views} queue views read"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--restart-seconds", type=float, default=30.0)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds before each reply")
    parser.add_argument("--database-url", default="", help="PostgreSQL (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="postroom-queue-memory-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "postroom-data"  # the directory served() gives the server
        target = args.database_url or str(data_dir)
        database = ["--database-url", args.database_url] if args.database_url else []
        asyncio.run(queue_messages(target, args.messages))
        receiver = SlowReceiver(args.delay)
        print(
            f"{datetime.now(UTC):%H:%M:%S} slow receiver on port {receiver.port}, "
            f"{args.delay} s a reply"
        )
        run_server(workdir, receiver, args.seconds, database, "first run")
        after_first = queue_states(target)
        run_server(workdir, receiver, args.restart_seconds, database, "after a restart")
        after_restart = queue_states(target)
        total = sum(after_restart.values())
        print(f"queue after the first run: {dict(after_first)}")
        print(f"queue after the restart:   {dict(after_restart)}")
        lost = args.messages - total
        extra = receiver.delivered - after_restart.get("delivered", 0)
        print(
            f"entries {total:,} of {args.messages:,} (lost: {lost}); the receiver got "
            f"{receiver.delivered:,} messages in all, {extra} more than the queue records as "
            "delivered (transactions cut by the stops, delivered again)"
        )
        return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
