"""Group-commit throughput of the message store: N concurrent adders, ~2 KB messages.

Prints, per backend and concurrency: messages/s, transactions (batches), mean batch size.

    .venv/bin/python bench/storage_commit.py                       # SQLite and PostgreSQL
    .venv/bin/python bench/storage_commit.py --backend sqlite -c 1 -c 10 -c 100 -n 20000
    POSTROOM_BENCH_POSTGRES=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python ...
    .venv/bin/python bench/storage_commit.py --sends 1   # as submitted mail: counted sends

`--sends N` gives every message N sends to count toward its project's quota, written in the
same transaction (what the submission doors do); compare with the default 0 (captured mail).

`--live` makes every message a live project's: one delivery each, written as a queue entry and
a `send` event in the message's transaction. `--without-events` (with `--live`) leaves the
event rows out, to measure what the event log costs acceptance (a measurement switch only:
the server always writes them).

PostgreSQL runs in a scratch database created next to the one in the URL and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy.engine import make_url

from postroom.core.clock import SystemClock
from postroom.core.ids import new_id
from postroom.core.types import Address, Delivery, Envelope, NewMessage, Summary
from postroom.storage import open_store

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def make_messages(count: int, size: int, sends: int = 0, live: bool = False) -> list[NewMessage]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    body_line = b"The quick brown fox jumps over the lazy dog, 0123456789.\r\n"
    out = []
    for i in range(count):
        created = start + timedelta(milliseconds=i)
        header = (
            f"From: Sender {i} <sender{i}@example.com>\r\n"
            f"To: Recipient <rcpt{i % 50}@example.org>\r\n"
            f"Subject: Benchmark message {i}\r\n"
            f"Message-ID: <{i}.bench@example.com>\r\n\r\n"
        ).encode()
        body = body_line * max(1, (size - len(header)) // len(body_line))
        raw = header + body
        summary = Summary(
            from_=Address(f"Sender {i}", f"sender{i}@example.com"),
            to=(Address("Recipient", f"rcpt{i % 50}@example.org"),),
            cc=(),
            bcc=(),
            reply_to=(),
            subject=f"Benchmark message {i}",
            message_id=f"{i}.bench@example.com",
            date=created,
            snippet=body_line.decode()[:80],
            attachments=(),
            header_tags=(),
            search_text=body.decode()[:1000],
        )
        out.append(
            NewMessage(
                id=new_id(created),
                project="default",
                created=created,
                raw=raw,
                envelope=Envelope(f"sender{i}@example.com", (f"rcpt{i % 50}@example.org",)),
                summary=summary,
                tags=("bench",) if i % 10 == 0 else (),
                sends=sends,
                status="queued" if live else "captured",
                deliveries=(Delivery(f"rcpt{i % 50}@example.org", "example.org"),) if live else (),
            )
        )
    return out


async def run(
    target: str, messages: list[NewMessage], concurrency: int, pipeline: int, think: float
) -> None:
    store = await asyncio.to_thread(
        functools.partial(open_store, target, SystemClock(), pipeline=pipeline)
    )
    queue = iter(messages)

    async def adder() -> None:
        rng = random.Random(id(asyncio.current_task()))
        for message in queue:
            if think:  # the rest of an SMTP transaction: adders drift out of step
                await asyncio.sleep(rng.expovariate(1 / think))
            await store.add(message)

    started = time.perf_counter()
    await asyncio.gather(*(adder() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    stats = store.stats
    await store.close()
    rate = len(messages) / elapsed
    print(
        f"  concurrency {concurrency:>4}: {rate:>8.0f} msgs/s  {stats.batches:>6} batches  "
        f"mean batch {stats.messages / max(1, stats.batches):>6.1f}  max {stats.max_batch:>4}  "
        f"commit time {100 * stats.commit_seconds / elapsed:>3.0f}% of wall",
        flush=True,
    )


@contextmanager
def sqlite_target() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp:
        yield tmp


@contextmanager
def postgres_target(url: str) -> Iterator[str]:
    admin = make_url(url).set(drivername="postgresql")
    name = f"postroom_bench_{secrets.token_hex(4)}"
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("-c", "--concurrency", type=int, action="append")
    parser.add_argument("-n", "--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=2048, help="raw message size in bytes")
    parser.add_argument("--sends", type=int, default=0, help="quota sends per message")
    parser.add_argument("--live", action="store_true", help="one delivery per message")
    parser.add_argument(
        "--without-events", action="store_true", help="(measurement) leave send events out"
    )
    parser.add_argument("--postgres", default=os.environ.get("POSTROOM_BENCH_POSTGRES", DEFAULT_PG))
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument(
        "--pipeline", type=int, default=1, help="group-commit transactions in flight at once"
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean random pause of each adder between messages (0: back to back, in lockstep)",
    )
    args = parser.parse_args()
    if args.without_events:
        from postroom.storage import batch

        batch.send_events = lambda message: ()  # type: ignore[assignment]
    levels = args.concurrency or [1, 10, 100, 500]
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if args.uvloop:
        import uvloop

        uvloop.install()
    print(
        f"{args.messages} messages of ~{args.size} bytes, {os.cpu_count()} CPUs, "
        f"pipeline {args.pipeline}, think {args.think_ms} ms, {args.sends} sends each, "
        f"{'live' if args.live else 'captured'}"
        f"{' without send events' if args.without_events else ''}"
    )
    for backend in backends:
        print(backend)
        for level in levels:
            # A fresh database per level, and fewer messages when there is one adder at a time.
            count = args.messages if level > 1 else max(200, args.messages // 20)
            messages = make_messages(count, args.size, args.sends, args.live)
            try:
                target_cm = (
                    sqlite_target() if backend == "sqlite" else postgres_target(args.postgres)
                )
                with target_cm as target:
                    asyncio.run(run(target, messages, level, args.pipeline, args.think_ms / 1000))
            except (OSError, psycopg.OperationalError) as exc:
                print(f"  {backend} unavailable: {exc}", file=sys.stderr)
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
