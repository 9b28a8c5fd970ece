"""Stored capture routes: table `capture_routes`, one row per rule made in the admin pages or
through `/api/v2/capture-routes` (core/capture_routes.py says what a rule does). Rules go
with their project (ON DELETE CASCADE); `id` keeps the order they were made in.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table, delete, insert, select
from sqlalchemy.engine import Connection

from postroom.core.capture_routes import CaptureRoute, check_route
from postroom.core.errors import NotFound
from postroom.storage.schema import SeqType, metadata
from postroom.storage.sql_part import SqlPart

MAX_ROUTES = 1000  # every message of the capture door is matched against all of them

capture_routes = Table(
    "capture_routes",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("pattern", String(320), nullable=False),
    Column(
        "project",
        String(100),
        ForeignKey("projects.id", name="fk_capture_routes_project_projects", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_us", BigInteger, nullable=False),
)
_r = capture_routes.c


class SqlCaptureRoutes(SqlPart):
    part = "the capture routes"

    def list(self) -> list[CaptureRoute]:
        """Every stored rule, oldest first (the order they are tried in)."""
        stmt = select(_r.id, _r.kind, _r.pattern, _r.project).order_by(_r.id)

        def work(conn: Connection) -> list[CaptureRoute]:
            rows = conn.execute(stmt).all()
            return [CaptureRoute(r.kind, r.pattern, r.project, int(r.id)) for r in rows]

        return self._run(self._read, work)

    def add(self, kind: str, pattern: str, project: str, created_us: int) -> CaptureRoute:
        """Store a rule (checked: core/capture_routes.check_route); the caller has checked
        that the project exists and captures."""
        checked_kind, checked_pattern, checked_project = check_route(kind, pattern, project)

        def work(conn: Connection) -> CaptureRoute:
            count = conn.execute(select(_r.id).limit(MAX_ROUTES + 1)).all()
            if len(count) >= MAX_ROUTES:
                from postroom.core.errors import InvalidInput

                raise InvalidInput(f"at most {MAX_ROUTES} capture routes are kept", "pattern")
            result = conn.execute(
                insert(capture_routes).values(
                    kind=checked_kind,
                    pattern=checked_pattern,
                    project=checked_project,
                    created_us=created_us,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return CaptureRoute(checked_kind, checked_pattern, checked_project, int(key[0]))

        return self._run(self._write, work)

    def delete(self, route_id: int) -> None:
        """NotFound when there is no such rule."""

        def work(conn: Connection) -> None:
            if conn.execute(delete(capture_routes).where(_r.id == route_id)).rowcount == 0:
                raise NotFound(f"no capture route {route_id}")

        self._run(self._write, work)
