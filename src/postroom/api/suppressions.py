"""The suppression list in `/api/v2`: a project's (`/api/v2/projects/{project}/suppressions`)
and the account's (`/api/v2/suppressions`, every project; admins only, not API keys).

    GET    .../suppressions?search=&reason=&after=&limit=   list and search, paged by cursor
    POST   .../suppressions          {"address", "reason"?, "expires"?, "detail"?}  -> 201
    GET    .../suppressions/{address}                       one entry (404 if absent)
    DELETE .../suppressions/{address}                       {"deleted": address}
    POST   .../suppressions/import   {"csv": "...", "reason"?}  -> {"imported": n}
    GET    .../suppressions/export                          text/csv

JSON in and out (the RequestGuard refuses other bodies and foreign Hosts); bad input is a
400 naming the field. The project comes from the path only: the AuthGate keeps an API key to
its own project, so one project's list is never reachable from another's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from postroom.api.auth import key_project
from postroom.api.mailpit import json_body
from postroom.core.errors import InvalidInput
from postroom.core.suppression import ACCOUNT, MAX_PAGE, SuppressionQuery, check_reason
from postroom.platform.service import PlatformService
from postroom.suppression.commands import entry_view
from postroom.suppression.service import SuppressionList, parse_time

PREFIX = "/api/v2"
_QUERY = {"search", "reason", "after", "limit"}


def _refused() -> Response:
    return JSONResponse(
        {"Error": "the account-wide suppression list needs an admin login, not an API key"},
        status_code=403,
    )


def _query(request: Request) -> SuppressionQuery:
    params = request.query_params
    unknown = sorted(set(params) - _QUERY)
    if unknown:
        raise InvalidInput(f"unknown parameter {unknown[0]!r}", unknown[0])
    limit = 100
    if params.get("limit"):
        try:
            limit = int(params["limit"])
        except ValueError:
            raise InvalidInput("limit must be an integer", "limit") from None
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", "limit")
    reason = check_reason(params["reason"]) if params.get("reason") else None
    return SuppressionQuery(
        search=params.get("search") or None,
        reason=reason,
        after=params.get("after") or None,
        limit=limit,
    )


def routes(service: PlatformService, suppressions: SuppressionList) -> list[BaseRoute]:
    async def scope_of(request: Request) -> str | Response:
        """The scope of the path: the project (which must exist: 404), or ACCOUNT, which an
        API key may not reach (403)."""
        project = request.path_params.get("project")
        if project is None:
            return _refused() if key_project(request) is not None else ACCOUNT
        await asyncio.to_thread(service.get_project, project)  # NotFound: 404
        return str(project)

    async def listing(request: Request) -> Response:
        scope = await scope_of(request)
        if isinstance(scope, Response):
            return scope
        page = await asyncio.to_thread(suppressions.page, scope, _query(request))
        out: dict[str, Any] = {"suppressions": [entry_view(e) for e in page.entries]}
        out["next"] = page.next
        if scope != ACCOUNT:
            out = {"project": scope, **out}
        return JSONResponse(out)

    async def add(request: Request) -> Response:
        scope = await scope_of(request)
        if isinstance(scope, Response):
            return scope
        body = await json_body(request)
        unknown = sorted(set(body) - {"address", "reason", "expires", "detail"})
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", unknown[0])
        expires = body.get("expires")
        if expires is not None and not isinstance(expires, str):
            raise InvalidInput("expires must be an RFC 3339 time string", "expires")
        entry = await asyncio.to_thread(
            suppressions.add,
            scope,
            body.get("address"),
            body.get("reason", "manual"),
            expires=parse_time(expires, "expires") if expires else None,
            detail=body.get("detail", ""),
        )
        return JSONResponse(entry_view(entry), status_code=201)

    async def one(request: Request) -> Response:
        scope = await scope_of(request)
        if isinstance(scope, Response):
            return scope
        address = request.path_params["address"]
        if request.method == "DELETE":
            await asyncio.to_thread(suppressions.remove, scope, address)
            return JSONResponse({"deleted": address})
        return JSONResponse(entry_view(await asyncio.to_thread(suppressions.get, scope, address)))

    async def import_csv(request: Request) -> Response:
        scope = await scope_of(request)
        if isinstance(scope, Response):
            return scope
        body = await json_body(request)
        text = body.get("csv")
        if not isinstance(text, str):
            raise InvalidInput("csv must be the CSV text (a string)", "csv")
        reason = check_reason(body.get("reason", "manual"))
        lines = text.splitlines(keepends=True)
        count = await asyncio.to_thread(suppressions.import_csv, scope, lines, reason)
        return JSONResponse({"imported": count})

    async def export_csv(request: Request) -> Response:
        scope = await scope_of(request)
        if isinstance(scope, Response):
            return scope
        lines = await asyncio.to_thread(lambda: list(suppressions.export_csv(scope)))
        name = "account" if scope == ACCOUNT else scope
        return StreamingResponse(
            iter(lines),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="suppressions-{name}.csv"'},
        )

    result: list[BaseRoute] = []
    for base in (f"{PREFIX}/projects/{{project}}/suppressions", f"{PREFIX}/suppressions"):
        result += [
            Route(base, listing, methods=["GET"]),
            Route(base, add, methods=["POST"]),
            Route(f"{base}/import", import_csv, methods=["POST"]),
            Route(f"{base}/export", export_csv, methods=["GET"]),
            Route(f"{base}/{{address}}", one, methods=["GET", "DELETE"]),
        ]
    return result
