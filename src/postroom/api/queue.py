"""A project's outbound queue in `/api/v2`: views and actions.

- `GET …/queue`: entries per state, pending entries per recipient domain, and the delivery
  sites of those domains this process has met, with their suspension and its reason.
- `GET …/queue/entries?state=&domain=&recipient=&message=&after=&limit=`: matching entries.
- `POST …/queue/{retry|hold|release|cancel}` with a JSON filter `{"ids", "messages", "domain",
  "recipient", "state", "all"}`: act on every matching entry the action applies to.
- `POST …/queue/entries/{id}/{action}`: act on one entry; 409 when the action does not apply
  to it now (its state, or a worker delivering it).

Everything is within the path's project (the AuthGate keeps an API key to its own); a state
change is a POST with a JSON body (api/guard.py) and is refused in open mode (auth.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.mailpit import json_body
from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.ports import QueueAdmin
from postroom.core.types import (
    QUEUE_ACTIONS,
    QUEUE_STATES,
    QueueAction,
    QueueEntry,
    QueueFilter,
    QueueState,
)
from postroom.delivery.shaping import SiteStatus
from postroom.platform.service import PlatformService

PREFIX = "/api/v2"

# The sites (site name, status) of the given recipient domains in this process, if it delivers.
SitesOf = Callable[[Sequence[str]], dict[str, SiteStatus]]


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def entry_view(entry: QueueEntry) -> dict[str, Any]:
    state = entry.status
    if state == "queued" and entry.attempts:
        state = "deferred"
    return {
        "id": entry.id,
        "message": entry.message_id,
        "recipient": entry.recipient,
        "domain": entry.domain,
        "state": state,
        "attempts": entry.attempts,
        "next_attempt": _time(entry.next_attempt) if entry.status == "queued" else None,
        "created": _time(entry.created),
        "last_error": entry.last_error,
        "delivering": entry.lease_owner is not None,
    }


def _state(value: object, field: str = "state") -> QueueState | None:
    if value is None or value == "":
        return None
    for state in QUEUE_STATES:
        if value == state:
            return state
    raise InvalidInput(f"{field} must be one of {', '.join(QUEUE_STATES)}", field)


def _strings(body: dict[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{key} must be an array of strings", key)
    return tuple(value)


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string", key)
    return value


def filter_of_body(body: dict[str, Any]) -> QueueFilter:
    unknown = sorted(set(body) - {"ids", "messages", "domain", "recipient", "state", "all"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", unknown[0])
    ids = body.get("ids") or []
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids
    ):
        raise InvalidInput("ids must be an array of queue entry ids (positive integers)", "ids")
    everything = body.get("all", False)
    if not isinstance(everything, bool):
        raise InvalidInput("all must be true or false", "all")
    wanted = QueueFilter(
        entry_ids=tuple(ids),
        message_ids=_strings(body, "messages"),
        domain=_text(body, "domain"),
        recipient=_text(body, "recipient"),
        state=_state(body.get("state")),
        everything=everything,
    )
    if wanted.empty and not everything:
        raise InvalidInput(
            'say which entries: ids, messages, domain, recipient or state, or "all": true',
            "ids",
        )
    return wanted


def _action(request: Request) -> QueueAction:
    name = request.path_params["action"]
    for action in QUEUE_ACTIONS:
        if name == action:
            return action
    raise NotFound(f"no queue action {name!r}; actions: {', '.join(QUEUE_ACTIONS)}")


def routes(
    service: PlatformService, admin: QueueAdmin, clock: Clock, sites_of: SitesOf | None = None
) -> list[BaseRoute]:
    async def project_of(request: Request) -> str:
        project: str = request.path_params["project"]
        await asyncio.to_thread(service.get_project, project)  # NotFound: 404
        return project

    async def summary(request: Request) -> Response:
        project = await project_of(request)
        found = await asyncio.to_thread(admin.summary, project)
        sites = sites_of([d.domain for d in found.domains]) if sites_of else {}
        return JSONResponse(
            {
                "project": project,
                "states": dict(found.states),
                "domains": [
                    {
                        "domain": d.domain,
                        "queued": d.queued,
                        "held": d.held,
                        "oldest": _time(d.oldest),
                        "next_attempt": _time(d.next_attempt),
                        "last_error": d.last_error,
                        "site": sites[d.domain].site if d.domain in sites else None,
                    }
                    for d in found.domains
                ],
                "sites": [
                    {
                        "site": s.site,
                        "source": s.source,
                        "active": s.active,
                        "concurrency": s.concurrency,
                        "suspended": s.suspended_for > 0,
                        "suspended_for": round(s.suspended_for, 3),
                        "reason": s.reason,
                    }
                    for s in {s.site: s for s in sites.values()}.values()
                ],
            }
        )

    async def entries(request: Request) -> Response:
        project = await project_of(request)
        params = request.query_params
        known = {"state", "domain", "recipient", "message", "after", "limit"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise InvalidInput(f"unknown parameter {unknown[0]!r}", unknown[0])
        wanted = QueueFilter(
            message_ids=(params["message"],) if params.get("message") else (),
            domain=params.get("domain") or None,
            recipient=params.get("recipient") or None,
            state=_state(params.get("state")),
            everything=True,
        )
        after = _int(params.get("after"), "after", 0)
        limit = _int(params.get("limit"), "limit", 100)
        found = await asyncio.to_thread(admin.find, project, wanted, after, limit)
        return JSONResponse(
            {
                "project": project,
                "entries": [entry_view(e) for e in found],
                "next": found[-1].id if len(found) == limit else None,
            }
        )

    async def act(request: Request) -> Response:
        action = _action(request)
        body = await json_body(request)
        project = await project_of(request)
        wanted = filter_of_body(body)
        changed = await asyncio.to_thread(admin.act, project, action, wanted, clock.now())
        return JSONResponse(
            {"project": project, "action": action, "count": len(changed), "changed": changed}
        )

    async def act_on_one(request: Request) -> Response:
        action = _action(request)
        await json_body(request)
        project = await project_of(request)
        entry_id = _int(request.path_params["entry"], "entry", 0)
        one = QueueFilter(entry_ids=(entry_id,))
        found = await asyncio.to_thread(admin.find, project, one, 0, 1)
        if not found:
            raise NotFound(f"queue entry {entry_id} not found")
        changed = await asyncio.to_thread(admin.act, project, action, one, clock.now())
        if not changed:
            view = entry_view(found[0])
            doing = "a worker is delivering it" if view["delivering"] else f"it is {view['state']}"
            return JSONResponse(
                {"Error": f"cannot {action} entry {entry_id}: {doing}", "Field": "entry"},
                status_code=409,
            )
        (entry,) = await asyncio.to_thread(admin.find, project, one, 0, 1)
        return JSONResponse(
            {
                "project": project,
                "action": action,
                "count": 1,
                "changed": changed,
                "entry": entry_view(entry),
            }
        )

    queue = f"{PREFIX}/projects/{{project}}/queue"
    return [
        Route(queue, summary, methods=["GET"]),
        Route(f"{queue}/entries", entries, methods=["GET"]),
        Route(f"{queue}/entries/{{entry}}/{{action}}", act_on_one, methods=["POST"]),
        Route(f"{queue}/{{action}}", act, methods=["POST"]),
    ]


def _int(value: str | None, field: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{field} must be an integer", field) from None
    if number < 0 or (field == "limit" and not 1 <= number <= 1000):
        raise InvalidInput(f"{field} is out of range", field)
    return number
