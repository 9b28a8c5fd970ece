"""Opening the store creates or upgrades the schema; re-opening changes nothing."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, text
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.storage import (
    SqlMessageStore,
    fulltext,
    migrate,
    open_store,
    resolve_target,
    sender_search,
    tag_array,
)
from postroom.storage.attempts import delivery_attempts
from postroom.storage.events import events
from postroom.storage.schema import (
    message_counts,
    message_raw,
    message_tags,
    messages,
    metadata,
)


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


MESSAGE_TABLES = {
    "messages",
    "message_raw",
    "message_tags",
    "message_counts",
    "events",
    "delivery_attempts",
}


def _message_tables_only(name: str | None, type_: str, parent_names: Any) -> bool:
    """Other stores' tables share the database and the MetaData; compare ours only."""
    if type_ == "table":
        return name in MESSAGE_TABLES
    # The full-text indexes are expression indexes that the Table cannot declare
    # (storage/fulltext.py); test_fulltext.py checks it. The sender index is SQLite's only
    # (storage/sender_search.py); test_sender_index_is_sqlites_only checks it. The tags'
    # array and its index are PostgreSQL's only (storage/tag_array.py);
    # test_tag_array_is_postgresqls_only checks them.
    if type_ == "column" and name == tag_array.COLUMN:
        return False
    return not (
        type_ == "index"
        and name
        in (fulltext.PG_INDEX, fulltext.PG_SHORT_INDEX, sender_search.INDEX, tag_array.INDEX)
    )


def _message_metadata() -> MetaData:
    ours = MetaData(naming_convention=metadata.naming_convention)
    for table in (messages, message_raw, message_tags, message_counts, events, delivery_attempts):
        table.to_metadata(ours)
    return ours


async def test_migrated_schema_matches_the_tables(store: SqlMessageStore, target: str) -> None:
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": _message_tables_only})
            diff: list[Any] = compare_metadata(context, _message_metadata())
            names = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert {*MESSAGE_TABLES, "alembic_version"} <= names


async def test_sender_index_is_sqlites_only(
    store: SqlMessageStore, target: str, backend: str
) -> None:
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("messages")}
    finally:
        engine.dispose()
    if backend == "sqlite":
        columns = ["project", "from_text", "created_us", "seq", "read"]
        assert indexes[sender_search.INDEX] == columns
    else:
        assert sender_search.INDEX not in indexes


async def test_tag_array_is_postgresqls_only(
    store: SqlMessageStore, target: str, backend: str
) -> None:
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("messages")}
            indexes = {i["name"] for i in inspect(conn).get_indexes("messages")}
    finally:
        engine.dispose()
    present = backend == "postgres"
    assert (tag_array.COLUMN in columns) is present
    assert (tag_array.INDEX in indexes) is present


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
