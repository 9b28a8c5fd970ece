"""`POST /confirm-address`: the public end of an address verification (no login).

The confirmation page (`GET /confirm-address?token=...`, web/admin) shows what is about to
be confirmed and changes nothing, so that mail scanners that open links confirm nothing; its
button posts `{"token": "..."}` here as JSON. The token is the only credential: whoever
holds it read the mailbox. The request meets api/guard.py like every other (Host checked,
JSON only: a page on another site cannot post it without a CORS preflight, which Postroom
never answers), and the AuthGate lets it through without a login (api/auth.py PUBLIC_PATHS).

Answers 200 with the identity now verified, or 400 naming `token` when it is malformed,
unknown (forged, or replaced by a newer mail), used already or expired.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.mailpit import json_body
from postroom.platform import views
from postroom.platform.address_mail import CONFIRM_PATH
from postroom.platform.service import PlatformService

__all__ = ["routes"]


def routes(service: PlatformService) -> list[BaseRoute]:
    async def confirm(request: Request) -> Response:
        body = await json_body(request)
        token = body.get("token")
        identity = await asyncio.to_thread(service.confirm_address, token, "token")
        return JSONResponse(views.address_identity(identity), headers={"Cache-Control": "no-store"})

    return [Route(CONFIRM_PATH, confirm, methods=["POST"])]
