"""A project's reputation in `/api/v2` (reputation/guard.py):

    GET  /api/v2/projects/{project}/reputation          level, pause, rates per window, chart
    POST /api/v2/projects/{project}/reputation/resume   {} -> the same, sending resumed

Resuming is for admins only (a login, never an API key: a key of the paused project would
let it lift its own pause; open mode may not either). A project that is not paused is a 400
naming `project`; an unknown one a 404. The project comes from the path only, and the AuthGate
keeps an API key to its own project's path.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.auth import principal_of
from postroom.api.mailpit import json_body
from postroom.core.errors import InvalidInput
from postroom.platform.service import PlatformService
from postroom.reputation.guard import ReputationGuard

PREFIX = "/api/v2"


def routes(service: PlatformService, guard: ReputationGuard) -> list[BaseRoute]:
    async def show(request: Request) -> Response:
        project = await asyncio.to_thread(service.get_project, request.path_params["project"])
        return JSONResponse(await asyncio.to_thread(guard.report, project))

    async def resume(request: Request) -> Response:
        principal = principal_of(request)
        if principal.kind != "admin":
            return JSONResponse(
                {
                    "Error": "a paused project's sending is resumed by an admin login only, "
                    "never with an API key",
                    "Field": "Authorization",
                },
                status_code=403,
            )
        body = await json_body(request)
        if body:
            name = sorted(body)[0]
            raise InvalidInput(f"unknown field {name!r} (resume takes an empty object)", name)
        name = request.path_params["project"]
        await asyncio.to_thread(guard.resume, name, principal.username)
        project = await asyncio.to_thread(service.get_project, name)
        return JSONResponse(await asyncio.to_thread(guard.report, project))

    return [
        Route(f"{PREFIX}/projects/{{project}}/reputation", show, methods=["GET"]),
        Route(f"{PREFIX}/projects/{{project}}/reputation/resume", resume, methods=["POST"]),
    ]
