"""`GET /api/v2/projects/{project}/events`: a project's durable event log, filtered and paged.

Query parameters: `type` (one or more, repeated or comma-separated), `recipient` (the whole
address, case-insensitive), `message` (a message id), `since` and `until` (RFC 3339 times;
`since` inclusive, `until` exclusive), `after` (the cursor: events with a larger id) and
`limit` (1 to 1000, default 100). Every bad parameter is a 400 naming it. An event of a
message sent with `metadata` (the native send API) carries it.

The project comes from the path and nothing else: a message id or recipient of another
project matches nothing, and the AuthGate keeps an API key to its own project's path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.core.errors import InvalidInput
from postroom.core.events import MAX_EVENT_PAGE, Event, EventQuery, check_types
from postroom.core.ports import EventStore
from postroom.platform.service import PlatformService

PREFIX = "/api/v2"


# The send API's metadata of a project's messages, by message id (storage/store.py).
MetadataOf = Callable[[str, Sequence[str]], Mapping[str, Mapping[str, str]]]


def event_view(event: Event, metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON shape of one event; `metadata`: its message's, given with the send."""
    view = {
        "id": event.id,
        "type": event.type,
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "message": event.message_id,
        "recipient": event.recipient,
        "detail": dict(event.detail),
    }
    if metadata:
        view["metadata"] = dict(metadata)
    return view


def _time(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name} must be an RFC 3339 time such as 2026-01-02T03:04:05Z", name
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{name} must carry a time zone (Z or an offset)", name)
    return parsed


def _int(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer", name) from None
    if not low <= number <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}", name)
    return number


def event_query(request: Request) -> EventQuery:
    """The EventQuery of a request's parameters; InvalidInput naming a bad one."""
    params = request.query_params
    known = {"type", "recipient", "message", "since", "until", "after", "limit"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidInput(f"unknown parameter {unknown[0]!r}", unknown[0])
    names = [n.strip() for v in params.getlist("type") for n in v.split(",") if n.strip()]
    since, until = _time(request, "since"), _time(request, "until")
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until must be later than since", "until")
    limit = _int(request, "limit", 100, 1, MAX_EVENT_PAGE)
    assert limit is not None
    return EventQuery(
        types=check_types(names),
        recipient=params.get("recipient") or None,
        message_id=params.get("message") or None,
        since=since,
        until=until,
        after=_int(request, "after", None, 0, 2**63 - 1),
        limit=limit,
    )


def routes(
    service: PlatformService, events: EventStore, metadata_of: MetadataOf | None = None
) -> list[BaseRoute]:
    async def list_events(request: Request) -> Response:
        project: str = request.path_params["project"]
        query = event_query(request)
        await asyncio.to_thread(service.get_project, project)  # NotFound: 404
        page = await asyncio.to_thread(events.query, project, query)
        metadata: Mapping[str, Mapping[str, str]] = {}
        ids = [e.message_id for e in page.events if e.message_id]
        if metadata_of is not None and ids:
            metadata = await asyncio.to_thread(metadata_of, project, ids)
        return JSONResponse(
            {
                "project": project,
                "events": [event_view(e, metadata.get(e.message_id or "")) for e in page.events],
                "next": page.next,
            }
        )

    return [Route(f"{PREFIX}/projects/{{project}}/events", list_events, methods=["GET"])]
