"""Search latency at a million messages (issue 12, "Search at a million"), SQLite and PostgreSQL.

Seeds N messages (default 1,000,000) by writing `messages` and `message_tags` rows directly
(the store's own row encoding, codec.message_row; no raw bodies: listing and search never read
them), through the migrated schema, so the full-text index is maintained by the same
statements as in production. Then, for one query per operator, times

- page: `SqlMessageStore.page`, the first page (50 rows) with the project's counts and whether
  more matches follow, without counting the matches: what `GET /api/v1/search?counts=skip`
  and the web UI's first request cost (cold = first run, warm = median of --runs);
- count: `SqlMessageStore.list` with limit 0, the exact `messages_count`/`messages_unread`
  (one run; the UI's second request, and what the default API answer adds to the page).

    nice -n 10 .venv/bin/python bench/search_million.py --backend sqlite --data-dir /tmp/pr1m
    nice -n 10 .venv/bin/python bench/search_million.py --backend postgres
    .venv/bin/python bench/search_million.py --backend sqlite --data-dir /tmp/pr1m --no-seed
    .venv/bin/python bench/search_million.py --backend postgres --pg-database pr1m --no-seed
    nice -n 10 .venv/bin/python bench/search_million.py --data-dir /tmp/pr1m-fts --sqlite-fulltext

SQLite: `--sqlite-fulltext` turns its full-text index on first (`postroom fulltext on`), so
seeding fills it through its triggers (rows already stored are indexed when it is made).
PostgreSQL answers terms of 1-2 characters from its index of them when the database has it
(`postroom fulltext on --database-url ...`, off by default).

SQLite goes to --data-dir (kept for reuse; delete it afterwards). PostgreSQL gets a database
created on 127.0.0.1:5432 for the run (`postroom_bench_<hex>`) and dropped at the end unless
--keep-pg is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from postroom.core.clock import SystemClock  # noqa: E402
from postroom.core.ids import new_id  # noqa: E402
from postroom.core.search import parse_query  # noqa: E402
from postroom.core.types import (  # noqa: E402
    Address,
    AttachmentInfo,
    Envelope,
    NewMessage,
    Summary,
)
from postroom.storage import codec, fulltext, open_store  # noqa: E402
from postroom.storage.batch import order_keys  # noqa: E402
from postroom.storage.engine import set_sqlite_fulltext, writer_engine  # noqa: E402
from postroom.storage.schema import message_tags, messages  # noqa: E402
from postroom.storage.tag_counts import tag_counts  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
BASE = datetime(2025, 1, 1, tzinfo=UTC)
WORDS = [
    "".join("bcdfghjklmnprstvz"[(w * 7 + i * 13) % 17] + "aeiou"[(w + i * 3) % 5] for i in range(3))
    for w in range(3000)
]
SUBJECTS = (
    "Order #{n} confirmation",
    "Weekly report {n}",
    "Password reset for user{u}",
    "Invoice {n} from shop{s}",
)
OLD_SPAN = 200_000
PDF = AttachmentInfo("2", "invoice.pdf", "application/pdf", "", 48_000, False)

# label, query (parsed as the API parses it). One per operator of the bar, plus harder cases.
QUERIES = [
    ("inbox (no query)", ""),
    ("free text, common (25%)", "order"),
    ("free text, rare (1 hit)", "ref-0500001"),
    ("free text, word (~1%)", WORDS[17]),
    ("free text, absent", "zzqx-nothing"),
    ("free text, two words", f"weekly {WORDS[5]}"),
    ("free text, 2 chars absent", "qz"),
    ("free text, 1 char absent", "q"),
    ("free text, 2 chars common", "or"),
    ("free text, 1 char common", "e"),
    ("2 chars + rare word", "or ref-0500001"),
    ("from: (1/2000)", "from:sender42@"),
    ("from: domain (2%)", "from:domain7.example"),
    ("subject: (25%)", "subject:invoice"),
    ("subject: rare", "subject:user77777"),
    ("to: rare (10 hits)", "to:user77777@"),
    ("message-id: (1 hit)", "message-id:500001.bench@"),
    ("tag: (10%)", "tag:bench"),
    ("tag: rare (0.01%)", "tag:vip"),
    ("-tag: (90%)", "-tag:bench"),
    ("-tag: rare (99.99%)", "-tag:vip"),
    ("is:tagged (10%)", "is:tagged"),
    ("-is:tagged (untagged, 90%)", "-is:tagged"),
    ("is:unread (all)", "is:unread"),
    ("tag: + is:unread", "tag:bench is:unread"),
    ("tag: old (10%, oldest 20%)", "tag:archive"),
    ("tag: old + is:unread", "tag:archive is:unread"),
    ("tag: old + subject: (half)", "tag:archive subject:order"),
    ("tag: old + subject: rare", "tag:archive subject:user1234"),
    ("tag: old + -tag: common", "tag:archive -tag:bench"),
    ("tag: old + subject: (none in tag)", "tag:archive subject:invoice"),
    ("tag: old + free text absent", "tag:archive zzqx-nothing"),
    ("tag: old + 2 chars absent", "tag:archive qz"),
    ("tag: old + from: rare", "tag:archive from:sender42@"),
    ("tag: old + from: domain (none in tag)", "tag:archive from:domain7.example"),
    ("tag: old + is:read (none)", "tag:archive is:read"),
    ("tag: old + after: (none)", "tag:archive after:2025-01-04"),
    ("tag: old + before: (its oldest)", "tag:archive before:2025-01-02"),
    ("tag: old + has:attachment", "tag:archive has:attachment"),
    ("is:tagged + is:read (none)", "is:tagged is:read"),
    ("has:attachment (5%)", "has:attachment"),
    ("before: (oldest 10%)", "before:2025-01-02"),
    ("before: (all but newest)", "before:2025-01-13"),
    ("after: + free text", "after:2025-01-12 order"),
    ("-subject: (negated)", "-subject:order"),
]


def message(n: int) -> NewMessage:
    k = (n * 7919) % 2000
    sender = Address(f"Sender {k}", f"sender{k}@domain{k % 50}.example")
    subject = SUBJECTS[n % 4].format(n=n, u=n % 100_000, s=n % 300)
    words = " ".join(WORDS[(n * 31 + i * 977) % len(WORDS)] for i in range(28))
    body = f"hello user{n % 100_000}, {words} ref-{n:07d}"
    created = BASE + timedelta(seconds=n)
    to = (Address("", f"user{n % 100_000}@example.com"),)
    mid = f"{n}.bench@postroom.test"
    summary = Summary(
        from_=sender,
        to=to,
        cc=(),
        bcc=(),
        reply_to=(),
        subject=subject,
        message_id=mid,
        date=created,
        snippet=body[:100],
        attachments=(PDF,) if n % 20 == 0 else (),
        header_tags=(),
        search_text=body.lower(),
    )
    return NewMessage(
        id=new_id(created),
        project="default",
        created=created,
        raw=b"x" * 900,
        envelope=Envelope(mail_from=sender.address, recipients=(to[0].address,)),
        summary=summary,
        tags=(("bench",) if n % 10 == 0 else ())
        + (("vip",) if n % 10_000 == 3 else ())
        + (("archive",) if is_archived(n) else ()),
    )


def is_archived(n: int) -> bool:
    """Tag `archive`: every other message of the oldest OLD_SPAN, a common tag (100,000 of a
    million) on old messages only, which a walk of the newest messages does not reach."""
    return n < OLD_SPAN and n % 2 == 0


def add_old_tag(conn: Connection) -> int:
    """Tag `archive` the messages `is_archived` names, in a database seeded before that tag
    existed (through the tag counters' triggers, as any tag write); the rows tagged."""
    base = codec.to_micros(BASE)
    second = 1_000_000
    found = conn.execute(
        select(messages.c.id, messages.c.created_us, messages.c.seq).where(
            messages.c.project == "default",
            messages.c.created_us < base + OLD_SPAN * second,
        )
    ).all()
    rows = [
        {
            "message_id": i,
            "project": "default",
            "tag": "archive",
            "tag_lc": "archive",
            "created_us": c,
            "seq": q,
        }
        for i, c, q in found
        if (c - base) % second == 0 and is_archived((c - base) // second)
    ]
    for first in range(0, len(rows), 10_000):
        conn.execute(insert(message_tags), rows[first : first + 10_000])
    return len(rows)


@contextlib.contextmanager
def waiting(target: str, count: int) -> Iterator[None]:
    """The newest `count` indexed messages taken out of SQLite's full-text index and put in its
    waiting list, as a burst leaves them (storage/fulltext.py), for the duration; then indexed
    again."""
    engine = writer_engine(target)
    table, pending = fulltext.SQLITE_TABLE, fulltext.PENDING_TABLE
    newest = f"SELECT seq FROM messages WHERE seq NOT IN (SELECT seq FROM {pending})"
    try:
        with engine.begin() as conn:
            if count and fulltext.sqlite_present(conn):
                conn.exec_driver_sql(
                    f"INSERT INTO {table}({table}, rowid, body) SELECT 'delete', seq, "
                    f"{fulltext._sqlite_text('messages')} FROM messages WHERE seq IN "
                    f"({newest} ORDER BY seq DESC LIMIT ?)",
                    (count,),
                )
                conn.exec_driver_sql(
                    f"INSERT INTO {pending}(seq) {newest} ORDER BY seq DESC LIMIT ?", (count,)
                )
                waited = conn.exec_driver_sql(f"SELECT count(*) FROM {pending}").scalar_one()
                print(f"  {waited:,} messages waiting to be indexed")
        yield
    finally:
        with engine.begin() as conn:
            fulltext.sqlite_drain(conn)
        engine.dispose()


def seed(target: str, count: int, batch: int) -> None:
    asyncio.run(open_store(target, SystemClock()).close())  # creates or migrates the schema
    engine = writer_engine(target)
    try:
        with engine.connect() as conn:
            existing = conn.exec_driver_sql("SELECT count(*) FROM messages").scalar_one()
        started = time.perf_counter()
        for first in range(int(existing), count, batch):
            chunk = [message(n) for n in range(first, min(count, first + batch))]
            rows = [
                dict(zip(codec.MESSAGE_COLUMNS, codec.message_row(m), strict=True)) for m in chunk
            ]
            with engine.begin() as conn:
                conn.execute(insert(messages), rows)
                # The tag rows hold their message's order key (storage/schema.py).
                keys = order_keys(conn, [m.id for m in chunk if m.tags])
                tags = [
                    {"message_id": m.id, "project": m.project, "tag": t, "tag_lc": t}
                    | {"created_us": keys[m.id][0], "seq": keys[m.id][1]}
                    for m in chunk
                    for t in m.tags
                ]
                if tags:
                    conn.execute(insert(message_tags), tags)
                if engine.dialect.name == "sqlite":
                    fulltext.sqlite_drain(conn)  # what the writer does (storage/batch.py)
            done = first + len(chunk)
            if engine.dialect.name == "postgresql" and (done // batch) % 10 == 1:
                # The count triggers' plans are made once per connection, from the tables'
                # statistics; without autovacuum (this machine's PostgreSQL runs without it)
                # they stay those of an empty table, a scan of `messages` per tag statement,
                # and seeding slowed from 1,400 to 150 messages/s by the 150,000th. ANALYZE
                # makes them planned again.
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql("ANALYZE messages, message_tags")
            rate = (done - existing) / (time.perf_counter() - started)
            print(f"\r  seeded {done:,} / {count:,} ({rate:,.0f}/s)", end="", flush=True)
        print()
        with engine.begin() as conn:
            archived = conn.execute(
                select(func.count()).where(
                    message_tags.c.project == "default", message_tags.c.tag_lc == "archive"
                )
            ).scalar_one()
            if not archived:  # seeded before the tag `archive` was
                print(f"  tagged {add_old_tag(conn):,} old messages `archive`")
        # PostgreSQL: VACUUM as well. psycopg's executemany runs one INSERT per row, so the
        # statement triggers of message_counts wrote a delta row per message, folded away
        # by the first read: a million dead rows that autovacuum removes some time later,
        # and until then the project's counts scan them (35-80 ms added to every page here),
        # which is not what a server that inserts with COPY (storage/batch.py) sees.
        command = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(command)
    finally:
        engine.dispose()


def timings(
    target: str, runs: int, count: bool, only: list[str] | None = None
) -> Iterator[tuple[str, str, float, float, float | None, int | None]]:
    """(label, query, page cold ms, page warm ms, count ms, matches) per query (those whose
    text contains one of `only`, when given)."""
    store = open_store(target, SystemClock())
    now = BASE + timedelta(days=30)
    try:
        for label, text in QUERIES:
            if only and not any(part in text for part in only):
                continue
            query = parse_query(text, now)
            samples = []
            for _ in range(runs + 1):
                t0 = time.perf_counter()
                store.page("default", query, 0, 50)
                samples.append((time.perf_counter() - t0) * 1000)
            counted_ms: float | None = None
            matched: int | None = None
            if count:
                t0 = time.perf_counter()
                matched = store.list("default", query, 0, 0).matched
                counted_ms = (time.perf_counter() - t0) * 1000
            yield label, text, samples[0], statistics.median(samples[1:]), counted_ms, matched
    finally:
        asyncio.run(store.close())


def tag_count_timing(target: str, runs: int) -> tuple[float, float, int]:
    """`GET /api/v1/tag-counts`'s storage read (storage/tag_counts.py): cold ms, warm ms
    (median of `runs`), tags found."""
    store = open_store(target, SystemClock())
    try:
        samples, found = [], 0
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            found = len(tag_counts(store, "default", 200))
            samples.append((time.perf_counter() - t0) * 1000)
        return samples[0], statistics.median(samples[1:]), found
    finally:
        asyncio.run(store.close())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/postroom-search-1m"))
    parser.add_argument("--pg-database", help="reuse this PostgreSQL database (not dropped)")
    parser.add_argument("--keep-pg", action="store_true", help="do not drop the database")
    parser.add_argument("--no-seed", action="store_true", help="time the stored rows only")
    parser.add_argument("--no-count", action="store_true", help="time the pages only")
    parser.add_argument(
        "--sqlite-fulltext", action="store_true", help="SQLite: turn the full-text index on first"
    )
    parser.add_argument(
        "--waiting",
        type=int,
        default=0,
        help="SQLite: time the searches with the newest N messages waiting to be indexed, as "
        "the writer process leaves a burst (storage/fulltext.py WAITING_MAX); indexed again "
        "at the end",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="time only the queries whose text contains TEXT (repeatable; e.g. --only tag)",
    )
    args = parser.parse_args()

    drop = None
    if args.backend == "sqlite":
        target = str(args.data_dir)
    else:
        name = args.pg_database or f"postroom_bench_{secrets.token_hex(4)}"
        if not args.pg_database:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            drop = None if args.keep_pg else name
        target = make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=name)
        target = target.render_as_string(hide_password=False)
    print(f"{args.backend}: {target}")
    try:
        if args.sqlite_fulltext and args.backend == "sqlite":
            t0 = time.perf_counter()
            set_sqlite_fulltext(target, True)
            print(f"  full-text index on ({time.perf_counter() - t0:.0f} s)")
        if not args.no_seed:
            t0 = time.perf_counter()
            seed(target, args.messages, args.batch)
            print(f"  seeding took {time.perf_counter() - t0:.0f} s")
        burst = args.backend == "sqlite" and args.waiting
        with waiting(target, args.waiting) if burst else contextlib.nullcontext():
            runs = args.runs
            print(f"\nfirst page (50 rows, no match count), ms: cold, warm = median of {runs};")
            print("count = the exact match count, one run (ms)")
            print(
                f"  {'query':28s} {'text':26s} {'cold':>8s} {'warm':>8s} {'count':>8s} "
                f"{'matched':>9s}"
            )
            for label, text, cold, warm, counted, matched in timings(
                target, args.runs, not args.no_count, args.only
            ):
                flag = "" if warm < 100 else "  page > 100 ms"
                count_ms = "-" if counted is None else f"{counted:.1f}"
                found = "-" if matched is None else f"{matched:,d}"
                print(
                    f"  {label:28s} {text[:26]:26s} {cold:8.1f} {warm:8.1f} {count_ms:>8s} "
                    f"{found:>9s}{flag}"
                )
            cold, warm, found = tag_count_timing(target, args.runs)
            print(
                f"  {'tag counts (sidebar)':28s} {'':26s} {cold:8.1f} {warm:8.1f} "
                f"{'-':>8s} {found:>9,d}"
            )
    finally:
        if drop:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
            print(f"dropped database {drop}")


if __name__ == "__main__":
    main()
