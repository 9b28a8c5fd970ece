"""JSON error responses: every 4xx/5xx names the problem and, where there is one, the field.

Refusals (core.errors.Refusal) are rendered here from their kind: the HTTP status, a
Retry-After for the refusals that pass with time (quota, rate, throttling, temporary failures),
and `{"Error": detail, "Field": ...}` where Field names the part of the request at fault or,
when none is, the kind of refusal (daily_quota, rate_limit, ...). The SMTP edge renders the
same refusals in smtp/refusals.py; the SES-compatible API will add its error names beside.
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from postroom.core.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PendingDeliveries,
    PostroomError,
    Refusal,
    RefusalKind,
    StorageError,
)

STATUS: dict[RefusalKind, int] = {
    RefusalKind.AUTH_REQUIRED: 401,
    RefusalKind.AUTH_INVALID: 401,
    RefusalKind.AUTH_THROTTLED: 429,
    RefusalKind.IDENTITY_NOT_VERIFIED: 403,
    RefusalKind.RELAY_DENIED: 403,
    RefusalKind.DESTINATION_NOT_ALLOWED: 400,
    RefusalKind.UNKNOWN_RECIPIENT: 400,
    RefusalKind.DAILY_QUOTA: 429,
    RefusalKind.RATE_LIMIT: 429,
    RefusalKind.CONTENT_INVALID: 400,
    RefusalKind.NOT_SIGNABLE: 400,
    RefusalKind.TOO_LARGE: 413,
    RefusalKind.PROJECT_GONE: 503,
    RefusalKind.TEMPORARY_FAILURE: 503,
    RefusalKind.STORAGE_UNAVAILABLE: 503,
    RefusalKind.SERVER_BUSY: 503,
    RefusalKind.INJECTED: 503,
    RefusalKind.SENDING_PAUSED: 403,
    RefusalKind.ACCOUNT_SUSPENDED: 403,
}

# Seconds to wait before trying again, when the refusal does not say.
RETRY_AFTER: dict[RefusalKind, float] = {
    RefusalKind.AUTH_THROTTLED: 60,
    RefusalKind.DAILY_QUOTA: 3600,
    RefusalKind.RATE_LIMIT: 1,
}
DEFAULT_RETRY_AFTER = 5.0  # other temporary refusals (503)

# Messages listed in a 409 body (the counts cover all).
PENDING_LISTED = 1000


def json_error(status: int, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, str] = {"Error": message}
    if field:
        body["Field"] = field
    return JSONResponse(body, status_code=status)


def refusal_response(refusal: Refusal) -> JSONResponse:
    """The HTTP rendering of a refusal."""
    status = STATUS[refusal.kind]
    response = json_error(status, refusal.detail, refusal.field or refusal.kind.value)
    if status in (429, 503):
        wait = refusal.retry_after
        if wait is None:
            wait = RETRY_AFTER.get(refusal.kind, DEFAULT_RETRY_AFTER)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


async def handle_postroom_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Refusal):
        return refusal_response(exc)
    if isinstance(exc, NotFound):
        return json_error(404, str(exc) or "not found")
    if isinstance(exc, PayloadTooLarge):
        # The rest of the body stays unread: the connection cannot serve another request.
        response = json_error(413, str(exc), exc.field)
        response.headers["Connection"] = "close"
        return response
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
