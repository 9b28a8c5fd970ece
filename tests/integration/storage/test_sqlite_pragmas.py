"""The settings every SQLite connection of the store gets (storage/engine.py `_sqlite_engine`):
read connections map the database file (mmap_size), writers read it as before."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.engine import Engine

from postroom.storage import open_store
from postroom.storage.engine import (
    SQLITE_READ_CACHE_KIB,
    SQLITE_READ_MMAP_BYTES,
    SQLITE_WRITE_CACHE_KIB,
)


def pragmas(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: int(conn.exec_driver_sql(f"PRAGMA {name}").scalar_one())
            for name in ("mmap_size", "cache_size", "foreign_keys", "busy_timeout")
        }


def test_read_connections_map_the_file_and_writers_do_not(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        # Every pooled read connection, not only the first: two held at once.
        with store._read.connect() as first, store._read.connect() as second:
            for conn in (first, second):
                mapped = int(conn.exec_driver_sql("PRAGMA mmap_size").scalar_one())
                assert mapped == SQLITE_READ_MMAP_BYTES
        assert pragmas(store._read) == {
            "mmap_size": SQLITE_READ_MMAP_BYTES,
            "cache_size": -SQLITE_READ_CACHE_KIB,
            "foreign_keys": 1,
            "busy_timeout": 30_000,
        }
        assert pragmas(store._write) == {
            "mmap_size": 0,
            "cache_size": -SQLITE_WRITE_CACHE_KIB,
            "foreign_keys": 1,
            "busy_timeout": 30_000,
        }
    finally:
        asyncio.run(store.close())
