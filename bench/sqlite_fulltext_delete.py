"""What deleting costs with SQLite's full-text index: delete-all of a project, timed.

Stores --messages messages of 2 KB of English (bench/sqlite_fulltext_write.py's `prose`
profile) in project `default` and --other more in project `other`, all indexed (the writer's
drain), then times `store.delete("default", None, None)` (the Mailpit API's
`DELETE /api/v1/messages`) or, with --project-delete, `delete_project("default")` (CPU and wall
time of the whole call), and checks that the index passes FTS5's integrity-check. With
--fulltext off the database has no index. Interleave on and off runs; storage/fulltext.py has
the figures.

    nice -n 10 .venv/bin/python bench/sqlite_fulltext_delete.py --fulltext off
    nice -n 10 .venv/bin/python bench/sqlite_fulltext_delete.py --fulltext on
    nice -n 10 .venv/bin/python bench/sqlite_fulltext_delete.py --fulltext on --other 20000
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import tempfile
import time

from sqlalchemy import text

from postroom.core.clock import SystemClock
from postroom.storage import fulltext, open_store
from postroom.storage.batch import BatchWriter, prepare
from postroom.storage.engine import set_sqlite_fulltext, writer_engine
from postroom.storage.platform_store import SqlPlatformStore
from sqlite_fulltext_write import PROSE_FILE, message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fulltext", choices=("on", "off"), default="on")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--other", type=int, default=0, help="messages of another project")
    parser.add_argument(
        "--project-delete", action="store_true", help="delete the project, not its messages"
    )
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="postroom-fts-delete-")
    try:
        url = f"sqlite:///{workdir}/postroom.db"
        asyncio.run(open_store(url, SystemClock(), writer_process=False).close())
        set_sqlite_fulltext(url, args.fulltext == "on")
        engine = writer_engine(url)
        writer = BatchWriter(engine)
        prose = PROSE_FILE.read_text()
        total = args.messages + args.other
        for first in range(0, total, 200):
            rows = []
            for n in range(first, min(first + 200, total)):
                m = message(n, "prose", prose)
                if n >= args.messages:
                    m = dataclasses.replace(m, project="other")
                rows.append(prepare(m))
            writer.write(rows)
        with engine.begin() as conn:
            fulltext.sqlite_drain(conn)
        engine.dispose()
        store = open_store(url, SystemClock(), writer_process=False)
        try:
            platform = SqlPlatformStore(store._read, store._write, owns_engines=False)
            cpu, wall = time.process_time(), time.perf_counter()
            if args.project_delete:
                platform.delete_project("default")
                deleted = args.messages
            else:
                deleted = len(store.delete("default", None, None))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            with store._write.begin() as conn:
                left = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
                if args.fulltext == "on":
                    table = fulltext.SQLITE_TABLE
                    conn.execute(
                        text(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 0)")
                    )
        finally:
            asyncio.run(store.close())
        print(
            f"fulltext {args.fulltext:3}  deleted {deleted:,} of {total:,} (left {left:,})  "
            f"wall {wall:.2f} s  CPU {cpu:.2f} s  ({cpu / max(deleted, 1) * 1000:.3f} ms/message)"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
