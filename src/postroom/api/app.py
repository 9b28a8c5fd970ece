"""The Starlette application: routes, error handling, security headers."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postroom.api import (
    body_downloads,
    checks,
    health,
    live,
    mailpit,
    screenshot,
    swagger,
    tag_counts,
    view,
)
from postroom.api.context import ApiContext
from postroom.api.errors import handle_postroom_error, json_error
from postroom.core.errors import PostroomError

DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'self'; form-action 'self'"
)


class SecurityHeaders:
    """Adds a Content-Security-Policy (unless the route set its own) and related headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = {
                    b"content-security-policy": DEFAULT_CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"x-frame-options": b"SAMEORIGIN",
                }
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


async def not_found(request: Request, exc: Exception) -> Response:
    return json_error(404, f"no such endpoint: {request.method} {request.url.path}")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return json_error(405, f"{request.method} is not allowed on {request.url.path}")


def build_app(
    context: ApiContext,
    extra_routes: list[BaseRoute] | None = None,
    first_routes: list[BaseRoute] | None = None,
) -> Starlette:
    """The application; `first_routes` are tried before all others (Starlette's router tries
    each route in turn: the hot send paths are found at once, not after some hundred
    routes; they must not share a path with another route)."""
    app = Starlette(
        routes=[
            *(first_routes or []),
            *health.ROUTES,
            *live.ROUTES,
            *tag_counts.ROUTES,
            *mailpit.ROUTES,
            *checks.ROUTES,
            *body_downloads.ROUTES,
            *screenshot.ROUTES,
            *swagger.ROUTES,
            *view.ROUTES,
            *(extra_routes or []),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            PostroomError: handle_postroom_error,
            404: not_found,
            405: method_not_allowed,
        },
    )
    app.state.ctx = context
    return app
