"""The checks of a message in Mailpit's API: `/api/v1/message/{ID}/html-check` (which HTML
and CSS features the message uses and how mail clients support them, checks/html_check.py).

Each answers for the message of the caller's project only (the API is built per project), so
another project's message is a 404 like an unknown one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from postroom.api.mailpit import blocking, ctx, message_record, parsed_view
from postroom.checks.html_check import html_check
from postroom.checks.html_support import load_table
from postroom.core.errors import InvalidInput


async def html_check_route(request: Request) -> Response:
    c = ctx(request)
    record = await message_record(request)
    parsed = await parsed_view(c, record)
    if not parsed.html.strip():
        raise InvalidInput("the message has no HTML body to check", "ID")
    table = load_table(c.config.html_check_data)
    return JSONResponse(await blocking(html_check, parsed.html, table))


ROUTES = [
    Route("/api/v1/message/{id}/html-check", html_check_route, methods=["GET"]),
]
