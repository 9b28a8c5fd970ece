"""`GET /api/v1/tag-counts` (Postroom, beyond Mailpit): each tag of the project with the number
of its messages and of those unread, for the inbox's tag sidebar. At most `MAX_TAGS` tags, in
the order of `/api/v1/tags`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from postroom.api.mailpit import blocking, ctx
from postroom.core.search import SearchQuery, Term
from postroom.storage.store import SqlMessageStore
from postroom.storage.tag_counts import tag_counts as count_tags

MAX_TAGS = 200


async def tag_counts(request: Request) -> Response:
    c = ctx(request)

    def work() -> list[dict[str, Any]]:
        store = c.store
        if isinstance(store, SqlMessageStore):  # one grouped query
            counted = count_tags(store, c.project, MAX_TAGS)
            return [{"Name": t.name, "Total": t.total, "Unread": t.unread} for t in counted]
        out = []
        for name in store.tags(c.project)[:MAX_TAGS]:
            page = c.store.list(c.project, SearchQuery((Term("tag", name),)), 0, 0)
            out.append({"Name": name, "Total": page.matched, "Unread": page.matched_unread})
        return out

    return JSONResponse({"Tags": await blocking(work)})


ROUTES = [Route("/api/v1/tag-counts", tag_counts, methods=["GET"])]
