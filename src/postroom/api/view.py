"""Rendered message bodies: /view/{ID}.html (untrusted HTML, sandboxed) and /view/{ID}.txt."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from postroom.api.mailpit import blocking, message_raw_bytes
from postroom.core.errors import NotFound
from postroom.mime.view import html_to_text, parse_message


async def view_html(request: Request) -> Response:
    _, raw = await message_raw_bytes(request)
    parsed = await blocking(parse_message, raw)
    if not parsed.html:
        raise NotFound("this message has no HTML part")
    html = parsed.html
    if request.query_params.get("embed") == "1":
        html = html.replace("<a ", '<a target="_blank" rel="noreferrer noopener" ')
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": (
                "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; sandbox"
            ),
            "X-Content-Type-Options": "nosniff",
        },
    )


async def view_text(request: Request) -> Response:
    _, raw = await message_raw_bytes(request)
    parsed = await blocking(parse_message, raw)
    text = parsed.text or html_to_text(parsed.html)
    return PlainTextResponse(text)


ROUTES = [
    Route("/view/{id}.html", view_html, methods=["GET"]),
    Route("/view/{id}.txt", view_text, methods=["GET"]),
]
