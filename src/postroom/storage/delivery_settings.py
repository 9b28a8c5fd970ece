"""A project's delivery settings: table `delivery_settings`, one row per project that changed
them (no row: the defaults): `bounce_notices`, whether the sender of a message gets a
delivery status notification (RFC 3464) when a recipient fails for good, and `ip_pool`, the
IP pool its deliveries go out from (delivery/pools.py; NULL: the default pool).

The row goes with its project (ON DELETE CASCADE).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Boolean, Column, ForeignKey, String, Table, insert, select, update
from sqlalchemy.engine import Connection

from postroom.core.errors import NotFound
from postroom.storage.schema import metadata
from postroom.storage.sql_part import SqlPart

delivery_settings = Table(
    "delivery_settings",
    metadata,
    Column(
        "project",
        String(100),
        ForeignKey("projects.id", name="fk_delivery_settings_project_projects", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("bounce_notices", Boolean(create_constraint=False), nullable=False),
    Column("ip_pool", String(63), nullable=True),
)
_s = delivery_settings.c


@dataclass(frozen=True, slots=True)
class DeliverySettingsRecord:
    project: str
    bounce_notices: bool = True
    ip_pool: str | None = None


class _Keep:
    """The marker of a setting `set` leaves as it is."""


KEEP = _Keep()


class SqlDeliverySettings(SqlPart):
    part = "the delivery settings"

    def get(self, project: str) -> DeliverySettingsRecord:
        stmt = select(_s.bounce_notices, _s.ip_pool).where(_s.project == project)

        def work(conn: Connection) -> DeliverySettingsRecord:
            found = conn.execute(stmt).first()
            if found is None:
                return DeliverySettingsRecord(project)
            return DeliverySettingsRecord(project, bool(found.bounce_notices), found.ip_pool)

        return self._run(self._read, work)

    def ip_pool(self, project: str) -> str | None:
        """The project's IP pool setting (None: the default)."""
        return self.get(project).ip_pool

    def set(
        self,
        project: str,
        bounce_notices: bool | _Keep = KEEP,
        *,
        ip_pool: str | _Keep | None = KEEP,
    ) -> DeliverySettingsRecord:
        """Change the settings given of an existing project (NotFound when there is none);
        the settings stored afterwards."""
        from postroom.storage.platform_store import projects

        changes: dict[str, Any] = {}
        if not isinstance(bounce_notices, _Keep):
            changes["bounce_notices"] = bounce_notices
        if not isinstance(ip_pool, _Keep):
            changes["ip_pool"] = ip_pool

        def work(conn: Connection) -> DeliverySettingsRecord:
            known = conn.execute(select(projects.c.id).where(projects.c.id == project)).scalar()
            if known is None:
                raise NotFound(f"project {project} not found")
            found = conn.execute(
                select(_s.bounce_notices, _s.ip_pool).where(_s.project == project)
            ).first()
            if found is None:
                before = DeliverySettingsRecord(project)
            else:
                before = DeliverySettingsRecord(project, bool(found.bounce_notices), found.ip_pool)
            after = replace(before, **changes)
            values = {"bounce_notices": after.bounce_notices, "ip_pool": after.ip_pool}
            if found is None:
                conn.execute(insert(delivery_settings).values(project=project, **values))
            elif changes:
                conn.execute(
                    update(delivery_settings).where(_s.project == project).values(**values)
                )
            return after

        return self._run(self._write, work)
