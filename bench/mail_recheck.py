"""What the submission door's check at MAIL costs in the store (issue 9 item 5).

At every MAIL the door reads the platform's change counter (`PlatformStore.generation`) and,
only when it moved, the session's credential and its project
(`smtp_credential_with_project`), which it used to read every time. This times both reads on
a fresh store (SQLite in a temporary directory, or a database it creates on the PostgreSQL
server --postgres names and drops afterwards), one thread, after a warm-up, and prints
microseconds per call (median and p90 of --rounds rounds of --calls).

    .venv/bin/python bench/mail_recheck.py [--calls 2000] [--rounds 7]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from postroom.core.platform import Project, SmtpCredential
from postroom.storage.engine import open_platform_store


def per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL (any database)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="postroom-mail-recheck-"))
    database = f"postroom_mail_recheck_{time.time_ns()}"
    server = create_engine(args.postgres, isolation_level="AUTOCOMMIT") if args.postgres else None
    target = str(workdir)
    if server is not None:
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        target = make_url(args.postgres).set(database=database).render_as_string(False)
    store = open_platform_store(target)
    try:
        now = datetime.now(UTC)
        store.create_project(Project("bench", "Bench", "live", now))
        store.add_smtp_credential(SmtpCredential("c1", "bench", "bench", "0" * 64, (), now))
        reads: dict[str, Callable[[], object]] = {
            "credential + project (before)": lambda: store.smtp_credential_with_project("bench"),
            "change counter (after)": store.generation,
        }
        for read in reads.values():
            per_call(read, 200)  # warm-up: pool, statement caches
        results: dict[str, list[float]] = {name: [] for name in reads}
        for _ in range(args.rounds):
            for name, read in reads.items():  # interleaved
                results[name].append(per_call(read, args.calls))
        backend = "PostgreSQL" if server is not None else "SQLite"
        print(f"store reads at MAIL, {backend}, {args.rounds} rounds of {args.calls} calls:")
        for name, values in results.items():
            values.sort()
            p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
            print(f"  {name:32} median {statistics.median(values):7.1f} us  p90 {p90:7.1f} us")
        return 0
    finally:
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)
        if server is not None:
            with server.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
            server.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
