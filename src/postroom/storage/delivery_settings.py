"""A project's delivery settings: table `delivery_settings`, one row per project that changed
them (no row: the defaults). Today one setting: `bounce_notices`, whether the sender of a
message gets a delivery status notification (RFC 3464) when a recipient fails for good.

The row goes with its project (ON DELETE CASCADE).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Boolean, Column, ForeignKey, String, Table, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from postroom.core.errors import NotFound, StorageError
from postroom.storage.schema import metadata

T = TypeVar("T")

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
)
_s = delivery_settings.c


@dataclass(frozen=True, slots=True)
class DeliverySettingsRecord:
    project: str
    bounce_notices: bool = True


class SqlDeliverySettings:
    def __init__(
        self,
        read_engine: Engine,
        write_engine: Engine,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        self._read = read_engine
        self._write = write_engine
        self._lock = write_lock or contextlib.nullcontext()

    def _run(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        lock = self._lock if engine is self._write else contextlib.nullcontext()
        try:
            with lock, engine.begin() as conn:
                return work(conn)
        except SQLAlchemyError as exc:
            raise StorageError(f"the delivery settings failed: {exc}") from exc

    def get(self, project: str) -> DeliverySettingsRecord:
        stmt = select(_s.bounce_notices).where(_s.project == project)

        def work(conn: Connection) -> DeliverySettingsRecord:
            found = conn.execute(stmt).scalar()
            return DeliverySettingsRecord(project, True if found is None else bool(found))

        return self._run(self._read, work)

    def set(self, project: str, bounce_notices: bool) -> DeliverySettingsRecord:
        """Store the settings of an existing project (NotFound when there is none)."""
        from postroom.storage.platform_store import projects

        def work(conn: Connection) -> DeliverySettingsRecord:
            known = conn.execute(select(projects.c.id).where(projects.c.id == project)).scalar()
            if known is None:
                raise NotFound(f"project {project} not found")
            changed = conn.execute(
                update(delivery_settings)
                .where(_s.project == project)
                .values(bounce_notices=bounce_notices)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(delivery_settings).values(project=project, bounce_notices=bounce_notices)
                )
            return DeliverySettingsRecord(project, bounce_notices)

        return self._run(self._write, work)
