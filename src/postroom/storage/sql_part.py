"""The shape every part of the message store's database shares (webhooks, suppressions,
reputation, configuration sets, ...): reads on `read_engine`, changes on `write_engine` under
`write_lock` (the SQLite write lock; none on PostgreSQL), one transaction per call, and a
database failure raised as StorageError naming the part.

`_select` runs one read statement on a pooled driver connection, without SQLAlchemy's
statement building and transaction handling (a single statement is atomic), for reads on the
hot path of every message whose SQLAlchemy overhead costs more than the query."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from postroom.core.errors import StorageError

T = TypeVar("T")


class SqlPart:
    part = "the store"  # how a StorageError names the part: "<part> failed: ..."

    def __init__(
        self,
        read_engine: Engine,
        write_engine: Engine,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        self._read = read_engine
        self._write = write_engine
        self._lock = write_lock or contextlib.nullcontext()

    def _run(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        """`work` in one transaction on `engine` (under the write lock when it writes)."""
        lock = self._lock if engine is self._write else contextlib.nullcontext()
        try:
            with lock, engine.begin() as conn:
                return work(conn)
        except SQLAlchemyError as exc:
            raise StorageError(f"{self.part} failed: {type(exc).__name__}: {exc}") from exc

    def _mark(self) -> str:
        """The driver's parameter marker (sqlite3: ?, psycopg: %s)."""
        return "?" if self._read.dialect.paramstyle == "qmark" else "%s"

    def _select(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of one read statement (`sql` written with `_mark()` markers) run on a
        pooled driver connection of the read engine; a driver error is a StorageError and the
        connection is not reused."""
        driver_error = self._read.dialect.loaded_dbapi.Error
        try:
            try:
                connection = self._read.raw_connection()
            except SQLAlchemyError as exc:
                raise StorageError(f"{self.part} failed: {type(exc).__name__}: {exc}") from exc
            try:
                cursor = connection.cursor()
                cursor.execute(sql, tuple(params))
                rows = [tuple(row) for row in cursor.fetchall()]
                cursor.close()
            except driver_error:
                connection.invalidate()  # perhaps a broken connection: never reuse it
                raise
            finally:
                connection.close()  # back to the pool (which rolls back)
        except driver_error as exc:
            raise StorageError(f"{self.part} failed: {type(exc).__name__}: {exc}") from exc
        return rows
