"""The outbound queue: table `queue_entries` and `SqlQueueStore`, the QueueStore port.

One row per recipient of a live project's message, written by the batch writer (batch.py) in
the message's own transaction from `NewMessage.deliveries`. A row outlives nothing it needs:
the foreign key to `messages` has no ON DELETE CASCADE (migration 0003), so the database
itself refuses to delete a message that still has queue rows; the message store deletes a
message's finished rows together with the message and refuses (PendingDeliveries) while any
is pending.

Leases: a worker claims due rows by setting `lease_owner` and `lease_expires_us`; a row whose
lease has expired is due again for anyone. On PostgreSQL the claim's row selection is
`FOR UPDATE SKIP LOCKED`, so concurrent claimers in any process pass each other by; on SQLite
write transactions are serialised (`BEGIN IMMEDIATE`, and this process's write lock), so there
is one claimer at a time. Reports (`complete`, `defer`, `fail`, `release`, `postpone`) apply
only while the row is pending and still leased to the reporting worker; each report but
`release` and `postpone` (entries given back untried: due at once, or at a later time) writes
its event (storage/events.py) and its attempt (storage/attempts.py) in the same transaction,
and only when the row changed; a report that finishes a recipient also sets the message's
status (`refresh_status`: queued, delivering, delivered, bounced, partially_bounced).

Times are integer microseconds since the epoch (UTC), as in the message tables.

`DueSignal`: after a commit that makes entries due (new messages with recipients, deferrals,
notices written with a report, entries given back or postponed, retry-now and release), the
store tells the listeners of this process when they are due; the delivery worker's in-memory
schedule (delivery/due.py) listens, so that it claims only when something is due. `due_times`
reads the next due times for that schedule's rebuild.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from postroom.core.clock import Clock, SystemClock
from postroom.core.errors import InvalidInput, NotFound, StorageError
from postroom.core.events import EventType, NewEvent
from postroom.core.ports import QueueStore
from postroom.core.types import (
    CANCELLED,
    DELIVERED,
    FAILED,
    MESSAGE_BOUNCED,
    MESSAGE_CANCELLED,
    MESSAGE_DELIVERED,
    MESSAGE_DELIVERING,
    MESSAGE_PARTIALLY_BOUNCED,
    MESSAGE_QUEUED,
    PENDING_STATES,
    QUEUED,
    Attempt,
    AttemptRecord,
    Delivered,
    Delivery,
    NewMessage,
    QueueEntry,
)
from postroom.storage import attempts as attempt_log
from postroom.storage import codec
from postroom.storage import events as event_log
from postroom.storage.schema import SeqType, messages, metadata

T = TypeVar("T")

log = logging.getLogger("postroom.queue")

# Ids per statement for id lists.
_ID_CHUNK = 500

queue_entries = Table(
    "queue_entries",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column(
        "message_id",
        String(26),
        # No ON DELETE CASCADE: deleting a message must never cancel its deliveries.
        ForeignKey("messages.id", name="fk_queue_entries_message_id_messages"),
        nullable=False,
    ),
    Column("project", String(100), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default=QUEUED),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    # Added by migration 0003.
    Column("domain", String(255), nullable=False, server_default=""),
    Column("notify", String(32), nullable=True),
    Column("orcpt", Text, nullable=True),
    Column("ret", String(8), nullable=True),
    Column("envid", Text, nullable=True),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_us", BigInteger, nullable=True),
    Column("finished_us", BigInteger, nullable=True),
    # Added by migration 0012: the sender was sent a delay notice for this recipient.
    Column(
        "delay_notified",
        Boolean(create_constraint=False),
        nullable=False,
        server_default=false(),
    ),
)
Index("ix_queue_entries_status", queue_entries.c.status, queue_entries.c.next_attempt_us)
Index("ix_queue_entries_message_id", queue_entries.c.message_id)

_q = queue_entries.c

# The columns the batch writer fills for a new entry, in `rows()` order.
INSERT_COLUMNS = (
    "message_id",
    "project",
    "recipient",
    "domain",
    "notify",
    "orcpt",
    "ret",
    "envid",
    "status",
    "next_attempt_us",
    "created_us",
)
QueueRow = tuple[str, str, str, str, str | None, str | None, str | None, str | None, str, int, int]


DueListener = Callable[[datetime], None]


class DueSignal:
    """Who to tell, in this process, that committed queue entries are due at a time.
    Listeners are called on the thread that committed (the event loop or a worker thread):
    they must be quick and thread-safe; one that raises does not stop the others."""

    def __init__(self) -> None:
        self._listeners: tuple[DueListener, ...] = ()

    def subscribe(self, listener: DueListener) -> Callable[[], None]:
        """Add `listener`; returns a function that removes it again."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def __call__(self, when: datetime) -> None:
        for listener in self._listeners:
            try:
                listener(when)
            except Exception:
                log.exception("a queue due listener failed")


def due_of(message: NewMessage) -> datetime | None:
    """When the queue entries of a new message are due (None: it has none)."""
    if not message.deliveries:
        return None
    if message.send_at is not None and message.send_at > message.created:
        return message.send_at
    return message.created


def rows(message: NewMessage) -> tuple[QueueRow, ...]:
    """The queue rows of a new message (INSERT_COLUMNS order): each due at once, or at its
    `send_at` (a scheduled send: no claim takes it earlier)."""
    if not message.deliveries:
        return ()
    created = codec.to_micros(message.created)
    due = created
    if message.send_at is not None:
        due = max(created, codec.to_micros(message.send_at))
    return tuple(
        (
            message.id,
            message.project,
            d.recipient,
            d.domain,
            d.notify,
            d.orcpt,
            d.ret,
            d.envid,
            QUEUED,
            due,
            created,
        )
        for d in message.deliveries
    )


def pending_exists(message_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """True for a message (its id column) that has recipients still to deliver to."""
    return exists().where(_q.message_id == message_id, _q.status.in_(PENDING_STATES))


def pending_recipients(
    conn: Connection, project: str, where: ColumnElement[bool]
) -> dict[str, tuple[str, ...]]:
    """Per message matching `where` (a condition on `messages`) that has pending entries, its
    pending recipients in recipient order (oldest message first)."""
    stmt = (
        select(_q.message_id, _q.recipient)
        .select_from(queue_entries.join(messages, messages.c.id == _q.message_id))
        .where(messages.c.project == project, _q.status.in_(PENDING_STATES), where)
        .order_by(messages.c.created_us, messages.c.seq, _q.id)
    )
    found: dict[str, list[str]] = {}
    for message_id, recipient in conn.execute(stmt):
        found.setdefault(str(message_id), []).append(str(recipient))
    return {k: tuple(v) for k, v in found.items()}


def delete_finished(conn: Connection, messages_where: ColumnElement[bool]) -> None:
    """Delete the entries of the messages `messages_where` selects, which are about to be
    deleted with them (callers select only messages with nothing pending: see
    `without_pending`)."""
    victims = select(messages.c.id).where(messages_where).scalar_subquery()
    conn.execute(queue_entries.delete().where(_q.message_id.in_(victims)))
    attempt_log.delete_of_messages(conn, victims)


def entry_from_row(row: Any) -> QueueEntry:
    lease = row.lease_expires_us
    return QueueEntry(
        id=int(row.id),
        message_id=row.message_id,
        project=row.project,
        delivery=Delivery(
            recipient=row.recipient,
            domain=row.domain,
            notify=row.notify,
            orcpt=row.orcpt,
            ret=row.ret,
            envid=row.envid,
        ),
        status=row.status,
        attempts=int(row.attempts),
        next_attempt=codec.from_micros(row.next_attempt_us),
        created=codec.from_micros(row.created_us),
        last_error=row.last_error,
        lease_owner=row.lease_owner,
        lease_expires=None if lease is None else codec.from_micros(lease),
        delay_notified=bool(row.delay_notified),
    )


# Delivered: one executemany UPDATE for a batch of entries already checked to be pending and
# leased to their reporter (SqlQueueStore.complete_many).
_COMPLETE = (
    update(queue_entries)
    .where(queue_entries.c.id == bindparam("b_id"))
    .values(
        lease_owner=None,
        lease_expires_us=None,
        status=DELIVERED,
        last_error=None,
        attempts=queue_entries.c.attempts + 1,
        finished_us=bindparam("b_finished"),
    )
)


# Statements of the hot reports, built once (building one costs more than running it on a
# small batch); `ids` is an expanding list parameter.
_ONE = literal(1)
_LOCK_MESSAGES = (
    select(messages.c.id)
    .where(messages.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(messages.c.id)
    .with_for_update()
)
_STATE_COUNTS = (
    select(
        _q.message_id,
        func.coalesce(func.sum(case((_q.status.in_(PENDING_STATES), _ONE), else_=0)), 0),
        func.coalesce(func.sum(case((_q.status == DELIVERED, _ONE), else_=0)), 0),
        func.coalesce(func.sum(case((_q.status == FAILED, _ONE), else_=0)), 0),
        func.coalesce(func.sum(case((_q.status == CANCELLED, _ONE), else_=0)), 0),
    )
    .where(_q.message_id.in_(bindparam("ids", expanding=True)))
    .group_by(_q.message_id)
)
_SET_STATUS = (
    update(messages)
    .where(
        messages.c.id.in_(bindparam("ids", expanding=True)),
        messages.c.status != bindparam("b_status"),
    )
    .values(status=bindparam("b_status"))
)
# The entries of a report still pending and leased to their reporter (`owner`).
_LIVE = select(_q.id, _q.message_id, _q.project, _q.recipient).where(
    _q.id.in_(bindparam("ids", expanding=True)),
    _q.status == QUEUED,
    _q.lease_owner == bindparam("owner"),
)
_LIVE_LOCKED = _LIVE.order_by(_q.id).with_for_update()  # PostgreSQL: their rows locked
# Postponed: entries still pending and leased to `owner` given back, due at `b_until`.
_POSTPONE = (
    update(queue_entries)
    .where(
        _q.id.in_(bindparam("ids", expanding=True)),
        _q.status == QUEUED,
        _q.lease_owner == bindparam("owner"),
    )
    .values(lease_owner=None, lease_expires_us=None, next_attempt_us=bindparam("b_until"))
)


class SqlQueueStore:
    """The QueueStore port on the message store's database.

    `read_engine` serves reads; `write_engine` (READ COMMITTED on PostgreSQL, `BEGIN
    IMMEDIATE` on SQLite) serves claims and reports, under `write_lock` (the message store's
    SQLite write lock, so this process's writers queue on one lock)."""

    def __init__(
        self,
        read_engine: Engine,
        write_engine: Engine,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
        clock: Clock | None = None,
        add_message: Callable[[Connection, NewMessage], None] | None = None,
        due: DueSignal | None = None,
    ) -> None:
        """`add_message` writes a new message in the caller's transaction (the notices that
        `fail` is given); `due` is told when entries become due after a report's commit."""
        self._read = read_engine
        self._add_message = add_message
        self._write = write_engine
        self._lock = write_lock or contextlib.nullcontext()
        self._clock = clock or SystemClock()
        self._skip_locked = write_engine.dialect.name == "postgresql"
        self._due = due or DueSignal()

    def _run(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        lock = self._lock if engine is self._write else contextlib.nullcontext()
        try:
            with lock, engine.begin() as conn:
                return work(conn)
        except (NotFound, InvalidInput, StorageError):
            raise
        except SQLAlchemyError as exc:
            error = StorageError(f"the queue failed: {type(exc).__name__}: {exc}")
            raise error from exc

    # -- reads -----------------------------------------------------------------------------

    def entries(self, message_id: str) -> builtins.list[QueueEntry]:
        stmt = select(queue_entries).where(_q.message_id == message_id).order_by(_q.id)
        return self._run(self._read, lambda conn: [entry_from_row(r) for r in conn.execute(stmt)])

    def all_entries(self) -> builtins.list[QueueEntry]:
        """Every entry in insertion order (tests and small tools; no paging)."""
        stmt = select(queue_entries).order_by(_q.id)
        return self._run(self._read, lambda conn: [entry_from_row(r) for r in conn.execute(stmt)])

    def get(self, entry_id: int) -> QueueEntry:
        def work(conn: Connection) -> QueueEntry:
            row = conn.execute(select(queue_entries).where(_q.id == entry_id)).first()
            if row is None:
                raise NotFound(f"queue entry {entry_id} not found")
            return entry_from_row(row)

        return self._run(self._read, work)

    def pending(self, project: str, message_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        return self._run(self._read, lambda conn: pending_of(conn, project, message_ids))

    def pending_count(self, message_id: str) -> int:
        stmt = select(func.count()).where(
            _q.message_id == message_id, _q.status.in_(PENDING_STATES)
        )
        return self._run(self._read, lambda conn: int(conn.execute(stmt).scalar_one()))

    def due_times(self, now: datetime, limit: int) -> builtins.list[datetime]:
        """When the first `limit` entries a claim could take are due (oldest first): pending
        and not leased (or their lease over at `now`), due now or later. One indexed read,
        no lock taken: for the in-memory schedule (delivery/due.py), not for claiming."""
        now_us = codec.to_micros(now)
        stmt = (
            select(_q.next_attempt_us)
            .where(
                _q.status == QUEUED,
                or_(_q.lease_expires_us.is_(None), _q.lease_expires_us <= now_us),
            )
            .order_by(_q.next_attempt_us)
            .limit(limit)
        )
        return self._run(
            self._read,
            lambda conn: [codec.from_micros(t) for t in conn.execute(stmt).scalars()],
        )

    # -- leases ----------------------------------------------------------------------------

    def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> builtins.list[QueueEntry]:
        if not owner:
            raise InvalidInput("a claim needs an owner", "owner")
        if lease <= timedelta(0):
            raise InvalidInput("a lease must be longer than zero", "lease")
        if limit <= 0:
            return []
        now_us = codec.to_micros(now)
        expires = codec.to_micros(now + lease)
        due = (
            select(_q.id)
            .where(
                _q.status == QUEUED,
                _q.next_attempt_us <= now_us,
                or_(_q.lease_expires_us.is_(None), _q.lease_expires_us <= now_us),
            )
            .order_by(_q.next_attempt_us, _q.id)
            .limit(limit)
        )
        if self._skip_locked:
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(queue_entries)
            .where(_q.id.in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_expires_us=expires)
            .returning(*queue_entries.c)
        )

        def work(conn: Connection) -> builtins.list[QueueEntry]:
            claimed = [entry_from_row(r) for r in conn.execute(stmt)]
            claimed.sort(key=lambda e: (e.next_attempt, e.id))
            return claimed

        return self._run(self._write, work)

    def _report(
        self,
        entry_id: int,
        owner: str,
        event: tuple[EventType, datetime, Mapping[str, Any] | None] | None,
        attempt: Attempt | None = None,
        notice: NewMessage | None = None,
        due: datetime | None = None,
        **values: Any,
    ) -> bool:
        """Apply `values` to a pending entry leased to `owner`, and write `event` (type, time,
        detail) and `attempt` for it and bring its message's status up to date, in one
        transaction; False (nothing written) when the entry is not pending and leased to
        `owner`."""
        stmt = (
            update(queue_entries)
            .where(_q.id == entry_id, _q.status == QUEUED, _q.lease_owner == owner)
            .values(lease_owner=None, lease_expires_us=None, **values)
            .returning(_q.message_id, _q.project, _q.recipient)
        )

        def work(conn: Connection) -> bool:
            changed = conn.execute(stmt).first()
            if changed is None:
                return False
            if event is not None:
                kind, when, detail = event
                message_id, project, recipient = changed
                new = NewEvent(project, kind, when, message_id, recipient, detail or {})
                event_log.write(conn, [new])
                if attempt is not None:
                    attempt_log.write(conn, entry_id, message_id, project, recipient, kind, attempt)
                if "status" in values:
                    refresh_status(conn, message_id)
                if notice is not None:
                    if self._add_message is None:
                        raise StorageError("this queue cannot write notices")
                    self._add_message(conn, notice)
            return True

        changed = self._run(self._write, work)
        if changed:
            if due is not None:
                self._due(due)
            notice_due = due_of(notice) if notice is not None else None
            if notice_due is not None:
                self._due(notice_due)
        return changed

    def release(self, entry_id: int, owner: str) -> bool:
        return self._report(entry_id, owner, None, due=self._clock.now())

    def postpone(self, entry_ids: Sequence[int], owner: str, until: datetime) -> int:
        """Give leased entries back untried, due again at `until` (their site is suspended or
        its rate lets nothing go before then): the lease is cleared and the next attempt set,
        nothing else changes (no attempt counted, no event, no attempt row, `last_error`
        kept). Only the entries still pending and leased to `owner` change; how many did. One
        transaction, then the due signal is told of `until`."""
        ids = sorted(set(entry_ids))
        if not ids:
            return 0
        until_us = codec.to_micros(until)

        def work(conn: Connection) -> int:
            changed = 0
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                result = conn.execute(
                    _POSTPONE, {"ids": chunk, "owner": owner, "b_until": until_us}
                )
                changed += int(result.rowcount)
            return changed

        changed = self._run(self._write, work)
        if changed:
            self._due(until)
        return changed

    def complete(
        self,
        entry_id: int,
        owner: str,
        now: datetime,
        detail: Mapping[str, Any] | None = None,
        attempt: Attempt | None = None,
    ) -> bool:
        return self.complete_many([Delivered(entry_id, owner, now, detail, attempt)])[0]

    def complete_many(self, delivered: Sequence[Delivered]) -> builtins.list[bool]:
        """Each entry, its `delivery` event and attempt, then the status of the messages
        concerned, in one transaction: a busy worker pays one commit (and, on SQLite, one
        turn of the write lock) for many recipients."""
        if not delivered:
            return []

        def work(conn: Connection) -> builtins.list[bool]:
            # Which entries are still pending and leased to their reporter (their rows locked
            # on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the write lock), then one
            # UPDATE, one event INSERT and one attempt INSERT for all of them.
            live: dict[int, tuple[str, str, str]] = {}
            owners: dict[str, builtins.list[int]] = {}
            for done in delivered:
                owners.setdefault(done.owner, []).append(done.entry_id)
            query = _LIVE_LOCKED if self._skip_locked else _LIVE
            for owner, entry_ids in owners.items():
                for start in range(0, len(entry_ids), _ID_CHUNK):
                    chunk = {"ids": entry_ids[start : start + _ID_CHUNK], "owner": owner}
                    for entry_id, message_id, project, recipient in conn.execute(query, chunk):
                        live[int(entry_id)] = (message_id, project, recipient)
            changed: builtins.list[bool] = []
            updates: builtins.list[dict[str, Any]] = []
            new: builtins.list[NewEvent] = []
            attempts: builtins.list[dict[str, Any]] = []
            touched: builtins.list[tuple[str, str, str]] = []
            for done in delivered:
                found = live.pop(done.entry_id, None)  # an id given twice changes once
                changed.append(found is not None)
                if found is None:
                    continue
                touched.append(found)
                message_id, project, recipient = found
                updates.append({"b_id": done.entry_id, "b_finished": codec.to_micros(done.now)})
                new.append(
                    NewEvent(
                        project, "delivery", done.now, message_id, recipient, done.detail or {}
                    )
                )
                if done.attempt is not None:
                    attempts.append(
                        attempt_log.row(
                            done.entry_id, message_id, project, recipient, "delivery", done.attempt
                        )
                    )
            if updates:
                conn.execute(_COMPLETE, updates)
            event_log.write(conn, new)
            attempt_log.write_rows(conn, attempts)
            refresh_statuses(conn, {found[0] for found in touched})
            return changed

        return self._run(self._write, work)

    def defer(
        self,
        entry_id: int,
        owner: str,
        next_attempt: datetime,
        error: str,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        attempt: Attempt | None = None,
        notice: NewMessage | None = None,
    ) -> bool:
        marks: dict[str, Any] = {"delay_notified": True} if notice is not None else {}
        return self._report(
            entry_id,
            owner,
            ("deferred", now or self._clock.now(), detail),
            attempt,
            notice,
            next_attempt,
            **marks,
            attempts=_q.attempts + 1,
            last_error=error,
            next_attempt_us=codec.to_micros(next_attempt),
        )

    def fail(
        self,
        entry_id: int,
        owner: str,
        now: datetime,
        error: str,
        detail: Mapping[str, Any] | None = None,
        *,
        expired: bool = False,
        attempt: Attempt | None = None,
        notice: NewMessage | None = None,
    ) -> bool:
        return self._report(
            entry_id,
            owner,
            ("expired" if expired else "bounce", now, detail),
            attempt,
            notice,
            status=FAILED,
            attempts=_q.attempts + 1,
            last_error=error,
            finished_us=codec.to_micros(now),
        )

    def record_reports(self, new: Sequence[NewEvent]) -> None:
        """Write the events of a report that came back for entries of this queue (a bounce
        or complaint received by the MX door), in one transaction."""
        self._run(self._write, lambda conn: event_log.write(conn, new))

    def attempts(self, project: str, message_id: str) -> builtins.list[AttemptRecord]:
        return self._run(self._read, lambda conn: attempt_log.of_message(conn, project, message_id))


def message_status(pending: int, delivered: int, failed: int, cancelled: int = 0) -> str:
    """A live message's status from its recipients' states: `queued` while none is finished,
    `delivering` while some are finished and others pending (queued or held), then
    `delivered` (all delivered), `bounced` (all failed), `partially_bounced` (some of each),
    or `cancelled` when none was delivered or failed (cancelled recipients count for nothing
    once others were delivered or failed)."""
    if pending:
        return MESSAGE_DELIVERING if delivered or failed or cancelled else MESSAGE_QUEUED
    if failed and delivered:
        return MESSAGE_PARTIALLY_BOUNCED
    if not failed and not delivered:
        return MESSAGE_CANCELLED
    return MESSAGE_BOUNCED if failed else MESSAGE_DELIVERED


def refresh_status(conn: Connection, message_id: str) -> None:
    """Set the message's status from its entries, in the caller's transaction."""
    refresh_statuses(conn, [message_id])


def refresh_statuses(conn: Connection, message_ids: Iterable[str]) -> None:
    """Set each message's status from its entries, in the caller's transaction.

    The messages' rows are locked first (PostgreSQL), in id order (two transactions locking
    overlapping sets cannot deadlock), so that two workers finishing two recipients of one
    message at once count each other's result: the second waits for the first to commit,
    then counts in a new statement (READ COMMITTED sees the commit)."""
    ids = sorted(set(message_ids))
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        if conn.dialect.name == "postgresql":
            conn.execute(_LOCK_MESSAGES, {"ids": chunk})
        found = {
            row[0]: tuple(int(c) for c in row[1:])
            for row in conn.execute(_STATE_COUNTS, {"ids": chunk})
        }
        by_status: dict[str, builtins.list[str]] = {}
        for message_id in chunk:  # one without entries counts as (0, 0, 0, 0), as before
            status = message_status(*found.get(message_id, (0, 0, 0, 0)))
            by_status.setdefault(status, []).append(message_id)
        for status, same in by_status.items():
            conn.execute(_SET_STATUS, {"ids": same, "b_status": status})


def without_pending(where: ColumnElement[bool]) -> ColumnElement[bool]:
    """`where` (on `messages`) narrowed to messages with nothing left to deliver."""
    return and_(where, ~pending_exists(messages.c.id))


def pending_of(conn: Connection, project: str, ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`pending_recipients` for a list of message ids (any length)."""
    unique = list(dict.fromkeys(ids))
    found: dict[str, tuple[str, ...]] = {}
    for i in range(0, len(unique), _ID_CHUNK):
        chunk = unique[i : i + _ID_CHUNK]
        found.update(pending_recipients(conn, project, messages.c.id.in_(chunk)))
    return found


def _conforms_to_the_port(store: SqlQueueStore) -> QueueStore:
    """Never called: makes mypy check that SqlQueueStore implements QueueStore."""
    return store
