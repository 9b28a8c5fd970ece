"""A project's webhooks in `/api/v2` (events/webhook_service.py does the work):

    GET    /api/v2/projects/{project}/webhooks                       list
    POST   /api/v2/projects/{project}/webhooks                       create -> 201, with `secret`
    GET    .../webhooks/{webhook}                                    one, with outbox counts
    PATCH  .../webhooks/{webhook}                                    change fields
    DELETE .../webhooks/{webhook}                                    {"deleted": id}
    POST   .../webhooks/{webhook}/secret                             rotate -> with `secret`
    GET    .../webhooks/{webhook}/requests?limit=&before=            latest requests
    POST   .../webhooks/{webhook}/requests/{request}/resend          -> 202

JSON in and out (the RequestGuard refuses other bodies and foreign Hosts); bad input is a 400
naming the field. The project comes from the path only, and every lookup of a webhook or a
request is narrowed to it: another project's webhook id is a 404, and the AuthGate keeps an
API key to its own project's path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.mailpit import json_body
from postroom.core.errors import InvalidInput
from postroom.events.webhook_service import WebhookService, request_view, webhook_view

PREFIX = "/api/v2/projects/{project}/webhooks"
MAX_REQUESTS_PAGE = 200


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


def _request_id(request: Request) -> int:
    text: str = request.path_params["request"]
    if not text.isdigit():
        raise InvalidInput("request must be a request id (a number)", "request")
    return int(text)


def routes(service: WebhookService) -> list[BaseRoute]:
    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    def ids(request: Request) -> tuple[str, str]:
        return request.path_params["project"], request.path_params.get("webhook", "")

    async def collection(request: Request) -> Response:
        project, _ = ids(request)
        if request.method == "POST":
            body = await json_body(request)
            hook, secret = await run(service.create, project, body)
            return JSONResponse(webhook_view(hook, secret), status_code=201)
        hooks = await run(service.list, project)
        return JSONResponse({"project": project, "webhooks": [webhook_view(h) for h in hooks]})

    async def one(request: Request) -> Response:
        project, webhook = ids(request)
        if request.method == "DELETE":
            await run(service.delete, project, webhook)
            return JSONResponse({"deleted": webhook})
        if request.method == "PATCH":
            body = await json_body(request)
            hook = await run(service.update, project, webhook, body)
        else:
            hook = await run(service.get, project, webhook)
        view = webhook_view(hook)
        view["outbox"] = await run(service.counts, project, webhook)
        return JSONResponse(view)

    async def rotate(request: Request) -> Response:
        project, webhook = ids(request)
        await json_body(request)  # nothing to read, but JSON if anything
        hook, secret = await run(service.rotate_secret, project, webhook)
        return JSONResponse(webhook_view(hook, secret))

    async def requests(request: Request) -> Response:
        project, webhook = ids(request)
        unknown = sorted(set(request.query_params) - {"limit", "before"})
        if unknown:
            raise InvalidInput(f"unknown parameter {unknown[0]!r}", unknown[0])
        limit = _int(request, "limit", 50, 1, MAX_REQUESTS_PAGE)
        before = _int(request, "before", None, 1, 2**63 - 1)
        found = await run(service.requests, project, webhook, limit, before)
        return JSONResponse(
            {"project": project, "webhook": webhook, "requests": [request_view(r) for r in found]}
        )

    async def resend(request: Request) -> Response:
        project, webhook = ids(request)
        item = await run(service.resend, project, webhook, _request_id(request))
        return JSONResponse(
            {"queued": item.id, "resend_of": item.resend_of, "event_id": item.event_id},
            status_code=202,
        )

    handlers: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
        ("", collection, ["GET", "POST"]),
        ("/{webhook}", one, ["GET", "PATCH", "DELETE"]),
        ("/{webhook}/secret", rotate, ["POST"]),
        ("/{webhook}/requests", requests, ["GET"]),
        ("/{webhook}/requests/{request}/resend", resend, ["POST"]),
    ]
    return [Route(PREFIX + path, fn, methods=methods) for path, fn, methods in handlers]
