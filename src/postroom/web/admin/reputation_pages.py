"""The admin pages' Reputation tab of a project (reputation/guard.py): its level, the pause
with its reason and a Resume button (a CSRF-checked form, like every admin form), the bounce
and complaint rates over 24 hours, 7 days and 30 days and the window the guard judges, the
thresholds, and a chart over time: the daily bounce and complaint rates of the last 30 days
as an SVG drawn here (no script), with the same figures in a table beside it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from postroom.api.auth import principal_of
from postroom.reputation.guard import ReputationGuard
from postroom.web.admin.routes import AdminPages

DONE = {"resumed": "Sending resumed: the rates count from now on."}
WIDTH, HEIGHT = 600, 160  # the chart's drawing area (SVG user units)


def chart(daily: list[dict[str, Any]], thresholds: dict[str, Any]) -> dict[str, Any]:
    """Polylines (SVG points) of the daily bounce and complaint rates, scaled so that the
    pause rate of each is at the same height, and the y of the two threshold lines."""
    pause_b = float(thresholds["bounce_rate"]["pause"]) or 1.0
    pause_c = float(thresholds["complaint_rate"]["pause"]) or 1.0
    top = max(
        [1.25]
        + [float(d["bounce_rate"]) / pause_b for d in daily]
        + [float(d["complaint_rate"]) / pause_c for d in daily]
    )
    count = len(daily)

    def x(i: int) -> float:
        return round(WIDTH * (i + 0.5) / count, 1) if count else 0.0

    def y(share: float) -> float:
        return round(HEIGHT - HEIGHT * share / top, 1)

    def line(key: str, pause: float) -> str:
        return " ".join(f"{x(i)},{y(d[key] / pause)}" for i, d in enumerate(daily))

    return {
        "width": WIDTH,
        "height": HEIGHT,
        "bounces": line("bounce_rate", pause_b),
        "complaints": line("complaint_rate", pause_c),
        "pause_y": y(1.0),
        "warn_y": y(float(thresholds["bounce_rate"]["warn"]) / pause_b),
        "points": [
            {"x": x(i), "yb": y(d["bounce_rate"] / pause_b), "yc": y(d["complaint_rate"] / pause_c)}
            for i, d in enumerate(daily)
        ],
    }


class ReputationPages:
    def __init__(self, pages: AdminPages, guard: ReputationGuard) -> None:
        self.pages = pages
        self.guard = guard

    async def page(self, request: Request) -> Response:
        pages = self.pages
        project = await pages._project(request)
        report = await pages.run(self.guard.report, project)
        return await pages.render(
            request,
            "reputation.html",
            project=project,
            tab="reputation",
            report=report,
            chart=chart(report["daily"], report["thresholds"]),
            done_notice=DONE.get(request.query_params.get("done", "")),
        )

    async def resume(self, request: Request) -> Response:
        pages = self.pages
        project = await pages._project(request)
        await pages.run(self.guard.resume, project.id, principal_of(request).username)
        return pages.redirect(f"/admin/projects/{quote(project.id)}/reputation?done=resumed")


def reputation_routes(pages: AdminPages, guard: ReputationGuard) -> list[BaseRoute]:
    handlers = ReputationPages(pages, guard)
    base = "/admin/projects/{project}/reputation"
    return [
        Route(base, handlers.page, methods=["GET", "HEAD"]),
        Route(base + "/resume", handlers.resume, methods=["POST"]),
    ]
