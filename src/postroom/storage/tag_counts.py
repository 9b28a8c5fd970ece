"""Each tag of a project with its number of messages and of unread ones (the inbox's tag
sidebar, `GET /api/v1/tag-counts`), read from the counters the triggers keep
(storage/tag_counters.py, migration 0024): one row per tag, whatever the number of messages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy.engine import Connection

from postroom.core.errors import StorageError
from postroom.storage import tag_counters
from postroom.storage.store import SqlMessageStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TagCount:
    name: str
    total: int
    unread: int


def tag_counts(store: SqlMessageStore, project: str, limit: int) -> list[TagCount]:
    """The first `limit` tags (case-insensitive order, as `tags()`), with their counts."""

    def work(conn: Connection) -> tuple[list[tuple[str, int, int]], int]:
        return tag_counters.read(conn, project)

    found, summed = store._run(store._read, work)
    if summed > tag_counters.FOLD_AT and store.backend == "postgresql":
        try:
            store._run(store._write, partial(tag_counters.fold, project=project))
        except StorageError as exc:  # the rows stay and are summed; the next read tries again
            log.warning("folding the tag counts of %s failed: %s", project, exc)
    return [TagCount(n, t, u) for n, t, u in found[: max(0, limit)]]
