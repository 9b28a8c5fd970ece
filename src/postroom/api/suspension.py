"""An administrator's suspension of a project's sending in `/api/v2`
(PlatformService.suspend_project; the doors refuse through pipeline/suspension.py):

    POST /api/v2/projects/{project}/suspension          {"reason": "..."?} -> the project
    POST /api/v2/projects/{project}/suspension/resume   {} -> the project, suspension lifted

Both are for admins only (a login, never an API key: a key of the suspended project would lift
its own suspension; open mode may not either): anyone else gets a 403 naming
`Authorization`. JSON only and Host checked like all of /api/v2 (api/guard.py). A body that is
not an object, an unknown field or a bad reason is a 400 naming the field; resuming a project
that is not suspended a 400 naming `id`; an unknown project a 404.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.auth import principal_of
from postroom.api.mailpit import json_body
from postroom.core.errors import InvalidInput
from postroom.platform import views
from postroom.platform.service import PlatformService

PREFIX = "/api/v2"
_ADMIN_ONLY = (
    "a project's sending is suspended and resumed by an admin login only, never with an API key"
)


def _admin_only(request: Request) -> Response | None:
    if principal_of(request).kind == "admin":
        return None
    return JSONResponse({"Error": _ADMIN_ONLY, "Field": "Authorization"}, status_code=403)


def _only(body: dict[str, object], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r} ({what})", unknown[0])


def routes(service: PlatformService) -> list[BaseRoute]:
    async def suspend(request: Request) -> Response:
        refused = _admin_only(request)
        if refused is not None:
            return refused
        body = await json_body(request)
        _only(body, frozenset({"reason"}), "suspend takes an optional reason")
        name = request.path_params["project"]
        project = await asyncio.to_thread(service.suspend_project, name, body.get("reason"))
        return JSONResponse(views.project(project))

    async def resume(request: Request) -> Response:
        refused = _admin_only(request)
        if refused is not None:
            return refused
        body = await json_body(request)
        _only(body, frozenset(), "resume takes an empty object")
        project = await asyncio.to_thread(service.resume_project, request.path_params["project"])
        return JSONResponse(views.project(project))

    return [
        Route(f"{PREFIX}/projects/{{project}}/suspension", suspend, methods=["POST"]),
        Route(f"{PREFIX}/projects/{{project}}/suspension/resume", resume, methods=["POST"]),
    ]
