"""Open the message store: resolve the target, build engines, migrate, hand back the store.

SQLite (the embedded default) lives in `<data_dir>/postroom.db`, in WAL mode with
`synchronous=FULL` (every COMMIT fsyncs the WAL), foreign keys on and a busy timeout.
Write transactions start with `BEGIN IMMEDIATE` so writers queue on the busy timeout instead
of failing a read-to-write upgrade; read transactions start with a deferred `BEGIN`, which
gives each read a consistent snapshot alongside the writer.

PostgreSQL is selected by a `postgresql://`, `postgres://` or `postgresql+psycopg://` URL
(the first two are rewritten to the psycopg 3 driver). Reads run at REPEATABLE READ so the
counts and the page of one listing agree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from postroom.core.clock import Clock, SystemClock
from postroom.core.errors import ConfigError, StorageError
from postroom.core.ports import Completer
from postroom.storage import fulltext, migrate
from postroom.storage.platform_store import SqlPlatformStore
from postroom.storage.private import private_dir, private_file, warn_if_loose
from postroom.storage.store import SqlMessageStore
from postroom.storage.writer_process import ProcessBatchWriter

DB_FILENAME = "postroom.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_POOL_SIZE = 8
WRITE_POOL_SIZE = 2
# Page cache per SQLite connection, KiB. Every pooled connection keeps its own cache, and a
# server holds a dozen or more (readers, writers, the platform store's): at 16 MB each, reading
# a 100,000-entry queue grew the process by ~150 MB (bench/queue_memory.py). Reads are served
# from the OS page cache when SQLite's misses, so readers keep SQLite's default 2 MB; writers,
# which walk the indexes they update on every commit, a little more.
SQLITE_READ_CACHE_KIB = 2000
SQLITE_WRITE_CACHE_KIB = 8000
# No PRAGMA mmap_size (SQLite's default, 0: pages are read() into each connection's cache).
# Tried (issue 12, first search pages at a million messages): read connections mapping the
# first ~2 GiB of the file (0x7fff0000, SQLite's ceiling on Linux). In a fresh process per
# query (bench/search_million.py's million, 6 interleaved rounds at load 1.5-6, CPU medians,
# first run / later runs) `from:sender42@` went 30/18 -> 32/15 ms, `subject:user77777` 29/18
# -> 27/16, the other three of that bench's slow first pages unchanged: later runs 2-3 ms
# faster, the first the same. But the server's first search got slower: `postroom serve`
# started afresh per query, the query sent over HTTP 6 s later, 4 interleaved rounds each
# (the code before, or this one with the mapping set to 0, against the mapping; load
# 0.5-2.8): `from:sender42@` 35-39 ms without the mapping, 74-137 with it;
# `subject:user77777` 34-46 against 60-125; `tag:archive subject:user12` 56-65 against 78-83.
# Why was not found (a mapped page faults in once per connection, and such faults may cost
# more in the server's many-threaded process than in the bench's: not measured).

_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class StorageSettings(Protocol):
    """What the store needs from the application config (postroom.config.Config fits)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def database_url(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Target:
    url: URL
    sqlite_path: Path | None  # the database file, SQLite only
    data_dir: Path | None = None  # the data directory holding it, when one was given

    def private_paths(self) -> list[Path]:
        """The data directory and the database files that must be private (0700/0600)."""
        if self.sqlite_path is None:
            return []
        db = self.sqlite_path
        files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        return [self.data_dir, *files] if self.data_dir is not None else files


def resolve_target(target: StorageSettings | str | os.PathLike[str]) -> Target:
    """The SQLAlchemy URL for a settings object, a URL or a data directory."""
    if isinstance(target, str | os.PathLike):
        spec = os.fspath(target)
    elif target.database_url:
        spec = target.database_url
    else:
        spec = os.fspath(target.data_dir)
    if not _URL_SCHEME.match(spec) and not spec.startswith("sqlite:"):
        path = Path(spec) / DB_FILENAME
        return Target(URL.create("sqlite", database=str(path)), path, Path(spec))
    try:
        url = make_url(spec)
    except ArgumentError as exc:
        raise ConfigError(f"database_url: cannot parse {spec!r}: {exc}") from exc
    driver = url.drivername.lower()
    if driver in ("postgres", "postgresql", "postgresql+psycopg"):
        return Target(url.set(drivername="postgresql+psycopg"), None)
    if driver in ("sqlite", "sqlite+pysqlite"):
        if not url.database or url.database == ":memory:":
            raise ConfigError(
                "database_url: an in-memory SQLite database is not durable; give a file path"
            )
        return Target(url.set(drivername="sqlite+pysqlite"), Path(url.database))
    raise ConfigError(
        f"database_url: unsupported database {url.drivername!r}; "
        "use postgresql://user@host/db or a data directory for SQLite"
    )


def _sqlite_engine(url: URL, *, immediate: bool, pool_size: int) -> Engine:
    cache_kib = SQLITE_WRITE_CACHE_KIB if immediate else SQLITE_READ_CACHE_KIB
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=pool_size,
        max_overflow=pool_size * 2,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (below) emit BEGIN instead of the sqlite3 module's own logic.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA cache_size = -{cache_kib}")
        finally:
            cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin)

    return engine


def _postgres_engines(url: URL) -> tuple[Engine, Engine]:
    engine = create_engine(
        url,
        pool_size=READ_POOL_SIZE,
        max_overflow=READ_POOL_SIZE,
        # Connections die with a server restart or pg_terminate_backend; test before use.
        pool_pre_ping=True,
        connect_args={"application_name": "postroom"},
    )
    reader = engine.execution_options(isolation_level="REPEATABLE READ")
    return reader, engine


def writer_engine(url: str) -> Engine:
    """A one-connection engine for the writer process (`url` from `open_store`)."""
    resolved = resolve_target(url)
    if resolved.sqlite_path is not None:
        return _sqlite_engine(resolved.url, immediate=True, pool_size=1)
    return create_engine(resolved.url, pool_size=1, connect_args={"application_name": "postroom"})


def _open_engines(
    target: StorageSettings | str | os.PathLike[str], read_pool: int
) -> tuple[Target, Engine, Engine]:
    """Reader and writer engines for `target`, with the schema migrated to the newest version."""
    resolved = resolve_target(target)
    if resolved.sqlite_path is not None:
        try:
            if resolved.data_dir is not None:
                private_dir(resolved.data_dir)
            else:
                resolved.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            private_file(resolved.sqlite_path)
        except OSError as exc:
            raise StorageError(f"cannot create the data directory: {exc}") from exc
        writer = _sqlite_engine(resolved.url, immediate=True, pool_size=WRITE_POOL_SIZE)
        reader = _sqlite_engine(resolved.url, immediate=False, pool_size=read_pool)
    else:
        reader, writer = _postgres_engines(resolved.url)
    try:
        with writer.begin() as connection:
            migrate.upgrade(connection)
    except SQLAlchemyError as exc:
        reader.dispose()
        writer.dispose()
        raise StorageError(f"cannot open the database: {exc}") from exc
    return resolved, reader, writer


def open_store(
    target: StorageSettings | str | os.PathLike[str],
    clock: Clock | None = None,
    *,
    max_batch: int = 1000,
    pipeline: int = 1,
    writer_process: bool = False,
    complete: Completer | None = None,
) -> SqlMessageStore:
    """Open (creating or upgrading the schema) the store for `target`.

    `target` is the application config (its `database_url`, else its `data_dir`), a database
    URL (`postgresql://...`, `sqlite:///file`) or a data directory for SQLite. Blocking: call it
    from a worker thread in async code. Raises ConfigError or StorageError.

    `max_batch` caps the messages of one group-commit transaction; `pipeline` is how many such
    transactions may be in flight at once (one being prepared while another commits).
    `writer_process` has a child process write those transactions (see writer_process.py);
    it is started before this returns. `complete` completes messages added without their
    summary (see NewMessage), where the batch is written.

    A data directory and database file it creates are private (0700, 0600); existing ones
    that group or others may read are named in a warning.
    """
    resolved, reader, writer = _open_engines(target, READ_POOL_SIZE)
    warn_if_loose(resolved.private_paths())
    child = None
    if writer_process:
        child = ProcessBatchWriter(resolved.url.render_as_string(hide_password=False), complete)
        try:
            child.start()
        except StorageError:
            reader.dispose()
            writer.dispose()
            raise
    return SqlMessageStore(
        reader,
        writer,
        clock=clock or SystemClock(),
        sqlite_path=resolved.sqlite_path,
        max_batch=max_batch,
        pipeline=pipeline,
        writer_process=child,
        complete=complete,
    )


def set_sqlite_fulltext(target: StorageSettings | str | os.PathLike[str], on: bool | None) -> bool:
    """Make (`on`) or drop (not `on`) SQLite's full-text index of messages (storage/fulltext.py),
    in one transaction (making it indexes every stored message: the server's writer waits
    meanwhile); None changes nothing. Returns whether the index is there now. Raises
    ConfigError on PostgreSQL, whose index is always kept, and StorageError."""
    resolved, reader, writer = _open_engines(target, 1)
    reader.dispose()
    try:
        if resolved.sqlite_path is None:
            raise ConfigError("PostgreSQL keeps its full-text index (pg_trgm) always")
        with writer.begin() as conn:
            present = fulltext.sqlite_present(conn)
            if on is not None and on != present:
                made = (
                    fulltext.sqlite_create_statements() if on else fulltext.sqlite_drop_statements()
                )
                for statement in made:
                    conn.exec_driver_sql(statement)
                present = on
        return present
    except SQLAlchemyError as exc:
        raise StorageError(f"changing the full-text index failed: {exc}") from exc
    finally:
        writer.dispose()


def set_pg_short_index(target: StorageSettings | str | os.PathLike[str], on: bool | None) -> bool:
    """Make (`on`) or drop (not `on`) PostgreSQL's index of search terms of 1-2 characters
    (storage/fulltext.py PG_SHORT_INDEX; off by default: it costs the capture door ~0.26-0.29 ms of
    PostgreSQL CPU per message); None changes nothing. CONCURRENTLY, so the server keeps
    storing messages meanwhile; an invalid one left by a failed attempt is dropped first.
    Returns whether the usable index is there now. Raises ConfigError on SQLite, StorageError."""
    resolved, reader, writer = _open_engines(target, 1)
    reader.dispose()
    try:
        if resolved.sqlite_path is not None:
            raise ConfigError("the index of short terms is PostgreSQL's only")
        with writer.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            state = fulltext.pg_short_state(conn)
            if on and state is False:
                conn.exec_driver_sql(fulltext.pg_short_drop_statement())
            if on and state is not True:
                conn.exec_driver_sql(fulltext.pg_short_create_statement())
            elif on is False and state is not None:
                conn.exec_driver_sql(fulltext.pg_short_drop_statement())
            return fulltext.pg_short_present(conn)
    except SQLAlchemyError as exc:
        raise StorageError(f"changing the index of short terms failed: {exc}") from exc
    finally:
        writer.dispose()


def open_platform_store(target: StorageSettings | str | os.PathLike[str]) -> SqlPlatformStore:
    """Open the platform store (projects, credentials, domains, ...) in the same database as
    `open_store(target)`, with the same connection settings, migrating it first.

    Several processes may have it open at once (the server and the CLI). Blocking: call it
    from a worker thread in async code. Raises ConfigError or StorageError.
    """
    _, reader, writer = _open_engines(target, WRITE_POOL_SIZE)
    return SqlPlatformStore(reader, writer)
