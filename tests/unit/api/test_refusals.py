"""Refusals rendered over HTTP by the API's error handler (a real Starlette app and client)."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postroom.api.errors import STATUS, handle_postroom_error
from postroom.core.errors import PostroomError, Refusal, RefusalKind
from postroom.doors.submission import AUTH_REQUIRED
from postroom.pipeline.headers import NO_FROM, HeaderError
from postroom.pipeline.projects import NO_PROJECT
from postroom.pipeline.quota import DAILY_EXCEEDED, RATE_EXCEEDED
from postroom.smtp.refusals import REPLIES


async def post_raising(refusal: Exception) -> httpx.Response:
    """POST to an app whose route raises `refusal`, through the API's error handler."""

    async def send(request: Request) -> Response:
        raise refusal

    app = Starlette(
        routes=[Route("/send", send, methods=["POST"])],
        exception_handlers={PostroomError: handle_postroom_error},
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.post("/send", json={})


@pytest.mark.parametrize(
    ("refusal", "status", "body", "retry_after"),
    [
        (
            DAILY_EXCEEDED,
            429,
            {"Error": "Throttling failure: Daily message quota exceeded", "Field": "daily_quota"},
            "3600",
        ),
        (
            RATE_EXCEEDED,
            429,
            {"Error": "Throttling failure: Maximum sending rate exceeded", "Field": "rate_limit"},
            "1",
        ),
        (
            HeaderError(NO_FROM, "From"),
            400,
            {"Error": NO_FROM, "Field": "From"},
            None,
        ),
        (
            Refusal(
                RefusalKind.IDENTITY_NOT_VERIFIED, "Email address is not verified", field="From"
            ),
            403,
            {"Error": "Email address is not verified", "Field": "From"},
            None,
        ),
        (AUTH_REQUIRED, 401, {"Error": "Authentication required", "Field": "auth_required"}, None),
        (NO_PROJECT, 503, {"Error": NO_PROJECT.detail, "Field": "project_gone"}, "5"),
        (
            Refusal(RefusalKind.TOO_LARGE, "The message is larger than 40 MB", field="body"),
            413,
            {"Error": "The message is larger than 40 MB", "Field": "body"},
            None,
        ),
    ],
)
async def test_refusals_become_statuses_with_json_naming_the_problem(
    refusal: Refusal, status: int, body: dict[str, str], retry_after: str | None
) -> None:
    response = await post_raising(refusal)
    assert response.status_code == status
    assert response.json() == body
    assert response.headers.get("retry-after") == retry_after


async def test_a_temporary_quota_refusal_is_never_a_400_with_an_smtp_code() -> None:
    response = await post_raising(DAILY_EXCEEDED)
    assert response.status_code == 429
    assert "454" not in response.text and "4.7.0" not in response.text


def test_every_kind_has_a_rendering_at_every_edge() -> None:
    assert set(STATUS) == set(RefusalKind)
    assert set(REPLIES) == set(RefusalKind)
