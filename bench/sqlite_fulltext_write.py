"""What SQLite's full-text index costs the writer: the store's BatchWriter alone, CPU per message.

Stores --stored messages, then times --messages more written in transactions of --batch (the
capture door's group commits hold ~6 under bench/smtp_acceptance.py's 20 sessions), with the
index (`--fulltext on`, what a new database has) or without it (`off`). `--profile smtp`:
smtp-source's messages (bench/smtp_acceptance.py: 2 KB of `X` lines, short Message-ID, fixed
addresses); `random-ids`: the same body with varied addresses and subjects and a Message-ID of
24 random hex digits; `prose`: those headers and 2 KB of English (the GPL's text, from
varying offsets), ~800 distinct trigrams a message. Interleave on and off runs;
storage/fulltext.py has the figures.

    nice -n 10 .venv/bin/python bench/sqlite_fulltext_write.py --fulltext off --batch 6
    nice -n 10 .venv/bin/python bench/sqlite_fulltext_write.py --fulltext on --batch 6
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from postroom.core.clock import SystemClock
from postroom.core.ids import new_id
from postroom.core.types import Address, Envelope, NewMessage, Summary
from postroom.storage import open_store
from postroom.storage.batch import BatchWriter, prepare
from postroom.storage.engine import set_sqlite_fulltext, writer_engine

BODY = " ".join(f"{d}" + "x" * 78 for d in (list(range(1, 10)) * 3)[:25])[:2023]
PROSE_FILE = Path("/usr/share/common-licenses/GPL-3")  # English prose, on every Debian


def message(n: int, profile: str, prose: str = "") -> NewMessage:
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=n)
    body = BODY
    if profile == "prose":  # 2 KB of English from a varying offset
        start = (n * 997) % (len(prose) - 2100)
        body = " ".join(prose[start : start + 2048].split())
    if profile == "smtp":
        sender, to, subject = "bench@example.com", "sink@example.com", ""
        mid = f"346b.{n:04x}.00b4@vm"
    else:
        k = (n * 7919) % 2000
        sender, to = f"sender{k}@domain{k % 50}.example", f"user{n % 100_000}@example.com"
        subject, mid = f"Order #{n} confirmation", f"<{os.urandom(12).hex()}@mail.example.com>"
    summary = Summary(
        from_=Address("", sender),
        to=(Address("", to),),
        cc=(),
        bcc=(),
        reply_to=(),
        subject=subject,
        message_id=mid,
        date=created,
        snippet=body[:100],
        attachments=(),
        header_tags=(),
        search_text=body.lower(),
    )
    return NewMessage(
        id=new_id(created),
        project="default",
        created=created,
        raw=b"x" * 2100,
        envelope=Envelope(mail_from=sender, recipients=(to,)),
        summary=summary,
        tags=(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fulltext", choices=("on", "off"), default="on")
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--stored", type=int, default=20_000)
    parser.add_argument("--profile", choices=("smtp", "random-ids", "prose"), default="smtp")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="postroom-fts-write-")
    try:
        url = f"sqlite:///{workdir}/postroom.db"
        asyncio.run(open_store(url, SystemClock(), writer_process=False).close())
        set_sqlite_fulltext(url, args.fulltext == "on")
        engine = writer_engine(url)
        writer = BatchWriter(engine)
        total = args.stored + args.messages
        prose = PROSE_FILE.read_text() if args.profile == "prose" else ""
        rows = [prepare(message(n, args.profile, prose)) for n in range(total)]
        for first in range(0, args.stored, 100):
            writer.write(rows[first : min(first + 100, args.stored)])
        cpu, wall = time.process_time(), time.perf_counter()
        for first in range(args.stored, total, args.batch):
            failed = [o for o in writer.write(rows[first : min(first + args.batch, total)]) if o]
            if failed:
                raise SystemExit(f"write failed: {failed[0]}")
        cpu = (time.process_time() - cpu) / args.messages * 1000
        wall = (time.perf_counter() - wall) / args.messages * 1000
        engine.dispose()
        print(
            f"fulltext {args.fulltext:3}  batch {args.batch:3}  {args.profile:10}  "
            f"CPU {cpu:.3f} ms/message  wall {wall:.3f} ms/message"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
