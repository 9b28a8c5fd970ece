"""Capture routes as the admin pages and `/api/v2/capture-routes` change them: each rule
checked (core/capture_routes.py), into an existing capture project only, stored, and the
capture door told at once (another process's door reads them again within 5 seconds)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from postroom.core.capture_routes import CaptureRoute, check_route
from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.platform import Project
from postroom.storage.capture_routes import SqlCaptureRoutes


@dataclass(frozen=True, slots=True)
class RouteList:
    options: tuple[CaptureRoute, ...]  # --capture-route, tried first, not changeable here
    stored: tuple[CaptureRoute, ...]


class CaptureRouteService:
    def __init__(
        self,
        store: SqlCaptureRoutes,
        project: Callable[[str], Project],
        clock: Clock,
        options: Sequence[CaptureRoute] = (),
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._project = project
        self._clock = clock
        self.options = tuple(options)
        self._changed = changed

    def list(self) -> RouteList:
        return RouteList(self.options, tuple(self._store.list()))

    def add(self, kind: object, pattern: object, project: object) -> CaptureRoute:
        """InvalidInput naming Kind, Pattern or Project (unknown or live project)."""
        checked = check_route(kind, pattern, project)
        try:
            target = self._project(checked[2])
        except NotFound:
            raise InvalidInput(f"there is no project {checked[2]!r}", "project") from None
        if target.mode != "capture":
            raise InvalidInput(
                f"project {target.id!r} is a live project: capture routes lead into capture "
                "projects only",
                "project",
            )
        created_us = int(self._clock.now().timestamp() * 1_000_000)
        route = self._store.add(*checked, created_us)
        self._changed()
        return route

    def delete(self, route_id: int) -> None:
        self._store.delete(route_id)
        self._changed()
