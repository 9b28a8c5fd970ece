"""Webhooks and their outbox: tables `webhooks`, `webhook_outbox`, `webhook_requests` and
`SqlWebhookStore`.

Fan-out: migration 0013 puts a trigger on `events` that inserts one `webhook_outbox` row per
enabled webhook of the event's project subscribed to the event's type. The row is written by
the statement that writes the event, so in its transaction, whoever the writer is (the batch
writer, its child process, the queue's reports, the operators' actions, the inbound MX door).
A webhook created later gets no earlier events; a disabled one gets none while disabled.

Delivery: a worker claims due rows with a lease (`lease_owner`, `lease_expires_us`, as the
queue does: storage/queue.py), `FOR UPDATE SKIP LOCKED` on PostgreSQL, one claimer at a time
on SQLite. Order per message: a row is due only while no earlier pending row of the same
webhook and message exists, so a later event of a message waits until the earlier one was
delivered or given up. Reports apply only while the row is pending and leased to the
reporter; each writes the request log row (`webhook_requests`) in the same transaction. A
failure is retried (core/webhooks.py: `retry_delay`) until RETRY_WINDOW has passed since the
event, then given up; a webhook whose requests all failed for DISABLE_AFTER is disabled with a
`webhook_disabled` event.

Rows go with their webhook, and webhooks with their project (ON DELETE CASCADE). Times are
integer microseconds since the epoch (UTC).
"""

from __future__ import annotations

import builtins
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import aliased

from postroom.core.errors import InvalidInput, NotFound
from postroom.core.events import NewEvent
from postroom.core.webhooks import (
    DISABLE_AFTER,
    GIVEN_UP,
    MAX_WEBHOOKS_PER_PROJECT,
    PENDING,
    RETRY_WINDOW,
    SENT,
    Attempted,
    OutboxItem,
    RequestRecord,
    Webhook,
    retry_delay,
    types_column,
    types_of,
)
from postroom.storage import codec
from postroom.storage import events as event_log
from postroom.storage.schema import SeqType, metadata
from postroom.storage.sql_part import SqlPart

# Characters of a request's and a response's body kept in the request log.
LOGGED_REQUEST_BODY = 8192
LOGGED_RESPONSE_BODY = 2048

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(26), primary_key=True),
    Column(
        "project",
        String(100),
        ForeignKey("projects.id", name="fk_webhooks_project_projects", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("url", Text, nullable=False),
    Column("types", Text, nullable=False),  # ",send,bounce,"
    Column("enabled", Boolean(create_constraint=False), nullable=False),
    Column("include_headers", Boolean(create_constraint=False), nullable=False),
    Column("secret", Text, nullable=False),  # sealed (storage/sealing.py)
    Column("description", Text, nullable=False, server_default=""),
    Column("created_us", BigInteger, nullable=False),
    Column("failing_since_us", BigInteger, nullable=True),
    Column("disabled_reason", Text, nullable=True),
)
Index("ix_webhooks_project", webhooks.c.project)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column(
        "webhook_id",
        String(26),
        ForeignKey("webhooks.id", name="fk_webhook_outbox_webhook_id_webhooks", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", BigInteger, nullable=False),
    Column("project", String(100), nullable=False),
    Column("message_id", String(26), nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("finished_us", BigInteger, nullable=True),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_us", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("body", Text, nullable=True),
    Column("resend_of", BigInteger, nullable=True),
)
Index("ix_webhook_outbox_status", webhook_outbox.c.status, webhook_outbox.c.next_attempt_us)
Index(
    "ix_webhook_outbox_order",
    webhook_outbox.c.webhook_id,
    webhook_outbox.c.message_id,
    webhook_outbox.c.status,
    webhook_outbox.c.id,
)

webhook_requests = Table(
    "webhook_requests",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column(
        "webhook_id",
        String(26),
        ForeignKey(
            "webhooks.id", name="fk_webhook_requests_webhook_id_webhooks", ondelete="CASCADE"
        ),
        nullable=False,
    ),
    Column("outbox_id", BigInteger, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("error", Text, nullable=True),
    Column("request_body", Text, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("succeeded", Boolean(create_constraint=False), nullable=False),
)
Index("ix_webhook_requests_webhook", webhook_requests.c.webhook_id, webhook_requests.c.id)
Index("ix_webhook_requests_time", webhook_requests.c.time_us)

_w = webhooks.c
_o = webhook_outbox.c
_r = webhook_requests.c


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed outbox row with what sending it needs: its webhook and sealed secret."""

    item: OutboxItem
    webhook: Webhook
    sealed_secret: str


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """What a report did: `status` of the row afterwards, and whether it disabled the
    webhook."""

    status: str
    disabled: bool = False


def _time(us: int | None) -> datetime | None:
    return None if us is None else codec.from_micros(us)


def webhook_of(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        project=row.project,
        url=row.url,
        types=types_of(row.types),
        enabled=bool(row.enabled),
        include_headers=bool(row.include_headers),
        created=codec.from_micros(row.created_us),
        failing_since=_time(row.failing_since_us),
        disabled_reason=row.disabled_reason,
        description=row.description or "",
    )


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=int(row.id),
        webhook_id=row.webhook_id,
        event_id=int(row.event_id),
        project=row.project,
        message_id=row.message_id,
        status=row.status,
        attempts=int(row.attempts),
        next_attempt=codec.from_micros(row.next_attempt_us),
        created=codec.from_micros(row.created_us),
        body=row.body,
        last_error=row.last_error,
        resend_of=None if row.resend_of is None else int(row.resend_of),
    )


def _request(row: Any) -> RequestRecord:
    return RequestRecord(
        id=int(row.id),
        webhook_id=row.webhook_id,
        outbox_id=int(row.outbox_id),
        event_id=int(row.event_id),
        time=codec.from_micros(row.time_us),
        status_code=None if row.status_code is None else int(row.status_code),
        latency_ms=float(row.latency_ms),
        error=row.error,
        request_body=row.request_body,
        response_body=row.response_body,
        succeeded=bool(row.succeeded),
    )


class SqlWebhookStore(SqlPart):
    """Webhooks, the outbox and the request log on the message store's database.

    `read_engine` serves reads; `write_engine` (READ COMMITTED on PostgreSQL, `BEGIN
    IMMEDIATE` on SQLite) serves changes, under `write_lock` (the message store's SQLite
    write lock)."""

    part = "the webhooks"

    def __init__(
        self,
        read_engine: Engine,
        write_engine: Engine,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        super().__init__(read_engine, write_engine, write_lock)
        self._skip_locked = write_engine.dialect.name == "postgresql"

    # -- webhooks ----------------------------------------------------------------------------

    def create(
        self,
        webhook: Webhook,
        sealed_secret: str,
    ) -> Webhook:
        """Store a new webhook of an existing project (NotFound otherwise); InvalidInput when
        the project has MAX_WEBHOOKS_PER_PROJECT already."""
        from postroom.storage.platform_store import projects

        def work(conn: Connection) -> Webhook:
            p = projects.c
            if conn.execute(select(p.id).where(p.id == webhook.project)).scalar() is None:
                raise NotFound(f"project {webhook.project} not found")
            count = conn.execute(
                select(func.count()).where(_w.project == webhook.project)
            ).scalar_one()
            if count >= MAX_WEBHOOKS_PER_PROJECT:
                raise InvalidInput(
                    f"a project has at most {MAX_WEBHOOKS_PER_PROJECT} webhooks", "url"
                )
            conn.execute(
                insert(webhooks).values(
                    id=webhook.id,
                    project=webhook.project,
                    url=webhook.url,
                    types=types_column(webhook.types),
                    enabled=webhook.enabled,
                    include_headers=webhook.include_headers,
                    secret=sealed_secret,
                    description=webhook.description,
                    created_us=codec.to_micros(webhook.created),
                )
            )
            return webhook

        return self._run(self._write, work)

    def list(self, project: str) -> builtins.list[Webhook]:
        stmt = select(webhooks).where(_w.project == project).order_by(_w.created_us, _w.id)
        return self._run(self._read, lambda conn: [webhook_of(r) for r in conn.execute(stmt)])

    def get(self, project: str, webhook_id: str) -> Webhook:
        """The project's webhook (NotFound for another project's, or none)."""

        def work(conn: Connection) -> Webhook:
            row = conn.execute(
                select(webhooks).where(_w.project == project, _w.id == webhook_id)
            ).first()
            if row is None:
                raise NotFound(f"webhook {webhook_id} not found in project {project}")
            return webhook_of(row)

        return self._run(self._read, work)

    def update(self, project: str, webhook_id: str, **changes: Any) -> Webhook:
        """Change `url`, `types`, `enabled`, `include_headers`, `description` or `secret`
        (sealed). Enabling clears the failure streak and the reason Postroom disabled it."""
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "types":
                values["types"] = types_column(value)
            elif name in ("url", "include_headers", "description", "secret"):
                values[name] = value
            elif name == "enabled":
                values["enabled"] = value
                if value:
                    values["failing_since_us"] = None
                    values["disabled_reason"] = None
            else:
                raise InvalidInput(f"unknown field {name!r}", name)

        def work(conn: Connection) -> Webhook:
            if values:
                changed = conn.execute(
                    update(webhooks)
                    .where(_w.project == project, _w.id == webhook_id)
                    .values(**values)
                ).rowcount
            else:
                changed = conn.execute(
                    select(func.count()).where(_w.project == project, _w.id == webhook_id)
                ).scalar_one()
            if not changed:
                raise NotFound(f"webhook {webhook_id} not found in project {project}")
            row = conn.execute(select(webhooks).where(_w.id == webhook_id)).one()
            return webhook_of(row)

        return self._run(self._write, work)

    def delete(self, project: str, webhook_id: str) -> None:
        """Delete a webhook with its outbox and request log."""

        def work(conn: Connection) -> None:
            gone = conn.execute(
                delete(webhooks).where(_w.project == project, _w.id == webhook_id)
            ).rowcount
            if not gone:
                raise NotFound(f"webhook {webhook_id} not found in project {project}")
            # Explicit too, for a database whose foreign keys are off.
            conn.execute(delete(webhook_outbox).where(_o.webhook_id == webhook_id))
            conn.execute(delete(webhook_requests).where(_r.webhook_id == webhook_id))

        self._run(self._write, work)

    def sealed_secret(self, project: str, webhook_id: str) -> str:
        def work(conn: Connection) -> str:
            found = conn.execute(
                select(_w.secret).where(_w.project == project, _w.id == webhook_id)
            ).scalar()
            if found is None:
                raise NotFound(f"webhook {webhook_id} not found in project {project}")
            return str(found)

        return self._run(self._read, work)

    # -- the outbox ------------------------------------------------------------------------

    def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> builtins.list[Claimed]:
        """Lease up to `limit` due rows of enabled webhooks to `owner`, oldest due first; a
        row is due when its time has come, it is not leased (or its lease ran out) and no
        earlier row of its webhook and message is pending."""
        if not owner:
            raise InvalidInput("a claim needs an owner", "owner")
        if lease <= timedelta(0):
            raise InvalidInput("a lease must be longer than zero", "lease")
        if limit <= 0:
            return []
        now_us = codec.to_micros(now)
        earlier = aliased(webhook_outbox)
        e = earlier.c
        blocked = exists().where(
            e.webhook_id == _o.webhook_id,
            e.message_id == _o.message_id,
            e.status == PENDING,
            e.id < _o.id,
        )
        due = (
            select(_o.id)
            .select_from(webhook_outbox.join(webhooks, _w.id == _o.webhook_id))
            .where(
                _o.status == PENDING,
                _o.next_attempt_us <= now_us,
                or_(_o.lease_expires_us.is_(None), _o.lease_expires_us <= now_us),
                _w.enabled.is_(True),
                ~blocked,
            )
            .order_by(_o.next_attempt_us, _o.id)
            .limit(limit)
        )
        if self._skip_locked:
            due = due.with_for_update(skip_locked=True, of=webhook_outbox)
        stmt = (
            update(webhook_outbox)
            .where(_o.id.in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_expires_us=codec.to_micros(now + lease))
            .returning(_o.id)
        )

        def work(conn: Connection) -> builtins.list[Claimed]:
            ids = [int(r[0]) for r in conn.execute(stmt)]
            if not ids:
                return []
            rows = conn.execute(
                select(webhook_outbox, webhooks)
                .select_from(webhook_outbox.join(webhooks, _w.id == _o.webhook_id))
                .where(_o.id.in_(ids))
                .order_by(_o.next_attempt_us, _o.id)
            ).all()
            out = []
            for row in rows:
                m = row._mapping
                item = _item(_Row(m, webhook_outbox))
                hook = webhook_of(_Row(m, webhooks))
                out.append(Claimed(item, hook, str(m[_w.secret])))
            return out

        return self._run(self._write, work)

    def set_body(self, outbox_id: int, owner: str, body: str) -> bool:
        """Fix the body of a leased row (before its first request)."""
        stmt = (
            update(webhook_outbox)
            .where(_o.id == outbox_id, _o.lease_owner == owner, _o.status == PENDING)
            .values(body=body)
        )
        return self._run(self._write, lambda conn: bool(conn.execute(stmt).rowcount))

    def report(
        self, outbox_id: int, owner: str, now: datetime, body: str, attempted: Attempted
    ) -> ReportOutcome | None:
        """Record one request for a pending row leased to `owner` (None, nothing written,
        otherwise): delivered on success; else retried after `retry_delay`, or given up once
        RETRY_WINDOW has passed since the event. A failure also starts or continues the
        webhook's failure streak, and disables it once the streak is DISABLE_AFTER long (a
        `webhook_disabled` event); a success ends the streak."""
        now_us = codec.to_micros(now)

        def work(conn: Connection) -> ReportOutcome | None:
            row = conn.execute(
                select(webhook_outbox).where(
                    _o.id == outbox_id, _o.status == PENDING, _o.lease_owner == owner
                )
            ).first()
            if row is None:
                return None
            attempts = int(row.attempts) + 1
            conn.execute(
                insert(webhook_requests).values(
                    webhook_id=row.webhook_id,
                    outbox_id=outbox_id,
                    event_id=row.event_id,
                    time_us=now_us,
                    status_code=attempted.status_code,
                    latency_ms=attempted.latency_ms,
                    error=attempted.error,
                    request_body=body[:LOGGED_REQUEST_BODY],
                    response_body=attempted.response_body[:LOGGED_RESPONSE_BODY],
                    succeeded=attempted.succeeded,
                )
            )
            done: dict[str, Any] = {"lease_owner": None, "lease_expires_us": None}
            done.update(attempts=attempts, body=body)
            if attempted.succeeded:
                status = SENT
                done.update(status=SENT, finished_us=now_us, last_error=None)
                conn.execute(
                    update(webhooks)
                    .where(_w.id == row.webhook_id, _w.failing_since_us.is_not(None))
                    .values(failing_since_us=None)
                )
            else:
                error = attempted.error or f"HTTP {attempted.status_code}"
                if now - codec.from_micros(row.created_us) >= RETRY_WINDOW:
                    status = GIVEN_UP
                    done.update(status=GIVEN_UP, finished_us=now_us, last_error=error)
                else:
                    status = PENDING
                    next_us = codec.to_micros(now + retry_delay(attempts))
                    done.update(next_attempt_us=next_us, last_error=error)
            conn.execute(update(webhook_outbox).where(_o.id == outbox_id).values(**done))
            disabled = False
            if not attempted.succeeded:
                disabled = self._failed(conn, row.webhook_id, now, error)
            return ReportOutcome(status, disabled)

        return self._run(self._write, work)

    def _failed(self, conn: Connection, webhook_id: str, now: datetime, error: str) -> bool:
        """Continue the webhook's failure streak; disable it (and write the event) when the
        streak is DISABLE_AFTER long. True when this disabled it."""
        now_us = codec.to_micros(now)
        conn.execute(
            update(webhooks)
            .where(_w.id == webhook_id, _w.failing_since_us.is_(None))
            .values(failing_since_us=now_us)
        )
        hook = conn.execute(select(webhooks).where(_w.id == webhook_id)).first()
        if hook is None or not hook.enabled:
            return False
        since = codec.from_micros(int(hook.failing_since_us))
        if now - since < DISABLE_AFTER:
            return False
        hours = (now - since).total_seconds() / 3600
        reason = (
            f"every request failed for {hours:.0f} hours (since "
            f"{since.isoformat().replace('+00:00', 'Z')}); last error: {error}"
        )[:1000]
        conn.execute(
            update(webhooks)
            .where(_w.id == webhook_id)
            .values(enabled=False, disabled_reason=reason)
        )
        detail = {"webhook": webhook_id, "url": hook.url, "reason": reason}
        event_log.write(conn, [NewEvent(hook.project, "webhook_disabled", now, detail=detail)])
        return True

    def release(self, outbox_id: int, owner: str) -> bool:
        """Give a leased row back untouched (the worker is stopping)."""
        stmt = (
            update(webhook_outbox)
            .where(_o.id == outbox_id, _o.lease_owner == owner, _o.status == PENDING)
            .values(lease_owner=None, lease_expires_us=None)
        )
        return self._run(self._write, lambda conn: bool(conn.execute(stmt).rowcount))

    def outbox(
        self, project: str, webhook_id: str, status: str | None = None, limit: int = 100
    ) -> builtins.list[OutboxItem]:
        """The webhook's outbox rows, oldest first."""
        conditions = [_o.project == project, _o.webhook_id == webhook_id]
        if status is not None:
            conditions.append(_o.status == status)
        stmt = select(webhook_outbox).where(*conditions).order_by(_o.id).limit(limit)
        return self._run(self._read, lambda conn: [_item(r) for r in conn.execute(stmt)])

    def counts(self, project: str, webhook_id: str) -> dict[str, int]:
        """Outbox rows per status."""
        stmt = (
            select(_o.status, func.count())
            .where(_o.project == project, _o.webhook_id == webhook_id)
            .group_by(_o.status)
        )

        def work(conn: Connection) -> dict[str, int]:
            return {str(s): int(n) for s, n in conn.execute(stmt).all()}

        found = self._run(self._read, work)
        return {s: found.get(s, 0) for s in (PENDING, SENT, GIVEN_UP)}

    # -- the request log -------------------------------------------------------------------

    def requests(
        self, project: str, webhook_id: str, limit: int = 50, before: int | None = None
    ) -> builtins.list[RequestRecord]:
        """The webhook's latest requests, newest first (NotFound for another project's)."""
        self.get(project, webhook_id)
        conditions = [_r.webhook_id == webhook_id]
        if before is not None:
            conditions.append(_r.id < before)
        stmt = select(webhook_requests).where(*conditions).order_by(_r.id.desc()).limit(limit)
        return self._run(self._read, lambda conn: [_request(r) for r in conn.execute(stmt)])

    def resend(self, project: str, webhook_id: str, request_id: int, now: datetime) -> OutboxItem:
        """Queue the body of an earlier request again, due now (a new outbox row, outside the
        per-message order: it repeats a request, it is no new event). NotFound unless the
        request is this project's webhook's."""

        def work(conn: Connection) -> OutboxItem:
            found = conn.execute(
                select(_r.outbox_id, _r.event_id, _o.body)
                .select_from(
                    webhook_requests.join(webhooks, _w.id == _r.webhook_id).join(
                        webhook_outbox, _o.id == _r.outbox_id
                    )
                )
                .where(_r.id == request_id, _w.id == webhook_id, _w.project == project)
            ).first()
            if found is None:
                raise NotFound(f"request {request_id} of webhook {webhook_id} not found")
            now_us = codec.to_micros(now)
            new_id = conn.execute(
                insert(webhook_outbox)
                .values(
                    webhook_id=webhook_id,
                    event_id=found.event_id,
                    project=project,
                    message_id=None,
                    status=PENDING,
                    attempts=0,
                    next_attempt_us=now_us,
                    created_us=now_us,
                    body=found.body,
                    resend_of=request_id,
                )
                .returning(_o.id)
            ).scalar_one()
            return _item(conn.execute(select(webhook_outbox).where(_o.id == new_id)).one())

        return self._run(self._write, work)

    def prune(self, before: datetime) -> int:
        """Delete finished outbox rows and logged requests older than `before`."""
        cut = codec.to_micros(before)

        def work(conn: Connection) -> int:
            gone = conn.execute(
                delete(webhook_outbox).where(
                    _o.status != PENDING, _o.finished_us.is_not(None), _o.finished_us < cut
                )
            ).rowcount
            gone += conn.execute(delete(webhook_requests).where(_r.time_us < cut)).rowcount
            return int(gone)

        return self._run(self._write, work)


class _Row:
    """The columns of one table out of a joined row's mapping, by name."""

    def __init__(self, mapping: Any, table: Table) -> None:
        self._values = {c.name: mapping[c] for c in table.c}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


__all__ = [
    "Claimed",
    "ReportOutcome",
    "SqlWebhookStore",
    "webhook_outbox",
    "webhook_requests",
    "webhooks",
]
