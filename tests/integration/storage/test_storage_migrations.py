"""Opening the store creates or upgrades the schema; re-opening changes nothing."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.storage import SqlMessageStore, migrate, open_store, resolve_target
from postroom.storage.schema import metadata


def _revision(target: str) -> str | None:
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            return migrate.current_revision(conn)
    finally:
        engine.dispose()


async def test_reopening_is_idempotent(target: str, clock: FakeClock) -> None:
    first = open_store(target, clock)
    message = make_message(clock)
    await first.add(message)
    await first.close()
    assert _revision(target) == migrate.head_revision()
    for _ in range(2):
        again = open_store(target, clock)
        try:
            assert again.get("default", message.id).id == message.id
        finally:
            await again.close()
    assert _revision(target) == migrate.head_revision()


async def test_migrated_schema_matches_the_tables(store: SqlMessageStore, target: str) -> None:
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            diff: list[Any] = compare_metadata(MigrationContext.configure(conn), metadata)
            names = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert {"messages", "message_raw", "message_tags", "alembic_version"} <= names


async def test_sqlite_connections_are_durable(store: SqlMessageStore, backend: str) -> None:
    if backend != "sqlite":
        with store._write.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        return
    for engine in (store._write, store._read):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 1000
            conn.execute(text("SELECT 1"))
