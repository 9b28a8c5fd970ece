"""Each tag of a project with its number of messages and of unread ones, in one grouped query
(the inbox's tag sidebar, `GET /api/v1/tag-counts`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, case, func, select
from sqlalchemy.engine import Connection

from postroom.storage.schema import message_tags, messages
from postroom.storage.store import SqlMessageStore


@dataclass(frozen=True, slots=True)
class TagCount:
    name: str
    total: int
    unread: int


def tag_counts(store: SqlMessageStore, project: str, limit: int) -> list[TagCount]:
    """The first `limit` tags (case-insensitive order, as `tags()`), with their counts."""
    t, m = message_tags.c, messages.c
    unread = func.sum(case((m.read.is_(False), 1), else_=0)).cast(Integer)
    stmt = (
        select(func.min(t.tag), func.count(), unread)
        .select_from(message_tags.join(messages, messages.c.id == t.message_id))
        .where(t.project == project)
        .group_by(t.tag_lc)
        .order_by(t.tag_lc)
        .limit(max(0, limit))
    )

    def work(conn: Connection) -> list[TagCount]:
        return [TagCount(str(n), int(c), int(u or 0)) for n, c, u in conn.execute(stmt)]

    return store._run(store._read, work)
