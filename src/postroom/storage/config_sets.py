"""SES configuration sets and their event destinations (core/config_sets.py): tables
`ses_configuration_sets`, `ses_event_destinations` and `SqlConfigSetStore`.

Routing happens in the database, as the webhooks' fan-out does (storage/webhooks.py): the
trigger on `events` (migration 0021) adds, for an event of a message whose tags name a
configuration set (`ses:configuration-set:NAME`, in `message_tags`, written in the message's
transaction before its events), one outbox row per enabled webhook named by an enabled event
destination of that set matching the event's type; and leaves webhooks named by any event
destination out of the project-wide fan-out. Names are matched case-insensitively (`*_lc`).

Sets and destinations go with their project, destinations with their set and their webhook
(ON DELETE CASCADE, and explicitly for a set). Times are integer microseconds (UTC).
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from postroom.core.config_sets import (
    MAX_CONFIGURATION_SETS,
    MAX_EVENT_DESTINATIONS,
    ConfigurationSet,
    EventDestination,
)
from postroom.core.errors import (
    AlreadyExists,
    InvalidInput,
    LimitExceeded,
    NotFound,
)
from postroom.core.webhooks import types_column, types_of
from postroom.storage import codec
from postroom.storage.schema import metadata
from postroom.storage.sql_part import SqlPart
from postroom.storage.webhooks import webhooks

configuration_sets = Table(
    "ses_configuration_sets",
    metadata,
    Column(
        "project",
        String(100),
        ForeignKey(
            "projects.id", name="fk_ses_configuration_sets_project_projects", ondelete="CASCADE"
        ),
        nullable=False,
    ),
    Column("name", String(64), nullable=False),
    Column("name_lc", String(64), nullable=False),
    Column("options", Text, nullable=False),  # JSON object: OPTION_FIELDS as given
    Column("tags", Text, nullable=False),  # JSON [[key, value], ...]
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("project", "name_lc", name="pk_ses_configuration_sets"),
)

event_destinations = Table(
    "ses_event_destinations",
    metadata,
    Column(
        "project",
        String(100),
        ForeignKey(
            "projects.id", name="fk_ses_event_destinations_project_projects", ondelete="CASCADE"
        ),
        nullable=False,
    ),
    Column("set_lc", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("name_lc", String(64), nullable=False),
    Column("enabled", Boolean(create_constraint=False), nullable=False),
    Column("matching", Text, nullable=False),  # ",SEND,BOUNCE," (SES's names)
    Column("types", Text, nullable=False),  # ",send,bounce,expired,suppressed," (the trigger's)
    Column(
        "webhook_id",
        String(26),
        ForeignKey(
            "webhooks.id", name="fk_ses_event_destinations_webhook_id_webhooks", ondelete="CASCADE"
        ),
        nullable=False,
    ),
    Column("topic_arn", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("project", "set_lc", "name_lc", name="pk_ses_event_destinations"),
)
Index("ix_ses_event_destinations_webhook_id", event_destinations.c.webhook_id)

_s = configuration_sets.c
_d = event_destinations.c
_w = webhooks.c


def _set(row: Any) -> ConfigurationSet:
    try:
        options = json.loads(row.options)
        tags = tuple((str(k), str(v)) for k, v in json.loads(row.tags))
    except (ValueError, TypeError):
        options, tags = {}, ()
    return ConfigurationSet(
        project=row.project,
        name=row.name,
        created=codec.from_micros(row.created_us),
        options=options if isinstance(options, dict) else {},
        tags=tags,
    )


def _destination(row: Any, set_name: str) -> EventDestination:
    return EventDestination(
        project=row.project,
        configuration_set=set_name,
        name=row.name,
        enabled=bool(row.enabled),
        matching=types_of(row.matching),
        webhook_id=row.webhook_id,
        topic_arn=row.topic_arn,
        created=codec.from_micros(row.created_us),
    )


def _missing(name: str) -> NotFound:
    return NotFound(f"Configuration set <{name}> does not exist.")


class SqlConfigSetStore(SqlPart):
    """Configuration sets and event destinations on the message store's database (reads on
    `read_engine`, changes on `write_engine` under `write_lock`, as SqlWebhookStore)."""

    part = "the configuration sets"

    @staticmethod
    def _set_row(conn: Connection, project: str, name: str) -> Any:
        row = conn.execute(
            select(configuration_sets).where(_s.project == project, _s.name_lc == name.lower())
        ).first()
        if row is None:
            raise _missing(name)
        return row

    # -- configuration sets ----------------------------------------------------------------

    def create(self, made: ConfigurationSet) -> ConfigurationSet:
        """Store a new set of an existing project: AlreadyExists when the name is taken
        (case-insensitively), LimitExceeded beyond MAX_CONFIGURATION_SETS."""
        from postroom.storage.platform_store import projects

        def work(conn: Connection) -> ConfigurationSet:
            p = projects.c
            if conn.execute(select(p.id).where(p.id == made.project)).scalar() is None:
                raise NotFound(f"project {made.project} not found")
            taken = conn.execute(
                select(_s.name).where(_s.project == made.project, _s.name_lc == made.name.lower())
            ).scalar()
            if taken is not None:
                raise AlreadyExists(
                    f"Configuration set <{made.name}> already exists.", "ConfigurationSetName"
                )
            count = conn.execute(
                select(func.count()).where(_s.project == made.project)
            ).scalar_one()
            if count >= MAX_CONFIGURATION_SETS:
                raise LimitExceeded(
                    f"a project has at most {MAX_CONFIGURATION_SETS} configuration sets",
                    "ConfigurationSetName",
                )
            conn.execute(
                insert(configuration_sets).values(
                    project=made.project,
                    name=made.name,
                    name_lc=made.name.lower(),
                    options=json.dumps(dict(made.options), separators=(",", ":")),
                    tags=json.dumps([list(t) for t in made.tags], separators=(",", ":")),
                    created_us=codec.to_micros(made.created),
                )
            )
            return made

        return self._run(self._write, work)

    def get(self, project: str, name: str) -> ConfigurationSet:
        """The project's set (NotFound: SES's "Configuration set <name> does not exist.")."""
        return self._run(self._read, lambda conn: _set(self._set_row(conn, project, name)))

    def list(self, project: str) -> builtins.list[ConfigurationSet]:
        stmt = select(configuration_sets).where(_s.project == project).order_by(_s.name_lc)
        return self._run(self._read, lambda conn: [_set(r) for r in conn.execute(stmt)])

    def delete(self, project: str, name: str) -> None:
        """Delete a set and its event destinations (NotFound when there is none)."""

        def work(conn: Connection) -> None:
            gone = conn.execute(
                delete(configuration_sets).where(_s.project == project, _s.name_lc == name.lower())
            ).rowcount
            if not gone:
                raise _missing(name)
            conn.execute(
                delete(event_destinations).where(_d.project == project, _d.set_lc == name.lower())
            )

        self._run(self._write, work)

    # -- event destinations -----------------------------------------------------------------

    @staticmethod
    def _check_webhook(conn: Connection, project: str, webhook_id: str) -> None:
        found = conn.execute(
            select(_w.id).where(_w.project == project, _w.id == webhook_id)
        ).scalar()
        if found is None:
            raise InvalidInput(
                f"SnsDestination.TopicArn names webhook {webhook_id}, which this project does "
                "not have (create it first: POST /api/v2/projects/{project}/webhooks)",
                "SnsDestination.TopicArn",
            )

    def add_destination(self, made: EventDestination) -> EventDestination:
        """Add an event destination to an existing set: NotFound (no set), AlreadyExists,
        LimitExceeded beyond MAX_EVENT_DESTINATIONS, InvalidInput when the webhook is not the
        project's."""

        def work(conn: Connection) -> EventDestination:
            found = self._set_row(conn, made.project, made.configuration_set)
            set_lc = found.name_lc
            taken = conn.execute(
                select(_d.name).where(
                    _d.project == made.project,
                    _d.set_lc == set_lc,
                    _d.name_lc == made.name.lower(),
                )
            ).scalar()
            if taken is not None:
                raise AlreadyExists(
                    f"Event destination <{made.name}> already exists in configuration set "
                    f"<{found.name}>.",
                    "EventDestinationName",
                )
            count = conn.execute(
                select(func.count()).where(_d.project == made.project, _d.set_lc == set_lc)
            ).scalar_one()
            if count >= MAX_EVENT_DESTINATIONS:
                raise LimitExceeded(
                    f"a configuration set has at most {MAX_EVENT_DESTINATIONS} event destinations",
                    "EventDestinationName",
                )
            self._check_webhook(conn, made.project, made.webhook_id)
            conn.execute(
                insert(event_destinations).values(
                    project=made.project,
                    set_lc=set_lc,
                    name=made.name,
                    name_lc=made.name.lower(),
                    enabled=made.enabled,
                    matching=types_column(made.matching),
                    types=types_column(made.types) if made.types else ",",
                    webhook_id=made.webhook_id,
                    topic_arn=made.topic_arn,
                    created_us=codec.to_micros(made.created),
                )
            )
            return made

        return self._run(self._write, work)

    def destinations(self, project: str, set_name: str) -> builtins.list[EventDestination]:
        def work(conn: Connection) -> builtins.list[EventDestination]:
            found = self._set_row(conn, project, set_name)
            rows = conn.execute(
                select(event_destinations)
                .where(_d.project == project, _d.set_lc == found.name_lc)
                .order_by(_d.name_lc)
            )
            return [_destination(r, found.name) for r in rows]

        return self._run(self._read, work)

    def update_destination(self, changed: EventDestination) -> EventDestination:
        """Replace a destination's definition (NotFound for no set or no such destination)."""

        def work(conn: Connection) -> EventDestination:
            found = self._set_row(conn, changed.project, changed.configuration_set)
            self._check_webhook(conn, changed.project, changed.webhook_id)
            done = conn.execute(
                update(event_destinations)
                .where(
                    _d.project == changed.project,
                    _d.set_lc == found.name_lc,
                    _d.name_lc == changed.name.lower(),
                )
                .values(
                    enabled=changed.enabled,
                    matching=types_column(changed.matching),
                    types=types_column(changed.types) if changed.types else ",",
                    webhook_id=changed.webhook_id,
                    topic_arn=changed.topic_arn,
                )
            ).rowcount
            if not done:
                raise NotFound(
                    f"Event destination <{changed.name}> does not exist in configuration set "
                    f"<{found.name}>."
                )
            return changed

        return self._run(self._write, work)

    def delete_destination(self, project: str, set_name: str, name: str) -> None:
        def work(conn: Connection) -> None:
            found = self._set_row(conn, project, set_name)
            gone = conn.execute(
                delete(event_destinations).where(
                    _d.project == project,
                    _d.set_lc == found.name_lc,
                    _d.name_lc == name.lower(),
                )
            ).rowcount
            if not gone:
                raise NotFound(
                    f"Event destination <{name}> does not exist in configuration set "
                    f"<{found.name}>."
                )

        self._run(self._write, work)


__all__ = ["SqlConfigSetStore", "configuration_sets", "event_destinations"]
