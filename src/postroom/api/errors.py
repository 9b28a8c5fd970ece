"""JSON error responses: every 4xx names the problem and, where there is one, the field."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from postroom.core.errors import InvalidInput, NotFound, PostroomError, StorageError


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
    if isinstance(exc, StorageError):
        return json_error(503, "storage unavailable, try again")
    assert isinstance(exc, PostroomError)
    return json_error(400, str(exc))
