"""What operators do with a project's queue: look at it (per state, per domain, entry lists)
and act on entries, one or many (by a QueueFilter): retry now, hold, release, cancel.

Actions touch only entries not leased to a worker at the time (a delivery in flight ends as
its worker reports); the ids changed are returned. Each action commits per chunk of
CHUNK entries. Cancelling writes a `cancelled` event per entry and sets its message's status
in the chunk's transaction, as every finishing report does (queue.py). Retry and release
make their entries due at once: the queue's `DueSignal` is told after each chunk's commit.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from postroom.core.errors import InvalidInput
from postroom.core.events import NewEvent
from postroom.core.ports import QueueAdmin
from postroom.core.types import (
    CANCELLED,
    DELIVERED,
    FAILED,
    HELD,
    PENDING_STATES,
    QUEUE_ACTIONS,
    QUEUED,
    DomainQueue,
    QueueAction,
    QueueEntry,
    QueueFilter,
    QueueSummary,
)
from postroom.storage import codec
from postroom.storage import events as event_log
from postroom.storage.queue import DueSignal, entry_from_row, queue_entries, refresh_status
from postroom.storage.sql_part import SqlPart

CHUNK = 500
MAX_LISTED = 1000
CANCELLED_TEXT = "Cancelled by an operator"

_q = queue_entries.c


def state_condition(state: str) -> ColumnElement[bool]:
    if state == "queued":
        return and_(_q.status == QUEUED, _q.attempts == 0)
    if state == "deferred":
        return and_(_q.status == QUEUED, _q.attempts > 0)
    if state in (HELD, DELIVERED, FAILED, CANCELLED):
        return _q.status == state
    raise InvalidInput(f"unknown queue state {state!r}", "state")


def filter_conditions(project: str, wanted: QueueFilter) -> list[ColumnElement[bool]]:
    """The conditions of `wanted` on `queue_entries`, always within `project`."""
    if wanted.empty and not wanted.everything:
        raise InvalidInput(
            "say which entries: ids, messages, domain, recipient or state (or all)", "filter"
        )
    conditions: list[ColumnElement[bool]] = [_q.project == project]
    if wanted.entry_ids:
        conditions.append(_q.id.in_(wanted.entry_ids))
    if wanted.message_ids:
        conditions.append(_q.message_id.in_(wanted.message_ids))
    if wanted.domain:
        conditions.append(_q.domain == wanted.domain.lower().rstrip("."))
    if wanted.recipient:
        conditions.append(func.lower(_q.recipient) == wanted.recipient.lower())
    if wanted.state:
        conditions.append(state_condition(wanted.state))
    return conditions


def _unleased(now_us: int) -> ColumnElement[bool]:
    return or_(_q.lease_expires_us.is_(None), _q.lease_expires_us <= now_us)


class SqlQueueAdmin(SqlPart):
    part = "the queue"

    def __init__(
        self,
        read_engine: Engine,
        write_engine: Engine,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
        due: DueSignal | None = None,
    ) -> None:
        super().__init__(read_engine, write_engine, write_lock)
        self._due = due or DueSignal()

    # -- views -----------------------------------------------------------------------------

    def summary(self, project: str) -> QueueSummary:
        one = literal(1)

        def count(condition: ColumnElement[bool]) -> Any:
            return func.coalesce(func.sum(case((condition, one), else_=0)), 0)

        states = ("queued", "deferred", HELD, DELIVERED, FAILED, CANCELLED)
        totals = select(*(count(state_condition(s)) for s in states)).where(_q.project == project)
        per_domain = (
            select(
                _q.domain,
                count(_q.status == QUEUED),
                count(_q.status == HELD),
                func.min(_q.created_us),
                func.min(case((_q.status == QUEUED, _q.next_attempt_us), else_=None)),
            )
            .where(_q.project == project, _q.status.in_(PENDING_STATES))
            .group_by(_q.domain)
            .order_by(func.count().desc(), _q.domain)
            .limit(MAX_LISTED)
        )

        def work(conn: Connection) -> QueueSummary:
            counts = conn.execute(totals).one()
            domains = []
            for domain, queued, held, oldest, due in conn.execute(per_domain):
                last = conn.execute(
                    select(_q.last_error)
                    .where(
                        _q.project == project,
                        _q.domain == domain,
                        _q.status.in_(PENDING_STATES),
                        _q.last_error.is_not(None),
                    )
                    .order_by(_q.id.desc())
                    .limit(1)
                ).scalar()
                domains.append(
                    DomainQueue(
                        domain,
                        int(queued),
                        int(held),
                        codec.from_micros(int(oldest)),
                        None if due is None else codec.from_micros(int(due)),
                        last,
                    )
                )
            return QueueSummary(
                {s: int(c) for s, c in zip(states, counts, strict=True)}, tuple(domains)
            )

        return self._run(self._read, work)

    def find(
        self, project: str, wanted: QueueFilter, after: int = 0, limit: int = 100
    ) -> builtins.list[QueueEntry]:
        """Entries matching `wanted`, in id order, with an id above `after`."""
        if not 1 <= limit <= MAX_LISTED:
            raise InvalidInput(f"limit must be between 1 and {MAX_LISTED}", "limit")
        conditions = filter_conditions(project, wanted)
        stmt = select(queue_entries).where(*conditions, _q.id > after).order_by(_q.id).limit(limit)
        return self._run(self._read, lambda conn: [entry_from_row(r) for r in conn.execute(stmt)])

    # -- actions ---------------------------------------------------------------------------

    def act(
        self, project: str, action: QueueAction, wanted: QueueFilter, now: datetime
    ) -> builtins.list[int]:
        """Apply `action` to the entries `wanted` selects that it applies to (retry and hold:
        queued or deferred; release: held; cancel: any pending) and that no worker holds;
        the ids changed, in id order."""
        if action not in QUEUE_ACTIONS:
            raise InvalidInput(f"unknown action {action!r}", "action")
        now_us = codec.to_micros(now)
        conditions = filter_conditions(project, wanted)
        eligible: dict[str, Sequence[str]] = {
            "retry": (QUEUED,),
            "hold": (QUEUED,),
            "release": (HELD,),
            "cancel": PENDING_STATES,
        }
        values: dict[str, dict[str, Any]] = {
            "retry": {"next_attempt_us": now_us},
            "hold": {"status": HELD},
            "release": {"status": QUEUED, "next_attempt_us": now_us},
            "cancel": {"status": CANCELLED, "finished_us": now_us, "last_error": CANCELLED_TEXT},
        }
        where = and_(*conditions, _q.status.in_(eligible[action]), _unleased(now_us))
        changed: builtins.list[int] = []
        after = 0
        while True:
            chunk_ids = self._run(
                self._read,
                lambda conn, after=after: [  # type: ignore[misc]
                    int(i)
                    for i in conn.execute(
                        select(_q.id).where(where, _q.id > after).order_by(_q.id).limit(CHUNK)
                    ).scalars()
                ],
            )
            if not chunk_ids:
                return changed
            after = chunk_ids[-1]
            stmt = (
                update(queue_entries)
                .where(where, _q.id.in_(chunk_ids))
                .values(**values[action])
                .returning(_q.id, _q.message_id, _q.recipient)
            )

            def work(conn: Connection, stmt: Any = stmt) -> builtins.list[int]:
                rows = conn.execute(stmt).all()
                if action == "cancel" and rows:
                    event_log.write(
                        conn,
                        [
                            NewEvent(
                                project,
                                "cancelled",
                                now,
                                message_id,
                                recipient,
                                {"text": CANCELLED_TEXT},
                            )
                            for _, message_id, recipient in rows
                        ],
                    )
                    for message_id in sorted({m for _, m, _ in rows}):
                        refresh_status(conn, message_id)
                return [int(i) for i, _, _ in rows]

            done = self._run(self._write, work)
            changed.extend(sorted(done))
            if done and action in ("retry", "release"):
                self._due(now)


def _conforms_to_the_port(admin: SqlQueueAdmin) -> QueueAdmin:
    """Never called: makes mypy check that SqlQueueAdmin implements QueueAdmin."""
    return admin
