"""JSON error responses: every 4xx names the problem and, where there is one, the field."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from postroom.core.errors import (
    InvalidInput,
    NotFound,
    PendingDeliveries,
    PostroomError,
    StorageError,
)

# Messages listed in a 409 body (the counts cover all).
PENDING_LISTED = 1000


def json_error(status: int, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, str] = {"Error": message}
    if field:
        body["Field"] = field
    return JSONResponse(body, status_code=status)


async def handle_postroom_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotFound):
        return json_error(404, str(exc) or "not found")
    if isinstance(exc, InvalidInput):
        return json_error(400, str(exc), exc.field)
    if isinstance(exc, PendingDeliveries):
        return pending_deliveries(exc)
    if isinstance(exc, StorageError):
        return json_error(503, "storage unavailable, try again")
    assert isinstance(exc, PostroomError)
    return json_error(400, str(exc))


def pending_deliveries(exc: PendingDeliveries) -> JSONResponse:
    """409: the delete was refused whole because some messages still have recipients to
    deliver to; names them (at most PENDING_LISTED) with their pending recipients."""
    listed = list(exc.pending.items())[:PENDING_LISTED]
    body: dict[str, object] = {"Error": str(exc)}
    if exc.field:
        body["Field"] = exc.field
    body["PendingMessages"] = len(exc.pending)
    body["PendingDeliveries"] = exc.deliveries
    body["Pending"] = [
        {"ID": message_id, "Count": len(recipients), "Recipients": list(recipients)}
        for message_id, recipients in listed
    ]
    return JSONResponse(body, status_code=409)
