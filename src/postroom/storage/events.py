"""The durable event log: table `events` and `SqlEventStore`, the EventStore port.

Rows are written by whoever makes the change they record, in that change's transaction:
the batch writer (batch.py) writes a message's `send` events with the message and its queue
entries; the queue (queue.py) writes delivery results with the entry's new state. This module
only reads them (and builds the rows others insert).

No foreign key to `messages`: the log outlives the messages it tells about (retention and
deletion of messages leave their history). `recipient_lc` is the lower-cased recipient that
the recipient filter matches. Times are integer microseconds since the epoch (UTC).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Column, Index, String, Table, Text, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from postroom.core.errors import InvalidInput, NotFound, StorageError
from postroom.core.events import (
    MAX_EVENT_PAGE,
    Event,
    EventPage,
    EventQuery,
    NewEvent,
    check_types,
)
from postroom.core.ports import EventStore
from postroom.storage import codec
from postroom.storage.schema import SeqType, metadata

T = TypeVar("T")

events = Table(
    "events",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("project", String(100), nullable=False),
    Column("message_id", String(26), nullable=True),
    Column("recipient", Text, nullable=True),
    Column("recipient_lc", Text, nullable=True),
    Column("type", String(16), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("detail", Text, nullable=False),  # JSON object
)
Index("ix_events_project_id", events.c.project, events.c.id)
Index("ix_events_project_time", events.c.project, events.c.time_us)
Index("ix_events_project_recipient", events.c.project, events.c.recipient_lc)
Index("ix_events_message_id", events.c.message_id)

_e = events.c

# The columns the batch writer fills, in `row()` order.
INSERT_COLUMNS = ("project", "message_id", "recipient", "recipient_lc", "type", "time_us", "detail")
EventRow = tuple[str, str | None, str | None, str | None, str, int, str]


def row(event: NewEvent) -> EventRow:
    """The row of a new event (INSERT_COLUMNS order)."""
    recipient = event.recipient
    return (
        event.project,
        event.message_id,
        recipient,
        None if recipient is None else recipient.lower(),
        event.type,
        codec.to_micros(event.time),
        json.dumps(dict(event.detail), separators=(",", ":"), ensure_ascii=False),
    )


def write(conn: Connection, new: Sequence[NewEvent]) -> None:
    """Insert events in the caller's transaction."""
    if new:
        conn.execute(insert(events), [dict(zip(INSERT_COLUMNS, row(e), strict=True)) for e in new])


def _event(found: Any) -> Event:
    detail: Mapping[str, Any]
    try:
        loaded = json.loads(found.detail)
        detail = loaded if isinstance(loaded, dict) else {}
    except ValueError:
        detail = {}
    return Event(
        id=int(found.id),
        project=found.project,
        type=found.type,
        time=codec.from_micros(found.time_us),
        message_id=found.message_id,
        recipient=found.recipient,
        detail=detail,
    )


class SqlEventStore:
    """The EventStore port on the message store's database (reads only)."""

    def __init__(self, read_engine: Engine) -> None:
        self._read = read_engine

    def _run(self, work: Callable[[Connection], T]) -> T:
        try:
            with self._read.connect() as conn:
                return work(conn)
        except SQLAlchemyError as exc:  # NotFound passes through
            raise StorageError(f"the event log failed: {type(exc).__name__}: {exc}") from exc

    def query(self, project: str, query: EventQuery) -> EventPage:
        if not 1 <= query.limit <= MAX_EVENT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_EVENT_PAGE}", "limit")
        conditions = [_e.project == project]
        if query.types:
            conditions.append(_e.type.in_(check_types(query.types)))
        if query.recipient is not None:
            conditions.append(_e.recipient_lc == query.recipient.lower())
        if query.message_id is not None:
            conditions.append(_e.message_id == query.message_id)
        if query.since is not None:
            conditions.append(_e.time_us >= codec.to_micros(query.since))
        if query.until is not None:
            conditions.append(_e.time_us < codec.to_micros(query.until))
        if query.after is not None:
            conditions.append(_e.id > query.after)
        order = _e.id.desc() if query.newest_first else _e.id
        stmt = select(events).where(*conditions).order_by(order).limit(query.limit + 1)

        def work(conn: Connection) -> EventPage:
            found = [_event(r) for r in conn.execute(stmt)]
            more = len(found) > query.limit
            page = tuple(found[: query.limit])
            return EventPage(page, page[-1].id if more and not query.newest_first else None)

        return self._run(work)

    def get(self, project: str, event_id: int) -> Event:
        """One event of the project (NotFound otherwise)."""

        def work(conn: Connection) -> Event:
            found = conn.execute(
                select(events).where(_e.project == project, _e.id == event_id)
            ).first()
            if found is None:
                raise NotFound(f"event {event_id} not found in project {project}")
            return _event(found)

        return self._run(work)

    def for_message(self, project: str, message_id: str) -> list[Event]:
        """Every event of one message, oldest first (a message has a bounded number)."""
        stmt = (
            select(events).where(_e.project == project, _e.message_id == message_id).order_by(_e.id)
        )
        return self._run(lambda conn: [_event(r) for r in conn.execute(stmt)])


def _conforms_to_the_port(store: SqlEventStore) -> EventStore:
    """Never called: makes mypy check that SqlEventStore implements EventStore."""
    return store
