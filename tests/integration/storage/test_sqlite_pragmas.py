"""The settings every SQLite connection of the store gets (storage/engine.py `_sqlite_engine`),
on each pooled read connection and on the writers': their page cache sizes, foreign keys, the
busy timeout, and no memory-mapped reads (tried for issue 12: the server's first search got
slower; engine.py says why it is left at SQLite's default)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.engine import Connection

from postroom.storage import open_store
from postroom.storage.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_READ_CACHE_KIB,
    SQLITE_WRITE_CACHE_KIB,
)


def pragmas(conn: Connection) -> dict[str, int]:
    return {
        name: int(conn.exec_driver_sql(f"PRAGMA {name}").scalar_one())
        for name in ("mmap_size", "cache_size", "foreign_keys", "busy_timeout")
    }


def expected(cache_kib: int) -> dict[str, int]:
    return {
        "mmap_size": 0,
        "cache_size": -cache_kib,
        "foreign_keys": 1,
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
    }


def test_every_pooled_connection_gets_its_engines_settings(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        # Two connections held at once: the pool's second one is set up too, not only the first.
        with store._read.connect() as first, store._read.connect() as second:
            assert pragmas(first) == pragmas(second) == expected(SQLITE_READ_CACHE_KIB)
        # A writer's transaction starts with BEGIN IMMEDIATE: one writer at a time.
        with store._write.connect() as conn:
            assert pragmas(conn) == expected(SQLITE_WRITE_CACHE_KIB)
    finally:
        asyncio.run(store.close())
