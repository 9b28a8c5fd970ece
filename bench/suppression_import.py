"""How long importing (and exporting) a 100,000-row suppression CSV takes.

    .venv/bin/python bench/suppression_import.py [--rows N] [--database-url URL]

Without --database-url it uses SQLite in a temporary data directory. Prints the seconds of
the import (parse, check and upsert, one transaction) and of the export.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from postroom.core.clock import SystemClock
from postroom.storage.engine import open_store
from postroom.suppression.service import SuppressionList


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    lines = ["address,reason,detail\n"] + [
        f"user{i}@example{i % 97}.net,{'bounce' if i % 3 else 'unsubscribe'},row {i}\n"
        for i in range(args.rows)
    ]
    with tempfile.TemporaryDirectory() as directory:
        store = open_store(args.database_url or directory, SystemClock())
        try:
            suppressions = SuppressionList(store.suppressions, SystemClock())
            started = time.perf_counter()
            count = suppressions.import_csv("bench", lines)
            imported = time.perf_counter() - started
            started = time.perf_counter()
            exported = sum(1 for _ in suppressions.export_csv("bench")) - 1
            export_time = time.perf_counter() - started
            started = time.perf_counter()
            again = suppressions.import_csv("bench", lines)  # every row an update now
            reimported = time.perf_counter() - started
        finally:
            asyncio.run(store.close())
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"{backend}: imported {count} rows in {imported:.2f} s ({count / imported:,.0f} rows/s)")
    print(f"{backend}: re-imported {again} rows (all updates) in {reimported:.2f} s")
    print(f"{backend}: exported {exported} rows in {export_time:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
