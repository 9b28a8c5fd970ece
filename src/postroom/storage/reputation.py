"""The reputation guard's storage: table `reputation` (one row per project the guard judged:
level, when it changed, from when its rates count, the figures of the last change), the counts
the rates are made of (read from the event log), and the changes of level, each written with
its `reputation` event and, for a pause or a resume, the project's `paused_us` /
`pause_reason` (which raise the platform's change counter) in one transaction.

Counts over the event log (index `ix_events_project_time`): `send` events (one per recipient
a live message was accepted for), `bounce` events whose detail says `"hard":true` (the address
itself failed: what SES's bounce rate counts) and `complaint` events.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    String,
    Table,
    Text,
    and_,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from postroom.core.errors import NotFound
from postroom.core.events import NewEvent
from postroom.core.reputation import Counts
from postroom.storage import codec
from postroom.storage import events as event_log
from postroom.storage.events import events
from postroom.storage.platform_store import projects
from postroom.storage.schema import messages, metadata
from postroom.storage.sql_part import SqlPart

reputation = Table(
    "reputation",
    metadata,
    Column(
        "project",
        String(100),
        ForeignKey("projects.id", name="fk_reputation_project_projects", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("level", String(16), nullable=False),  # ok, warning, paused
    Column("changed_us", BigInteger, nullable=False),
    Column("since_us", BigInteger, nullable=True),  # rates count from here (the last resume)
    Column("detail", Text, nullable=False),  # JSON: the figures of the last change
)
_r = reputation.c
_e = events.c
_HARD = '%"hard":true%'  # the event log's JSON is written without spaces (storage/events.py)
DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class ReputationState:
    project: str
    level: str = "ok"
    changed: datetime | None = None
    since: datetime | None = None
    detail: Mapping[str, Any] | None = None


def _counted() -> list[Any]:
    return [
        func.sum(case((_e.type == "send", 1), else_=0)),
        func.sum(case((and_(_e.type == "bounce", _e.detail.like(_HARD)), 1), else_=0)),
        func.sum(case((_e.type == "complaint", 1), else_=0)),
    ]


def _counts(row: Any) -> Counts:
    return Counts(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))


class SqlReputationStore(SqlPart):
    part = "the reputation store"

    # -- reads ------------------------------------------------------------------------------

    def counts(self, project: str, since: datetime, until: datetime | None = None) -> Counts:
        """Sends, hard bounces and complaints of `project` from `since` (inclusive) on."""
        conditions = [
            _e.project == project,
            _e.type.in_(("send", "bounce", "complaint")),
            _e.time_us >= codec.to_micros(since),
        ]
        if until is not None:
            conditions.append(_e.time_us < codec.to_micros(until))
        stmt = select(*_counted()).where(*conditions)
        return self._run(self._read, lambda conn: _counts(conn.execute(stmt).one()))

    def by_sending_domain(self, project: str, since: datetime) -> dict[str, Counts]:
        """The counts from `since` on per sending domain (the domain of the message's
        envelope sender, lower case; "" for the null sender), for the messages still stored
        (a message deleted or pruned takes its events out of this view)."""
        stmt = (
            select(messages.c.mail_from, *_counted())
            .select_from(events.join(messages, messages.c.id == _e.message_id))
            .where(
                _e.project == project,
                _e.type.in_(("send", "bounce", "complaint")),
                _e.time_us >= codec.to_micros(since),
            )
            .group_by(messages.c.mail_from)
        )

        def work(conn: Connection) -> dict[str, Counts]:
            out: dict[str, Counts] = {}
            for row in conn.execute(stmt):
                domain = str(row[0] or "").rpartition("@")[2].lower()
                found, have = _counts(row[1:]), out.get(domain, Counts())
                out[domain] = Counts(
                    have.sends + found.sends,
                    have.bounces + found.bounces,
                    have.complaints + found.complaints,
                )
            return out

        return self._run(self._read, work)

    def daily(self, project: str, since: datetime) -> builtins.list[tuple[datetime, Counts]]:
        """The counts of each UTC day from `since`'s day on that had any, oldest first."""
        day = _e.time_us // DAY_US
        start = codec.to_micros(since) // DAY_US * DAY_US
        stmt = (
            select(day.label("day"), *_counted())
            .where(
                _e.project == project,
                _e.type.in_(("send", "bounce", "complaint")),
                _e.time_us >= start,
            )
            .group_by(day)
            .order_by(day)
        )

        def work(conn: Connection) -> builtins.list[tuple[datetime, Counts]]:
            return [
                (codec.from_micros(int(row[0]) * DAY_US), _counts(row[1:]))
                for row in conn.execute(stmt)
            ]

        return self._run(self._read, work)

    def state(self, project: str) -> ReputationState:
        stmt = select(reputation).where(_r.project == project)

        def work(conn: Connection) -> ReputationState:
            row = conn.execute(stmt).first()
            return ReputationState(project) if row is None else _state(row)

        return self._run(self._read, work)

    def states(self) -> dict[str, ReputationState]:
        stmt = select(reputation)
        return self._run(
            self._read, lambda conn: {r.project: _state(r) for r in conn.execute(stmt)}
        )

    # -- changes ----------------------------------------------------------------------------

    def change(
        self,
        project: str,
        level: str,
        when: datetime,
        detail: Mapping[str, Any],
        *,
        expected: str,
        since: datetime | None = None,
        resumed: bool = False,
    ) -> bool:
        """Move `project` from level `expected` to `level`, with its `reputation` event (detail
        plus the level); pausing sets the project's pause, `resumed` clears it and makes the
        rates count from `since`. False (nothing written) when the level is no longer
        `expected` (another process changed it first); NotFound when the project is gone."""
        now_us = codec.to_micros(when)
        text = json.dumps(dict(detail), separators=(",", ":"), sort_keys=True)

        def work(conn: Connection) -> bool:
            if conn.execute(select(projects.c.id).where(projects.c.id == project)).first() is None:
                raise NotFound(f"no project {project!r}")
            row = conn.execute(select(_r.level, _r.since_us).where(_r.project == project)).first()
            current = "ok" if row is None else str(row.level)
            if current != expected:
                return False
            since_us = codec.to_micros(since) if since is not None else (row and row.since_us)
            values = {"level": level, "changed_us": now_us, "since_us": since_us, "detail": text}
            if row is None:
                conn.execute(insert(reputation).values(project=project, **values))
            else:
                conn.execute(update(reputation).where(_r.project == project).values(**values))
            if level == "paused":
                reason = str(detail.get("reason", ""))[:1000]
                conn.execute(
                    update(projects)
                    .where(projects.c.id == project)
                    .values(paused_us=now_us, pause_reason=reason)
                )
            elif resumed:
                conn.execute(
                    update(projects)
                    .where(projects.c.id == project)
                    .values(paused_us=None, pause_reason=None)
                )
            event_detail = {"level": "resumed" if resumed else level, **dict(detail)}
            event_log.write(conn, [NewEvent(project, "reputation", when, detail=event_detail)])
            return True

        return self._run(self._write, work)


def _state(row: Any) -> ReputationState:
    try:
        loaded = json.loads(row.detail)
    except ValueError:
        loaded = {}
    return ReputationState(
        row.project,
        row.level,
        codec.from_micros(row.changed_us),
        None if row.since_us is None else codec.from_micros(row.since_us),
        loaded if isinstance(loaded, dict) else {},
    )
