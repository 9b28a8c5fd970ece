"""/livez, /readyz and /metrics."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from postroom.api.mailpit import ctx


async def livez(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    c = ctx(request)
    if not c.ready():
        return PlainTextResponse("not ready: listeners are still starting", status_code=503)
    problem = c.storage_problem()
    if problem is not None:
        return PlainTextResponse(f"not ready: {problem}", status_code=503)
    return PlainTextResponse("ready")


async def metrics(request: Request) -> Response:
    # In a worker thread: some figures are read from the database (the quota gauges).
    exposition = await asyncio.to_thread(ctx(request).metrics.exposition)
    return Response(exposition, media_type="text/plain; version=0.0.4; charset=utf-8")


ROUTES = [
    Route("/livez", livez, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
