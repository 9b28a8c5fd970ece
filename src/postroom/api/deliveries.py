"""`GET /api/v2/projects/{project}/messages/{message}/deliveries`: a live message's status, each
recipient's state and its attempt history; and the project's delivery settings
(`…/delivery-settings`: whether senders get bounce notices, and the IP pool).

The message is looked up in the path's project first (404 otherwise), so a message id of
another project reaches nothing; the AuthGate keeps an API key to its own project's path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import datetime
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.mailpit import json_body
from postroom.core.errors import InvalidInput
from postroom.core.ports import MessageStore, QueueStore
from postroom.core.types import FAILED, QUEUED, AttemptRecord, QueueEntry
from postroom.platform.service import PlatformService
from postroom.storage.delivery_settings import DeliverySettingsRecord, SqlDeliverySettings

PREFIX = "/api/v2"


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def attempt_view(record: AttemptRecord) -> dict[str, Any]:
    a = record.attempt
    return {
        "time": _time(a.started),
        "duration_ms": round(a.duration * 1000, 3),
        "outcome": record.outcome,
        "mx_host": a.mx_host,
        "ip": a.ip,
        "port": a.port,
        "local_address": a.local_address,
        "tls_version": a.tls_version,
        "tls_cipher": a.tls_cipher,
        "code": a.code,
        "enhanced": a.enhanced,
        "reply": a.reply,
        "earlier": list(a.earlier),
        "tls_policy": a.tls_policy,
    }


def state_of(entry: QueueEntry) -> str:
    """`queued` (not tried yet), `deferred` (tried, to be retried), `delivered`, `failed`, or
    the entry's own status for other states (held, cancelled)."""
    if entry.status == QUEUED:
        return "deferred" if entry.attempts else "queued"
    return entry.status


def recipient_view(entry: QueueEntry, attempts: list[AttemptRecord]) -> dict[str, Any]:
    return {
        "recipient": entry.recipient,
        "state": state_of(entry),
        "attempts": entry.attempts,
        "next_attempt": _time(entry.next_attempt) if entry.status == QUEUED else None,
        "last_error": entry.last_error if entry.status in (QUEUED, FAILED) else None,
        "history": [attempt_view(a) for a in attempts if a.entry_id == entry.id],
    }


def routes(store: MessageStore, queue: QueueStore) -> list[BaseRoute]:
    async def deliveries(request: Request) -> Response:
        project: str = request.path_params["project"]
        message_id: str = request.path_params["message"]
        record = await asyncio.to_thread(store.get, project, message_id)  # NotFound: 404
        entries = await asyncio.to_thread(queue.entries, record.id)
        attempts = await asyncio.to_thread(queue.attempts, project, record.id)
        return JSONResponse(
            {
                "project": project,
                "message": record.id,
                "status": record.status,
                "recipients": [recipient_view(e, attempts) for e in entries],
            }
        )

    path = f"{PREFIX}/projects/{{project}}/messages/{{message}}/deliveries"
    return [Route(path, deliveries, methods=["GET"])]


def settings_routes(
    service: PlatformService, settings: SqlDeliverySettings, pools: Collection[str] = ()
) -> list[BaseRoute]:
    """`GET, PUT /api/v2/projects/{project}/delivery-settings`: `{"bounce_notices": bool,
    "ip_pool": NAME or null}` (`pools`: the names of the configured IP pools)."""

    def view(record: DeliverySettingsRecord) -> dict[str, Any]:
        return {
            "project": record.project,
            "bounce_notices": record.bounce_notices,
            "ip_pool": record.ip_pool,
        }

    async def read(request: Request) -> Response:
        project: str = request.path_params["project"]
        await asyncio.to_thread(service.get_project, project)  # NotFound: 404
        return JSONResponse(view(await asyncio.to_thread(settings.get, project)))

    async def write(request: Request) -> Response:
        project: str = request.path_params["project"]
        body = await json_body(request)
        unknown = sorted(set(body) - {"bounce_notices", "ip_pool"})
        if unknown:
            raise InvalidInput(f"unknown setting {unknown[0]!r}", unknown[0])
        if not body:
            raise InvalidInput("give bounce_notices or ip_pool", "bounce_notices")
        changes: dict[str, Any] = {}
        if "bounce_notices" in body:
            if not isinstance(body["bounce_notices"], bool):
                raise InvalidInput("bounce_notices must be true or false", "bounce_notices")
            changes["bounce_notices"] = body["bounce_notices"]
        if "ip_pool" in body:
            pool = body["ip_pool"]
            if pool is not None and not isinstance(pool, str):
                raise InvalidInput("ip_pool must be a pool name or null", "ip_pool")
            if pool is not None and pool.strip().lower() not in pools:
                known = ", ".join(sorted(pools)) or "none is configured (--ip-pools)"
                raise InvalidInput(f"no IP pool named {pool!r}; pools: {known}", "ip_pool")
            changes["ip_pool"] = pool.strip().lower() if pool is not None else None
        await asyncio.to_thread(service.get_project, project)  # NotFound: 404
        stored = await asyncio.to_thread(partial(settings.set, project, **changes))
        return JSONResponse(view(stored))

    async def endpoint(request: Request) -> Response:
        return await (write if request.method == "PUT" else read)(request)

    path = f"{PREFIX}/projects/{{project}}/delivery-settings"
    return [Route(path, endpoint, methods=["GET", "PUT"])]
