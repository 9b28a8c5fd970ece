"""Capture routes in `/api/v2` (platform/capture_routes.py):

    GET    /api/v2/capture-routes        {"routes": [...]}: --capture-route ones, then stored
    POST   /api/v2/capture-routes        {"kind": "user"|"rcpt", "pattern", "project"} -> 201
    DELETE /api/v2/capture-routes/{id}   a stored rule -> 204

For an admin login, and in open mode (they only move captured mail between capture projects,
as open mode may manage capture projects); never for an API key, which acts on one project
while a route decides about every project's capture mail.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.auth import principal_of
from postroom.api.mailpit import json_body
from postroom.core.capture_routes import CaptureRoute
from postroom.core.errors import InvalidInput, NotFound
from postroom.platform.capture_routes import CaptureRouteService

PREFIX = "/api/v2/capture-routes"
FIELDS = ("kind", "pattern", "project")
Json = dict[str, Any]


def route_json(route: CaptureRoute) -> Json:
    return {
        "id": route.id,
        "kind": route.kind,
        "pattern": route.pattern,
        "project": route.project,
        "rule": route.text,
        "source": "stored" if route.id is not None else "option",
    }


def _refuse_keys(request: Request) -> Response | None:
    if principal_of(request).kind == "key":
        return JSONResponse(
            {
                "Error": "capture routes are managed by an admin login, not an API key (a "
                "route decides about every project's captured mail)",
                "Field": "Authorization",
            },
            status_code=403,
        )
    return None


def routes(service: CaptureRouteService) -> list[BaseRoute]:
    async def list_routes(request: Request) -> Response:
        refused = _refuse_keys(request)
        if refused is not None:
            return refused
        found = await asyncio.to_thread(service.list)
        return JSONResponse({"routes": [route_json(r) for r in (*found.options, *found.stored)]})

    async def create(request: Request) -> Response:
        refused = _refuse_keys(request)
        if refused is not None:
            return refused
        body = await json_body(request)
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", unknown[0])
        added = await asyncio.to_thread(
            service.add, body.get("kind"), body.get("pattern"), body.get("project")
        )
        return JSONResponse(route_json(added), status_code=201)

    async def remove(request: Request) -> Response:
        refused = _refuse_keys(request)
        if refused is not None:
            return refused
        raw = request.path_params["id"]
        if not raw.isdigit() or len(raw) > 18:
            raise NotFound(f"no capture route {raw!r}")
        await asyncio.to_thread(service.delete, int(raw))
        return Response(status_code=204)

    return [
        Route(PREFIX, list_routes, methods=["GET"]),
        Route(PREFIX, create, methods=["POST"]),
        Route(PREFIX + "/{id}", remove, methods=["DELETE"]),
    ]


SCHEMAS: Json = {
    "CaptureRoute": {
        "type": "object",
        "properties": {
            "id": {"type": ["integer", "null"], "description": "null for --capture-route"},
            "kind": {"enum": ["user", "rcpt"]},
            "pattern": {"type": "string", "description": "wildcard (* ?), case-insensitive"},
            "project": {"type": "string"},
            "rule": {"type": "string", "description": "as --capture-route writes it"},
            "source": {"enum": ["option", "stored"]},
        },
        "required": ["id", "kind", "pattern", "project", "rule", "source"],
    },
    "CaptureRouteList": {
        "type": "object",
        "properties": {
            "routes": {"type": "array", "items": {"$ref": "#/components/schemas/CaptureRoute"}}
        },
        "required": ["routes"],
    },
    "CaptureRouteRequest": {
        "type": "object",
        "properties": {
            "kind": {"enum": ["user", "rcpt"]},
            "pattern": {"type": "string"},
            "project": {"type": "string", "description": "an existing capture project"},
        },
        "required": ["kind", "pattern", "project"],
        "additionalProperties": False,
    },
}


def paths(op: Any, param: Any) -> Json:
    """The paths, built with openapi_v2's helpers `op` and `param`."""
    return {
        PREFIX: {
            "get": op(
                "the capture routes in the order tried: --capture-route ones, then stored",
                "CaptureRouteList",
            ),
            "post": op(
                "add a capture route (admin login or open mode)",
                "CaptureRoute",
                status="201",
                body="CaptureRouteRequest",
            ),
        },
        PREFIX + "/{id}": {
            "delete": _deleted(
                op(
                    "delete a stored capture route",
                    "Error",
                    params=(
                        param("id", "the route's id (--capture-route ones cannot be deleted)"),
                    ),
                )
            )
        },
    }


def _deleted(operation: Json) -> Json:
    """An operation answering 204 with no body (instead of 200)."""
    responses = {k: v for k, v in operation["responses"].items() if k != "200"}
    return {**operation, "responses": {"204": {"description": "deleted"}, **responses}}
