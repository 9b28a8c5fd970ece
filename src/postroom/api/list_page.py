"""The page of summaries the web UI lists: `GET /api/v1/messages` (or `/search`) with Postroom's
`counts=skip`, which the inbox's shell also carries for its first page (web/routes.py)."""

from __future__ import annotations

from typing import Any

from postroom.api.serialize import message_summary
from postroom.core.ports import MessageStore
from postroom.core.search import SearchQuery


def uncounted_page(
    store: MessageStore, project: str, query: SearchQuery | None, start: int, limit: int
) -> dict[str, Any]:
    """A page without counting a search's matches (counting reads every match: seconds at a
    million messages): `messages_count` and `messages_unread` are then null for a search
    (exact for the inbox, which are its counts), and `more` says whether matches follow the
    page. The project's tags are read with the page, in one transaction. Blocking: call it
    from a thread."""
    part = store.page(project, query, start, limit, with_tags=True)
    assert part.tags is not None
    searched = query is not None and not query.empty
    return {
        "count": len(part.messages),
        "total": part.total,
        "unread": part.unread,
        "messages_count": None if searched else part.total,
        "messages_unread": None if searched else part.unread,
        "more": part.more,
        "start": part.start,
        "tags": list(part.tags),
        "messages": [message_summary(m) for m in part.messages],
    }
