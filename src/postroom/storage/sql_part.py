"""The shape every part of the message store's database shares (webhooks, suppressions,
reputation, configuration sets, ...): reads on `read_engine`, changes on `write_engine` under
`write_lock` (the SQLite write lock; none on PostgreSQL), one transaction per call, and a
database failure raised as StorageError naming the part."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
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
