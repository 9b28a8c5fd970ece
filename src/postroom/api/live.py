"""Live endpoints beyond Mailpit: the event stream (SSE) and the long-poll wait."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from postroom.api.errors import json_error
from postroom.api.mailpit import blocking, ctx, query_param
from postroom.api.serialize import message_summary
from postroom.core.errors import InvalidInput
from postroom.events.bus import MessageEvent

KEEPALIVE_SECONDS = 15.0
WAIT_DEFAULT = 30.0
WAIT_MAX = 300.0


def event_json(event: MessageEvent) -> dict[str, Any]:
    if event.type == "new" and event.record is not None:
        return message_summary(event.record)
    return {"IDs": list(event.ids)}


async def events(request: Request) -> Response:
    """text/event-stream of `new`, `update`, `delete` and `truncate` events for the project."""
    c = ctx(request)

    async def stream() -> AsyncIterator[str]:
        async with c.bus.subscribe() as queue:
            yield "retry: 2000\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if event.project != c.project:
                    continue
                yield f"event: {event.type}\ndata: {json.dumps(event_json(event))}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _timeout(request: Request) -> float:
    raw = request.query_params.get("timeout", "")
    if not raw:
        return WAIT_DEFAULT
    try:
        value = float(raw.rstrip("s"))
    except ValueError:
        raise InvalidInput(f"timeout must be a number of seconds, got {raw!r}", "timeout") from None
    if not 0 <= value <= WAIT_MAX:
        raise InvalidInput(f"timeout must be between 0 and {WAIT_MAX:g} seconds", "timeout")
    return value


async def wait(request: Request) -> Response:
    """Return the newest message matching `query` (all messages if empty) as soon as one exists.

    With `since=<message id>` only messages newer than that one count. On timeout: 408 with a
    JSON error, so a test fails with a clear reason instead of hanging.
    """
    c = ctx(request)
    query = query_param(request)
    timeout = _timeout(request)
    since = request.query_params.get("since", "")

    async def newest_match() -> Response | None:
        page = await blocking(c.store.list, c.project, None if query.empty else query, 0, 1)
        if page.messages and page.messages[0].id > since:
            return JSONResponse(message_summary(page.messages[0]))
        return None

    async with c.bus.subscribe() as queue:
        found = await newest_match()
        if found:
            return found
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                event = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                break
            if event.type == "new" and event.project == c.project:
                found = await newest_match()
                if found:
                    return found
    return json_error(408, f"no message matched within {timeout:g} seconds", "query")


ROUTES = [
    Route("/api/v1/events", events, methods=["GET"]),
    Route("/api/v1/wait", wait, methods=["GET"]),
]
