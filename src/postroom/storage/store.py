"""`SqlMessageStore`: the MessageStore port on SQLite or PostgreSQL (SQLAlchemy Core).

Writes of new messages go through a group commit: `add` queues the message and waits; one
writer task takes everything queued and hands the batch to a `BatchWriter` (batch.py), which
completes messages that came without their summary, compresses, inserts the whole batch (COPY
on PostgreSQL, executemany on SQLite) and commits once (one fsync). The `BatchWriter` runs in
the writer process (writer_process.py, the server's default) or in a writer thread. Then every
waiter of the batch is resolved, or fails with StorageError. A message is acknowledged only
after COMMIT returned. By default one batch is in flight at a time (`pipeline=1`): whatever
arrives during a commit forms the next batch.

The other methods are synchronous and meant to be called from worker threads. They use their
own pooled connections, so they run alongside the writer (SQLite in WAL mode lets readers
proceed during a write; write transactions queue on the busy timeout).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import functools
import io
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import zstandard
from sqlalchemy import (
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound, PendingDeliveries, StorageError
from postroom.core.ports import Completer, MessageStore
from postroom.core.search import SearchQuery
from postroom.core.types import MessagePage, MessageRecord, MessageSlice, NewMessage
from postroom.storage import (
    block_summaries,
    codec,
    fulltext,
    message_counts,
    pg_upkeep,
    sender_search,
    tag_search,
    tagged_counts,
)
from postroom.storage.batch import (
    ID_CHUNK,
    BatchWriter,
    Outcome,
    Outcomes,
    chunks,
    storage_error,
    tag_spellings,
)
from postroom.storage.capture_routes import SqlCaptureRoutes
from postroom.storage.config_sets import SqlConfigSetStore
from postroom.storage.delivery_settings import SqlDeliverySettings
from postroom.storage.events import SqlEventStore
from postroom.storage.fulltext import (
    pg_short_present,
    sqlite_match,
    sqlite_present,
    sqlite_sparsest,
)
from postroom.storage.notice_writer import insert_message
from postroom.storage.queue import (
    DueSignal,
    SqlQueueStore,
    delete_finished,
    due_of,
    pending_of,
    pending_recipients,
    without_pending,
)
from postroom.storage.queue_admin import SqlQueueAdmin
from postroom.storage.reputation import SqlReputationStore
from postroom.storage.schema import message_raw, message_tags, messages
from postroom.storage.search_sql import (
    indexed_needles,
    query_condition,
    short_needed,
    short_needles,
)
from postroom.storage.suppressions import SqlSuppressionStore
from postroom.storage.tls_reports import SqlTlsReports
from postroom.storage.webhooks import SqlWebhookStore
from postroom.storage.write_lock import SqliteWriteLock
from postroom.storage.writer_process import ProcessBatchWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

LATEST = "latest"
# A batch never exceeds this many messages or this many raw bytes (at least one message).
MAX_BATCH_BYTES = 64 * 1024 * 1024
# Bytes per chunk when a message is read as a stream (raw_chunks).
RAW_CHUNK = 256 * 1024
# Rows per transaction for bulk deletes.
DELETE_CHUNK = 2000

_c = messages.c
_NEWEST_FIRST = (_c.created_us.desc(), _c.seq.desc())
# The same order as `+created_us DESC, +seq DESC`, which no index serves (`_select_page`).
_SORTED_NEWEST_FIRST = (
    tag_search.unindexed(_c.created_us).desc(),
    tag_search.unindexed(_c.seq).desc(),
)
# `_serial`: one round trip.
_SERIAL = (
    "SELECT set_config('max_parallel_workers_per_gather', '0', true), "
    "set_config('jit', 'off', true)"
)
# A search's page is first looked for among this many newest messages (`_page_rows`).
PAGE_WINDOW = 5000
# A search with a tag and a term another index narrows first walks this many of the tag's
# newest messages (`_tag_walk`).
TAG_WINDOW = 1000
# Fewer matches than this in the window: a term of 1-2 characters is looked up in PostgreSQL's
# index of short terms (fulltext.py), whose candidates cost ~0.1 us a character each to
# recheck (~0.2 ms for 2 KB of text); with more, walking newest first finds the page sooner.
SHORT_DENSE = 5
# Everything a MessageRecord needs; listing leaves out the (possibly long) search text.
_RECORD_COLUMNS = [
    _c.id,
    _c.project,
    _c.created_us,
    _c.size,
    _c.read,
    _c.status,
    _c.username,
    _c.mail_from,
    _c.recipients,
    _c.envelope_params,
    _c.from_json,
    _c.to_json,
    _c.cc_json,
    _c.bcc_json,
    _c.reply_to_json,
    _c.subject,
    _c.message_id,
    _c.date,
    _c.snippet,
    _c.attachments,
    _c.header_tags,
    _c.return_path,
    _c.defects,
    _c.warnings,
]

_INSERT_TAG = insert(message_tags)


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Group-commit counters since the store was opened."""

    batches: int  # committed transactions of new messages
    messages: int  # messages committed
    max_batch: int  # most messages committed by one transaction
    failed_batches: int  # transactions that failed (their waiters got StorageError)
    commit_seconds: float  # time spent preparing, inserting and committing (clock.monotonic)


class _Pending:
    __slots__ = ("future", "message")

    def __init__(self, message: NewMessage, future: asyncio.Future[NewMessage]) -> None:
        self.message = message
        self.future = future


class SqlMessageStore:
    """The MessageStore port on SQLAlchemy Core. Build it with `open_store`."""

    def __init__(
        self,
        read_engine: Engine,
        write_engine: Engine,
        *,
        clock: Clock,
        sqlite_path: Path | None = None,
        max_batch: int = 1000,
        pipeline: int = 1,
        writer_process: ProcessBatchWriter | None = None,
        complete: Completer | None = None,
    ) -> None:
        """Group-commit batches are written by `writer_process` if given (the store closes
        it; give it `complete` too), else by a `BatchWriter` on `write_engine` in a writer
        thread. `complete` completes messages added without their summary."""
        self._read = read_engine
        self._write = write_engine
        self._clock = clock
        self._sqlite_path = sqlite_path
        self._max_batch = max(1, max_batch)
        self.backend = write_engine.dialect.name  # "sqlite" or "postgresql"
        self.page_window = PAGE_WINDOW  # see _page_rows
        self.tag_window = TAG_WINDOW  # see _tag_walk
        self._summariser: block_summaries.Summariser | None = None  # summarise_blocks
        self.tag_drive_max = tag_search.DRIVE_MAX  # see _page_rows
        self.tag_walk = True  # see _page_rows (False: the plan without, which tests compare)
        self._to_fold: set[str] = set()  # see _fold_counts
        # Writer state (event-loop side).
        self._pending: builtins.list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._inflight: set[asyncio.Future[Outcomes]] = set()
        self._pipeline = max(1, pipeline)
        self._executor = ThreadPoolExecutor(
            max_workers=self._pipeline, thread_name_prefix="postroom-writer"
        )
        # SQLite has one writer at a time: writers of this process, and the writer process,
        # queue on this lock (woken at once) rather than on SQLite's sleeping busy handler.
        self._file_lock: SqliteWriteLock | None = None
        self._write_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.backend == "sqlite" and sqlite_path is not None:
            self._write_lock = self._file_lock = SqliteWriteLock(sqlite_path)
        elif self.backend == "sqlite":
            self._write_lock = threading.Lock()
        self._batch_writer = BatchWriter(write_engine, self._write_lock, complete)
        self._writer_process = writer_process
        self._queue: SqlQueueStore | None = None
        # Told when committed queue entries are due (storage/queue.py); the delivery worker's
        # schedule listens.
        self.due = DueSignal()
        self._events: SqlEventStore | None = None
        self._suppressions: SqlSuppressionStore | None = None
        # Counters (updated on the event loop).
        self._batches = 0
        self._messages = 0
        self._max_batch_seen = 0
        self._failed = 0
        self._commit_seconds = 0.0
        self._local = threading.local()

    # ------------------------------------------------------------------ group commit

    @property
    def stats(self) -> WriterStats:
        return WriterStats(
            batches=self._batches,
            messages=self._messages,
            max_batch=self._max_batch_seen,
            failed_batches=self._failed,
            commit_seconds=self._commit_seconds,
        )

    @property
    def queue(self) -> SqlQueueStore:
        """The outbound queue (QueueStore) in this store's database, on its engines."""
        if self._queue is None:
            self._queue = SqlQueueStore(
                self._read, self._write, self._write_lock, self._clock, insert_message, self.due
            )
        return self._queue

    @property
    def queue_admin(self) -> SqlQueueAdmin:
        """Operators' views and actions on the queue (QueueAdmin)."""
        return SqlQueueAdmin(self._read, self._write, self._write_lock, self.due)

    @property
    def suppressions(self) -> SqlSuppressionStore:
        """The suppression list in this store's database, on its engines."""
        if self._suppressions is None:
            self._suppressions = SqlSuppressionStore(self._read, self._write, self._write_lock)
        return self._suppressions

    @property
    def reputation(self) -> SqlReputationStore:
        """The reputation guard's state and the event counts it judges."""
        return SqlReputationStore(self._read, self._write, self._write_lock)

    @property
    def capture_routes(self) -> SqlCaptureRoutes:
        """The stored capture routes (storage/capture_routes.py)."""
        return SqlCaptureRoutes(self._read, self._write, self._write_lock)

    @property
    def tls_reports(self) -> SqlTlsReports:
        """Cached MTA-STS policies and TLS-RPT counts (storage/tls_reports.py)."""
        return SqlTlsReports(self._read, self._write, self._write_lock)

    @property
    def delivery_settings(self) -> SqlDeliverySettings:
        """Per-project delivery settings (bounce notices)."""
        return SqlDeliverySettings(self._read, self._write, self._write_lock)

    @property
    def webhooks(self) -> SqlWebhookStore:
        """Webhooks, their outbox and request log (storage/webhooks.py)."""
        return SqlWebhookStore(self._read, self._write, self._write_lock)

    @property
    def configuration_sets(self) -> SqlConfigSetStore:
        """SES configuration sets and their event destinations (storage/config_sets.py)."""
        return SqlConfigSetStore(self._read, self._write, self._write_lock)

    @property
    def events(self) -> SqlEventStore:
        """The durable event log (EventStore) in this store's database."""
        if self._events is None:
            self._events = SqlEventStore(self._read)
        return self._events

    async def add(self, message: NewMessage) -> NewMessage:
        """Return once `message` is durably committed, as stored (completed by the writer if
        it came without its summary); raise StorageError if it was not committed."""
        if self._closed:
            raise StorageError("the message store is closed")
        loop = self._loop
        if loop is None or not loop.is_running() or self._writer is None or self._writer.done():
            # Only now look the running loop up: on Python 3.11 that costs a getpid() call.
            loop = asyncio.get_running_loop()
            if self._writer is None or self._writer.done() or self._loop is not loop:
                self._start_writer(loop)
        assert self._wake is not None
        future: asyncio.Future[NewMessage] = loop.create_future()
        self._pending.append(_Pending(message, future))
        self._wake.set()
        return await future

    def _start_writer(self, loop: asyncio.AbstractEventLoop) -> None:
        # A writer left on another (stopped) loop cannot run again; its waiters are gone too.
        self._pending = [p for p in self._pending if p.future.get_loop() is loop]
        self._loop = loop
        self._inflight = set()
        self._wake = asyncio.Event()
        self._writer = loop.create_task(self._run_writer(), name="postroom-store-writer")

    async def _run_writer(self) -> None:
        """Hand queued messages to the writer threads, at most `pipeline` batches at a time.

        While one batch commits (an fsync, GIL released) the next one is being prepared, and
        everything that arrives meanwhile waits for the next free slot: the busier the store,
        the larger the batches.
        """
        assert self._wake is not None and self._loop is not None
        wake = self._wake
        loop = self._loop
        inflight = self._inflight
        while True:
            while self._pending and len(inflight) < self._pipeline:
                batch = self._take_batch()
                messages = [p.message for p in batch]
                job: asyncio.Future[Outcomes]
                if self._writer_process is not None:
                    job = loop.create_task(self._writer_process.write(messages, loop))
                else:
                    job = loop.run_in_executor(
                        self._executor, self._batch_writer.write_messages, messages
                    )
                inflight.add(job)
                job.add_done_callback(
                    functools.partial(self._batch_done, batch, self._clock.monotonic())
                )
            if self._closed and not self._pending and not inflight:
                return
            await wake.wait()
            wake.clear()

    def _batch_done(
        self,
        batch: builtins.list[_Pending],
        started: float,
        job: asyncio.Future[Outcomes],
    ) -> None:
        """Event loop: the writer (thread or process) finished `batch`; tell its waiters, free
        the slot."""
        self._inflight.discard(job)
        self._commit_seconds += self._clock.monotonic() - started
        outcomes: Sequence[Outcome]
        if job.cancelled():
            outcomes = [StorageError("the message store was stopped")] * len(batch)
        elif (error := job.exception()) is not None:  # the writer process could not start
            outcomes = [storage_error(error)] * len(batch)
        else:
            outcomes = job.result()
        self._resolve(batch, outcomes)
        if self._wake is not None:
            self._wake.set()

    def _take_batch(self) -> builtins.list[_Pending]:
        size = 0
        count = 0
        for p in self._pending:
            if count >= self._max_batch or (count and size + p.message.size > MAX_BATCH_BYTES):
                break
            size += p.message.size
            count += 1
        batch = self._pending[:count]
        del self._pending[:count]
        return batch

    def _resolve(self, batch: builtins.list[_Pending], outcomes: Sequence[Outcome]) -> None:
        failures = sum(1 for o in outcomes if isinstance(o, StorageError))
        committed = len(batch) - failures
        if committed:
            # One transaction for the batch, or one per message after a data error.
            self._batches += 1 if committed == len(batch) else committed
            self._messages += committed
            self._max_batch_seen = max(self._max_batch_seen, committed)
        if failures:
            self._failed += 1
        self._signal_due(batch, outcomes)
        for p, outcome in zip(batch, outcomes, strict=True):
            if p.future.done():  # the waiter was cancelled; nothing to tell it
                continue
            if outcome is None:
                p.future.set_result(p.message)
            elif isinstance(outcome, StorageError):
                # A fresh exception per waiter: each raise adds its own traceback.
                error = StorageError(*outcome.args)
                error.__cause__ = outcome.__cause__
                p.future.set_exception(error)
            else:
                summary, tags = outcome
                p.future.set_result(dataclasses.replace(p.message, summary=summary, tags=tags))

    def _signal_due(self, batch: builtins.list[_Pending], outcomes: Sequence[Outcome]) -> None:
        """Tell `due` when the queue entries of the messages just committed are due: once
        for those due at once (the earliest), once per later scheduled send."""
        at_once: datetime | None = None
        later: set[datetime] = set()
        for p, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, StorageError):
                continue
            when = due_of(p.message)
            if when is None:
                continue
            if when > p.message.created:
                later.add(when)
            elif at_once is None or when < at_once:
                at_once = when
        if at_once is not None:
            self.due(at_once)
        for when in sorted(later):
            self.due(when)

    def upkeep(self) -> list[str]:
        """PostgreSQL without autovacuum: vacuum and analyze the tables that are due
        (pg_upkeep.py); the statements run. Blocking: run it in a thread."""
        return pg_upkeep.upkeep_once(self._write)

    async def summarise_blocks(self) -> int:
        """PostgreSQL: make the summaries of the blocks of messages that are due
        (block_summaries.py) in a child process, when the check (on a thread) finds one due;
        the summaries made. The child stays for the next runs (stopped by `close`)."""
        if self.backend != "postgresql":
            return 0
        if not await asyncio.to_thread(self._run, self._read, block_summaries.due):
            return 0
        if self._summariser is None:
            self._summariser = block_summaries.Summariser(self._write)
        return await self._summariser.run()

    async def close(self) -> None:
        """Commit what is queued, stop the writer, release connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        if writer is not None and not writer.done():
            if self._wake is not None:
                self._wake.set()
            if self._loop is asyncio.get_running_loop():
                await writer
        if self._writer_process is not None:
            await self._writer_process.close()
        if self._summariser is not None:
            await self._summariser.close()
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        if self.backend == "sqlite":
            with contextlib.suppress(SQLAlchemyError), self._write.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self._read.dispose()
        self._write.dispose()
        if self._file_lock is not None:
            self._file_lock.close()

    # ------------------------------------------------------------------ helpers

    def _run(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction; database failures become StorageError."""
        lock = self._write_lock if engine is self._write else contextlib.nullcontext()
        try:
            with lock, engine.begin() as conn:
                return work(conn)
        except (NotFound, InvalidInput, StorageError):
            raise
        except SQLAlchemyError as exc:
            raise storage_error(exc) from exc

    def _tags_of(self, conn: Connection, ids: Sequence[str]) -> dict[str, builtins.list[str]]:
        tags: dict[str, builtins.list[str]] = {i: [] for i in ids}
        for chunk in chunks(ids, ID_CHUNK):
            rows = conn.execute(
                select(message_tags.c.message_id, message_tags.c.tag)
                .where(message_tags.c.message_id.in_(chunk))
                .order_by(message_tags.c.message_id, message_tags.c.tag_lc)
            )
            for message_id, tag in rows:
                tags[message_id].append(tag)
        return tags

    @staticmethod
    def _resolve_id(conn: Connection, project: str, message_id: str) -> str:
        if message_id == LATEST:
            found = conn.execute(
                select(_c.id).where(_c.project == project).order_by(*_NEWEST_FIRST).limit(1)
            ).scalar()
        else:
            found = conn.execute(
                select(_c.id).where(_c.project == project, _c.id == message_id)
            ).scalar()
        if found is None:
            raise NotFound(f"message {message_id} not found")
        return str(found)

    @staticmethod
    def _counts(conn: Connection, where: ColumnElement[bool]) -> tuple[int, int]:
        unread = func.coalesce(func.sum(case((_c.read.is_(False), 1), else_=0)), 0)
        total, unread_count = conn.execute(select(func.count(), unread).where(where)).one()
        return int(total), int(unread_count)

    def _project_counts(self, conn: Connection, project: str) -> tuple[int, int]:
        """The project's (total, unread), kept by triggers (storage/message_counts.py). On
        PostgreSQL, once their delta rows pile up, the project is noted for `_fold_counts`."""
        total, unread, rows = message_counts.read(conn, project)
        if rows > message_counts.FOLD_AT and self.backend == "postgresql":
            self._to_fold.add(project)
        return total, unread

    def _fold_counts(self) -> None:
        """Fold the delta rows of the projects noted by `_project_counts`, each in a
        transaction of its own at READ COMMITTED (the writer's engine; a read's REPEATABLE
        READ snapshot could not delete rows another fold deleted since). A failure is only
        logged: the rows stay and are summed, the next read tries again."""
        while self._to_fold:
            try:
                project = self._to_fold.pop()
            except KeyError:
                return
            for counters in (message_counts, tagged_counts):
                try:
                    self._run(self._write, functools.partial(counters.fold, project=project))
                except StorageError as exc:
                    log.warning("folding the %s of %s failed: %s", counters.TABLE, project, exc)

    def _target(
        self, project: str, query: SearchQuery | None
    ) -> builtins.list[ColumnElement[bool]]:
        conds: builtins.list[ColumnElement[bool]] = [_c.project == project]
        cond = query_condition(query, project, self.backend)
        if cond is not None:
            conds.append(cond)
        return conds

    @staticmethod
    def _check_window(start: int, limit: int) -> None:
        if start < 0:
            raise InvalidInput("start must not be negative", "start")
        if limit < 0:
            raise InvalidInput("limit must not be negative", "limit")

    def _match(self, conn: Connection, project: str, query: SearchQuery) -> ColumnElement[bool]:
        """The condition of the query's matches in the project, driven by its rarest tag when
        that has at most `tag_drive_max` messages (tag_search.py)."""
        rarest = tag_search.rarest(conn, project, query, self.backend)
        if rarest is not None and rarest[1] <= self.tag_drive_max:
            return and_(
                tag_search.project_match(project, True),
                tag_search.driven_condition(query, project, self.backend, rarest[0]),
            )
        senders = self._senders(conn, project, query)
        if senders is not None:
            return senders
        cond, few = self._condition(conn, project, query)
        assert cond is not None
        return and_(tag_search.project_match(project, few), cond)

    def _senders(
        self, conn: Connection, project: str, query: SearchQuery
    ) -> ColumnElement[bool] | None:
        """SQLite: the query's condition in the project restricted to the senders its `from:`
        terms match, to be read from the sender index, when they are expected to have at most
        `tag_drive_max` messages (sender_search.py); None otherwise."""
        if self.backend != "sqlite" or not sender_search.sender_terms(query):
            return None
        total = self._project_counts(conn, project)[0]
        return sender_search.driven_condition(
            conn, project, query, self.backend, total, self.tag_drive_max
        )

    def _condition(
        self, conn: Connection, project: str, query: SearchQuery | None, short: bool = False
    ) -> tuple[ColumnElement[bool] | None, bool]:
        """The query's condition over the whole project, with SQLite's full-text filter when
        the database has it (`postroom fulltext on`; chosen from trigram counts, or for a term
        of one or two characters the count of the trigrams starting with it, read on `conn`:
        fulltext.sqlite_match), and whether that filter leaves few candidates:
        then they drive the statement (`+project`, served by no index: SQLite would walk the
        (project, created) index newest first probing them, ~140 ms at a million). `short`:
        PostgreSQL's index of 1-2 character terms narrows them too when the database has it
        (search_sql.term_condition)."""
        found = None
        if self.backend == "sqlite":
            needles = indexed_needles(query)
            if needles and sqlite_present(conn):
                found = sqlite_match(conn, needles)
        needles = short_needles(query) if short and self.backend == "postgresql" else []
        short = bool(needles) and short_needed(query) and pg_short_present(conn)
        # Without that index, the summaries of blocks of messages (block_summaries.py).
        blocks = None if short or not needles else block_summaries.condition(conn, needles)
        cond = query_condition(query, project, self.backend, fts=found, short=short)
        if blocks is not None and cond is not None:
            cond = and_(blocks, cond)
        return cond, found is not None and found.few

    def _page_rows(
        self,
        conn: Connection,
        project: str,
        query: SearchQuery | None,
        start: int,
        limit: int,
    ) -> builtins.list[Any]:
        """Up to `limit` rows from `start`, newest first, walking the (project, created) index
        newest first and stopping once the page is full.

        A query with a positive `tag:` term walks that tag's index instead (`_tag_walk`;
        with `tag_walk` off, as tests compare, it takes the paths below).

        A search first looks at the newest PAGE_WINDOW messages only (a range of that index:
        the planners cannot start from a tag's or a term's many matches and sort them): when
        they hold the page, those are the page, since every message outside the window is
        older. Otherwise the whole project is searched, driven by a rare tag of the query
        when it has one (tag_search.py), else by the senders its `from:` terms match
        (`_senders`), else narrowed by SQLite's full-text index if it was made. A query
        whose rarest tag has too few messages to fill the window's share of a page (at most
        `tag_drive_max / 10`) skips the window. A window that held fewer than SHORT_DENSE
        matches lets PostgreSQL's index of 1-2 character terms narrow the whole search
        (fulltext.py): its every candidate is rechecked by computing the interleaved text
        again (~0.1 us a character), which the newest-first walk beats for a common term."""
        cond = query_condition(query, project, self.backend)
        if cond is None or query is None:
            return self._select_page(conn, project, cond, start, limit)
        if self.tag_walk:
            tagged = tag_search.rarest_tag(conn, project, query)
            if tagged is not None:
                return self._tag_walk(conn, project, query, tagged, start, limit)
        rarest = tag_search.rarest(conn, project, query, self.backend)
        drive = rarest is not None and rarest[1] <= self.tag_drive_max
        window_size = self.page_window
        short = False
        if start + limit <= window_size and not (
            rarest is not None and rarest[1] <= self.tag_drive_max // 10
        ):
            edge = conn.execute(
                select(_c.created_us, _c.seq)
                .where(_c.project == project)
                .order_by(*_NEWEST_FIRST)
                .offset(window_size - 1)
                .limit(1)
            ).first()
            if edge is not None:
                created, seq = int(edge.created_us), int(edge.seq)
                window = and_(_c.created_us >= created, or_(_c.created_us > created, _c.seq >= seq))
                probe = query_condition(query, project, self.backend, probe=True)
                assert probe is not None
                rows = self._select_page(conn, project, and_(probe, window), start, limit)
                if len(rows) == limit:
                    return rows
                short = start + len(rows) < SHORT_DENSE
        if rarest is not None and drive:
            cond = tag_search.driven_condition(query, project, self.backend, rarest[0])
            return self._select_page(conn, project, cond, start, limit, True)
        senders = self._senders(conn, project, query)
        if senders is not None:
            return self._select_page(conn, project, senders, start, limit, sort=True)
        cond, few = self._condition(conn, project, query, short)
        return self._select_page(conn, project, cond, start, limit, few)

    def _tag_walk(
        self,
        conn: Connection,
        project: str,
        query: SearchQuery,
        tagged: tuple[str, int],
        start: int,
        limit: int,
    ) -> builtins.list[Any]:
        """The page of a query with a positive tag: its rarest tag's messages walked newest
        first from the tag index (tag_search.walk), which reads no more than the walk of
        the project's messages would, and no untagged one, however old the tag's messages.

        When another index may give fewer candidates than a common tag (more than
        `tag_window` messages) — SQLite: the senders of the query's `from:` terms, or its
        full-text index when made; PostgreSQL: the full-text index of its text terms — the
        walk first goes through the tag's newest `tag_window` messages only, and when they
        do not hold the page, the search is answered from that index:

        * SQLite with its full-text index: the walk of the tag's messages is restricted to
          the index's candidates (tag_search.walk `fts`), a temporary index of their seqs
          that the walk probes before reading any message; with more than a quarter as many
          candidates as the tag has messages, that set is first intersected with the tag's
          seqs (`merged`: a merge in seq order, fulltext.sqlite_condition). A term whose
          trigrams show fewer than fulltext.RARE candidates (counted before the window, a
          cheap look, fulltext.sqlite_sparsest) is answered so at once. At a million
          messages (`archive` on 100,000 of the oldest 200,000; bench/search_million.py,
          warm medians, load 1-2.5, interleaved with the walk of all the tag's messages it
          replaces): `tag:archive subject:invoice` (none in the tag) 121-142 -> 43 ms,
          `from:domain7.example` (none) 146-206 -> 32-33, `subject:user1234` 47-79 ->
          26-36, `from:sender42@` 25-28 -> 22.
        * PostgreSQL: the planner's search of the whole project with the tag as
          `messages.tags_lc @> ARRAY[tag]` (search_sql.py), which the partial GIN index of
          tag_array.py answers together with the terms' trigrams, its rows sorted (`sort`:
          the planner walked the (project, created) index newest first, expecting the tag's
          and the term's matches to be spread). Same runs: `tag:archive subject:invoice`
          1,147-1,196 -> 8 ms, `from:domain7.example` 264-306 -> 12-13, `from:sender42@`
          99-143 -> 16-18, `subject:user1234` 38-47 -> 16-18. A term of 1-2 characters has
          no trigram: the summaries of blocks (block_summaries.py), or the index of short
          terms when made, narrow it there (`tag:archive qz` 1,029 -> 24 ms, load ~4.5).
        * Otherwise (SQLite without its full-text index) the senders of the `from:` terms
          (`_senders`), else the whole walk."""
        tag, total = tagged
        if start >= total:
            return []
        needles = indexed_needles(query) if self.backend == "sqlite" else []
        found = sqlite_sparsest(conn, needles) if needles and sqlite_present(conn) else None
        if found is not None and found[0].few:
            page = tag_search.walk(query, project, self.backend, tag, start, limit, fts=found[0])
            return self._rows(conn, page)
        edge = None
        if start + limit <= self.tag_window < total and self._narrowable(conn, query):
            edge = tag_search.walk_edge(conn, project, tag, self.tag_window, query)
        self._serial(conn)
        page = tag_search.walk(query, project, self.backend, tag, start, limit, edge)
        rows = self._rows(conn, page)
        if edge is None or len(rows) == limit:
            return rows
        if self.backend == "postgresql":
            cond, _ = self._condition(conn, project, query, short=True)
            return self._select_page(conn, project, cond, start, limit, sort=True)
        if found is not None:
            fts, estimate = found
            merged = estimate >= total // 4
            page = tag_search.walk(
                query, project, self.backend, tag, start, limit, fts=fts, merged=merged
            )
            return self._rows(conn, page)
        senders = self._senders(conn, project, query)
        if senders is not None:
            return self._select_page(conn, project, senders, start, limit, sort=True)
        return self._rows(conn, tag_search.walk(query, project, self.backend, tag, start, limit))

    def _serial(self, conn: Connection) -> None:
        """PostgreSQL: the transaction's next statements planned without parallel workers and
        without JIT compilation. A tag walk stops after a page's worth of matches, yet the
        planner gave it two workers, whose start cost more than the walk: EXPLAIN ANALYZE of
        `tag:archive has:attachment`
        at a million, 25.5 -> 4.7 ms; the window of a walk of `tag_window` messages, 17 ->
        ~2 ms (`tag:archive from:domain7.example`, the workers' start most of it). The search
        after a window that did not hold the page (`_tag_walk`) runs without them too: it
        reads the tag's messages among the term's candidates from the index of tag_array.py,
        few unless the term is common in the tag's older messages only. (Before that index,
        setting the workers back for that search, which then read many rows, made its time
        swing from 0.2 to 1.5 s in interleaved runs.) JIT: the planner's cost of a walk with a
        LIMIT counts every row it might read, above `jit_above_cost` for a window of 1,000
        messages, whose 4 ms then took 10 ms more to compile (`tag:archive zzqx-nothing`)."""
        if self.backend == "postgresql":
            conn.exec_driver_sql(_SERIAL)

    def _narrowable(self, conn: Connection, query: SearchQuery) -> bool:
        """Whether an index other than the tags' may narrow the query's matches (`_tag_walk`)."""
        if self.backend == "postgresql":
            # Its trigram index serves terms of 3 characters or more, the summaries of
            # blocks (or the index of short terms) shorter ones.
            return bool(indexed_needles(query))
        return bool(sender_search.sender_terms(query)) or bool(
            indexed_needles(query) and sqlite_present(conn)
        )

    @staticmethod
    def _rows(conn: Connection, page: Select[tuple[Any]]) -> builtins.list[Any]:
        """The records' columns of the seqs `page` selects, newest first."""
        return builtins.list(
            conn.execute(
                select(*_RECORD_COLUMNS)
                .where(_c.seq.in_(page.scalar_subquery()))
                .order_by(*_NEWEST_FIRST)
            ).all()
        )

    @staticmethod
    def _select_page(
        conn: Connection,
        project: str,
        cond: ColumnElement[bool] | None,
        start: int,
        limit: int,
        driven: bool = False,
        sort: bool = False,
    ) -> builtins.list[Any]:
        """`driven`: the project is matched as tag_search.project_match(driven=True). `sort`:
        ordered as `+created_us, +seq`, which no index serves, so that SQLite reads the rows
        by the index the condition names (the sender index) and sorts them."""
        page: Select[tuple[Any]] = (
            select(_c.seq)
            .where(tag_search.project_match(project, driven))
            .order_by(*(_SORTED_NEWEST_FIRST if sort else _NEWEST_FIRST))
            .offset(start)
            .limit(limit)
        )
        if cond is not None:
            page = page.where(cond)
        return SqlMessageStore._rows(conn, page)

    # ------------------------------------------------------------------ reads

    def list(self, project: str, query: SearchQuery | None, start: int, limit: int) -> MessagePage:
        """One page newest first, with project and query counts.

        The project's counts are kept by triggers; the query's are counted (every match is
        read: at a million messages this is what a search costs, `page` skips it).
        Listed records carry `summary.search_text == ""`: listing never reads body text
        (`get` returns it).
        """
        self._check_window(start, limit)
        cond = query_condition(query, project, self.backend)

        def work(conn: Connection) -> MessagePage:
            total, unread = self._project_counts(conn, project)
            tagged = tag_search.counts(
                conn, project, query, self.backend, (total, unread), self._to_fold
            )
            if cond is None or query is None:
                matched, matched_unread = total, unread
            elif tagged is not None:
                matched, matched_unread = tagged
            else:
                matched, matched_unread = self._counts(conn, self._match(conn, project, query))
            records: tuple[MessageRecord, ...] = ()
            if limit and start < matched:
                records = self._records(conn, self._page_rows(conn, project, query, start, limit))
            return MessagePage(
                messages=records,
                total=total,
                unread=unread,
                matched=matched,
                matched_unread=matched_unread,
                start=start,
            )

        try:
            return self._run(self._read, work)
        finally:
            self._fold_counts()

    def page(
        self,
        project: str,
        query: SearchQuery | None,
        start: int,
        limit: int,
        *,
        with_tags: bool = False,
    ) -> MessageSlice:
        """The page `list` returns, without counting the query's matches: one row more than
        the page is read to tell whether more follow. `with_tags`: the project's tags in use
        too (`tags`), in the same transaction: on PostgreSQL a transaction costs a connection
        check and its BEGIN and COMMIT, three round trips (each a wake-up of the server's
        process: milliseconds on a busy machine) besides its statements."""
        self._check_window(start, limit)

        def work(conn: Connection) -> MessageSlice:
            total, unread = self._project_counts(conn, project)
            # The matches, when the counters know them (tag_search.counts): a query with none
            # (`is:tagged is:read` in an unread inbox) reads no message instead of walking all.
            counted = tag_search.counts(
                conn, project, query, self.backend, (total, unread), self._to_fold
            )
            rows: builtins.list[Any] = []
            if limit and start < (total if counted is None else counted[0]):
                rows = self._page_rows(conn, project, query, start, limit + 1)
            return MessageSlice(
                messages=self._records(conn, rows[:limit]),
                total=total,
                unread=unread,
                more=len(rows) > limit,
                start=start,
                tags=tuple(self._tags_in_use(conn, project)) if with_tags else None,
            )

        try:
            return self._run(self._read, work)
        finally:
            self._fold_counts()

    def _records(self, conn: Connection, rows: Sequence[Any]) -> tuple[MessageRecord, ...]:
        tags = self._tags_of(conn, [r.id for r in rows])
        return tuple(codec.record_from_row(r._mapping, tags[r.id]) for r in rows)

    def recent_ids(self, project: str, since: datetime, limit: int) -> builtins.list[str]:
        stmt = (
            select(_c.id)
            .where(_c.project == project, _c.created_us > codec.to_micros(since))
            .order_by(*_NEWEST_FIRST)
            .limit(max(0, limit))
        )
        return self._run(self._read, lambda conn: [str(i) for i in conn.execute(stmt).scalars()])

    def metadata_of(self, project: str, message_ids: Sequence[str]) -> dict[str, Mapping[str, str]]:
        """The send API's metadata of those of the project's messages that have some (one
        query; the events API shows it with each event)."""
        wanted = sorted(set(message_ids))
        if not wanted:
            return {}

        def work(conn: Connection) -> dict[str, Mapping[str, str]]:
            rows = conn.execute(
                select(_c.id, _c.envelope_params).where(_c.project == project, _c.id.in_(wanted))
            )
            found: dict[str, Mapping[str, str]] = {}
            for message_id, params in rows:
                meta = codec.metadata_of_params(params)
                if meta:
                    found[str(message_id)] = meta
            return found

        return self._run(self._read, work)

    def get(self, project: str, message_id: str) -> MessageRecord:
        def work(conn: Connection) -> MessageRecord:
            found = self._resolve_id(conn, project, message_id)
            row = conn.execute(select(*_RECORD_COLUMNS, _c.search_text).where(_c.id == found)).one()
            return self._records(conn, [row])[0]

        return self._run(self._read, work)

    def get_with_raw(self, project: str, message_id: str) -> tuple[MessageRecord, bytes]:
        """One read transaction: the record, its tags and the stored bytes (decompressed
        outside it). Raises NotFound."""

        def work(conn: Connection) -> tuple[MessageRecord, bytes]:
            row = conn.execute(
                select(*_RECORD_COLUMNS, _c.search_text, message_raw.c.data)
                .join(message_raw, message_raw.c.message_id == _c.id)
                .where(_c.project == project, _c.id == message_id)
            ).first()
            if row is None:
                raise NotFound(f"message {message_id} not found")
            return self._records(conn, [row])[0], bytes(row.data)

        record, compressed = self._run(self._read, work)
        return record, self._decompress(message_id, compressed)

    def get_many_with_raw(
        self, keys: Sequence[tuple[str, str]], max_size: int
    ) -> dict[str, tuple[MessageRecord, bytes] | None]:
        """`get_with_raw` for many (project, message id) pairs in one read transaction (one
        query per ID_CHUNK ids, and one for their tags): {message id: (record, bytes)}, or
        None for a message larger than `max_size` octets (its bytes are left for
        `get_with_raw`, so a batch never holds many big messages at once). A message not
        found (or of another project) is left out. Raises StorageError when one is corrupt."""
        wanted = dict((message_id, project) for project, message_id in keys)
        if not wanted:
            return {}
        size = _c.size <= max_size
        data = case((size, message_raw.c.data), else_=None).label("data")

        def work(conn: Connection) -> builtins.list[tuple[Any, MessageRecord]]:
            rows: builtins.list[Any] = []
            for chunk in chunks(builtins.list(wanted), ID_CHUNK):
                stmt = (
                    select(*_RECORD_COLUMNS, _c.search_text, data)
                    .join(message_raw, message_raw.c.message_id == _c.id)
                    .where(_c.id.in_(chunk))
                )
                rows.extend(r for r in conn.execute(stmt) if wanted.get(r.id) == r.project)
            return builtins.list(zip(rows, self._records(conn, rows), strict=True))

        found: dict[str, tuple[MessageRecord, bytes] | None] = {}
        for row, record in self._run(self._read, work):
            stored = row.data
            found[row.id] = (
                None if stored is None else (record, self._decompress(row.id, bytes(stored)))
            )
        return found

    def _compressed(self, project: str, message_id: str) -> bytes:
        """The stored (zstd) bytes of a message. Raises NotFound."""

        def work(conn: Connection) -> bytes:
            found = self._resolve_id(conn, project, message_id)
            data = conn.execute(
                select(message_raw.c.data).where(message_raw.c.message_id == found)
            ).scalar()
            if data is None:
                raise NotFound(f"message {message_id} not found")
            return bytes(data)

        return self._run(self._read, work)

    def raw(self, project: str, message_id: str) -> bytes:
        return self._decompress(message_id, self._compressed(project, message_id))

    def _decompress(self, message_id: str, compressed: bytes) -> bytes:
        try:
            return self._decompressor().decompress(compressed)
        except zstandard.ZstdError as exc:
            raise StorageError(f"message {message_id}: stored data is corrupt: {exc}") from exc

    def raw_chunks(
        self, project: str, message_id: str, chunk_size: int = RAW_CHUNK
    ) -> Iterator[bytes]:
        """The message byte-exact as stored, decompressed `chunk_size` bytes at a time: the
        compressed data is read now (NotFound raised here), the message never whole."""

        compressed = self._compressed(project, message_id)
        return _decompressed_chunks(compressed, message_id, chunk_size)

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        # zstandard objects are not thread-safe: one per calling thread.
        found: zstandard.ZstdDecompressor | None = getattr(self._local, "dctx", None)
        if found is None:
            found = zstandard.ZstdDecompressor()
            self._local.dctx = found
        return found

    def tags(self, project: str) -> builtins.list[str]:
        """Tags in use in the project, sorted case-insensitively.

        Every list answer carries them, so they are read by skipping through the (project,
        tag_lc) index from one tag to the next, a few look-ups per tag, rather than grouping
        every tagged message (about 30 ms with 100,000 tagged messages). A tag is spelled as
        its newest row spells it: the writers give all rows of a tag one spelling."""

        return self._run(self._read, functools.partial(self._tags_in_use, project=project))

    @staticmethod
    def _tags_in_use(conn: Connection, project: str) -> builtins.list[str]:
        return [str(tag) for (tag,) in conn.execute(_TAGS_IN_USE, {"project": project})]

    def database_size(self) -> int:
        """Bytes used by the database (SQLite: the file and its WAL)."""
        if self._sqlite_path is not None:
            total = 0
            for suffix in ("", "-wal"):
                with contextlib.suppress(OSError):
                    total += Path(f"{self._sqlite_path}{suffix}").stat().st_size
            return total

        def work(conn: Connection) -> int:
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
            return int(size or 0)

        return self._run(self._read, work)

    # ------------------------------------------------------------------ writes

    def set_read(
        self, project: str, ids: Sequence[str] | None, query: SearchQuery | None, read: bool
    ) -> builtins.list[str]:
        """Mark messages read/unread: `ids` (within `query` if given too), all matching `query`,
        or all when both are None. Returns the ids whose flag changed."""
        conds = self._target(project, query)
        conds.append(_c.read.is_(not read))

        def run(extra: ColumnElement[bool] | None) -> builtins.list[str]:
            def work(conn: Connection) -> builtins.list[str]:
                where = and_(*conds) if extra is None else and_(*conds, extra)
                stmt = update(messages).where(where).values(read=read).returning(_c.id)
                return [str(i) for i in conn.execute(stmt).scalars()]

            return self._run(self._write, work)

        if ids is None:
            return run(None)
        changed: set[str] = set()
        for chunk in chunks(list(dict.fromkeys(ids)), ID_CHUNK):
            changed.update(run(_c.id.in_(chunk)))
        return [i for i in dict.fromkeys(ids) if i in changed]

    def delete(
        self, project: str, ids: Sequence[str] | None, query: SearchQuery | None
    ) -> builtins.list[str]:
        """Delete `ids` (within `query` if given too), all matching `query`, or all when both
        are None. Returns the deleted ids. Bulk deletes commit in chunks.

        Nothing is deleted, and PendingDeliveries names them, when any of the targeted
        messages still has recipients to deliver to: deleting a message never cancels its
        deliveries, and a request is never half done. (The check and the deletes are separate
        transactions; each delete also skips messages with pending deliveries, and the foreign
        key refuses the rest, so a message queued in between is never lost either.)"""
        conds = self._target(project, query)
        if ids is None:
            where = and_(*conds)
            pending = self._run(self._read, lambda conn: pending_recipients(conn, project, where))
            if pending:
                raise PendingDeliveries(pending, None if query is None else "query")
            return self._delete_chunked(project, where)
        unique = list(dict.fromkeys(ids))

        def check(conn: Connection) -> dict[str, tuple[str, ...]]:
            found = pending_of(conn, project, unique)
            if query is None or not found:
                return found
            # Only those the query selects too.
            selected: set[str] = set()
            for chunk in chunks(list(found), ID_CHUNK):
                selected.update(
                    conn.execute(select(_c.id).where(*conds, _c.id.in_(chunk))).scalars()
                )
            return {k: v for k, v in found.items() if k in selected}

        pending = self._run(self._read, check)
        if pending:
            raise PendingDeliveries(pending, "IDs")
        deleted: set[str] = set()
        for chunk in chunks(unique, ID_CHUNK):
            where = and_(*conds, _c.id.in_(chunk))

            def work(conn: Connection, where: ColumnElement[bool] = where) -> builtins.list[str]:
                return self._delete_rows(conn, without_pending(where))

            deleted.update(self._run(self._write, work))
        return [i for i in unique if i in deleted]

    @staticmethod
    def _delete_rows(conn: Connection, victims: ColumnElement[bool]) -> builtins.list[str]:
        """Delete the messages `victims` selects, with their (finished) queue entries."""
        delete_finished(conn, victims)
        stmt = delete(messages).where(victims).returning(_c.id)
        return [str(i) for i in conn.execute(stmt).scalars()]

    def _delete_chunked(self, project: str, where: ColumnElement[bool]) -> builtins.list[str]:
        """Delete matching rows oldest first, DELETE_CHUNK per transaction, so the writer of
        new messages is never held up for long. Rows added after the call began are kept, and
        so are messages with recipients still to deliver to. On SQLite with the full-text
        index, a delete of most messages (fulltext.sqlite_reset_pays) is one transaction that
        empties the index and indexes the rest (the delete-all of 20,000 messages of prose: 0.7
        s instead of 4 s in chunks; the writer waits for it, ~0.035 ms a message)."""

        def ceiling(conn: Connection) -> int | None:
            value = conn.execute(select(func.max(_c.seq)).where(_c.project == project)).scalar()
            return None if value is None else int(value)

        top = self._run(self._read, ceiling)
        if top is None:
            return []
        deleted: builtins.list[str] = []
        floor: tuple[int, int] | None = None  # (created_us, seq) of the last row looked at
        everything = without_pending(and_(where, _c.seq <= top))
        if self.backend == "sqlite" and self._run(
            self._read, lambda conn: fulltext.sqlite_reset_pays(conn, everything)
        ):
            # SQLite's full-text index: most messages go, so emptying the index and indexing
            # the rest is cheaper than unindexing each; one transaction for all of them.
            return self._run(
                self._write,
                lambda conn: fulltext.sqlite_delete_resetting(
                    conn, lambda: self._delete_rows(conn, everything)
                ),
            )
        while True:
            chunk = and_(where, _c.seq <= top)
            if floor is not None:
                chunk = and_(chunk, _after(floor))

            def work(
                conn: Connection, chunk: ColumnElement[bool] = chunk
            ) -> tuple[builtins.list[str], tuple[int, int] | None]:
                # The chunk is a range of (created_us, seq), so no statement carries id lists.
                edge = conn.execute(
                    select(_c.created_us, _c.seq)
                    .where(chunk)
                    .order_by(_c.created_us, _c.seq)
                    .offset(DELETE_CHUNK - 1)
                    .limit(1)
                ).first()
                last = None if edge is None else (int(edge.created_us), int(edge.seq))
                victims = chunk if last is None else and_(chunk, ~_after(last))
                return self._delete_rows(conn, without_pending(victims)), last

            ids, floor = self._run(self._write, work)
            deleted.extend(ids)
            if floor is None:
                return deleted

    def prune(
        self, project: str, max_messages: int | None, older_than: datetime | None
    ) -> builtins.list[str]:
        """Retention: delete messages created before `older_than`, then all but the newest
        `max_messages` (0 keeps none). Returns the deleted ids."""
        deleted: builtins.list[str] = []
        if older_than is not None:
            cutoff = codec.to_micros(older_than)
            deleted += self._delete_chunked(
                project, and_(_c.project == project, _c.created_us < cutoff)
            )
        if max_messages is not None:
            if max_messages < 0:
                raise InvalidInput("max_messages must not be negative", "max_messages")

            def boundary(conn: Connection) -> Any:
                return conn.execute(
                    select(_c.created_us, _c.seq)
                    .where(_c.project == project)
                    .order_by(*_NEWEST_FIRST)
                    .offset(max_messages)
                    .limit(1)
                ).first()

            # The newest message beyond the limit: it and everything older goes.
            edge = self._run(self._read, boundary)
            if edge is not None:
                created, seq = edge
                older = or_(_c.created_us < created, and_(_c.created_us == created, _c.seq <= seq))
                deleted += self._delete_chunked(project, and_(_c.project == project, older))
        return deleted

    def set_tags(self, project: str, ids: Sequence[str], tags: Sequence[str]) -> None:
        """Replace the tags of each message (all or nothing; NotFound if an id is unknown)."""
        wanted = codec.normalise_tags(tags)
        unique_ids = list(dict.fromkeys(ids))

        def work(conn: Connection) -> None:
            # Each message's order key, which its tags' rows hold (schema.py).
            known: dict[str, tuple[int, int]] = {}
            for chunk in chunks(unique_ids, ID_CHUNK):
                known.update(
                    (i, (int(created), int(seq)))
                    for i, created, seq in conn.execute(
                        select(_c.id, _c.created_us, _c.seq).where(
                            _c.project == project, _c.id.in_(chunk)
                        )
                    )
                )
            missing = [i for i in unique_ids if i not in known]
            if missing:
                raise NotFound(f"message {missing[0]} not found")
            for chunk in chunks(unique_ids, ID_CHUNK):
                conn.execute(delete(message_tags).where(message_tags.c.message_id.in_(chunk)))
            if not wanted or not unique_ids:
                return
            spelling = tag_spellings(conn, project, [t.lower() for t in wanted])
            rows = [
                {
                    "message_id": message_id,
                    "project": project,
                    "tag": spelling.get(t.lower(), t),
                    "tag_lc": t.lower(),
                    "created_us": known[message_id][0],
                    "seq": known[message_id][1],
                }
                for message_id in unique_ids
                for t in wanted
            ]
            conn.execute(_INSERT_TAG, rows)

        self._run(self._write, work)

    def rename_tag(self, project: str, old: str, new: str) -> None:
        """Rename a tag (matched case-insensitively) on every message; merges into `new` if
        that tag exists. NotFound if no message carries `old`."""
        old_lc = old.strip().lower()
        new = new.strip()
        new_lc = new.lower()
        if not new:
            raise InvalidInput("the new tag name is empty", "Name")
        mt = message_tags.c

        def work(conn: Connection) -> None:
            in_use = conn.execute(
                select(func.count()).where(mt.project == project, mt.tag_lc == old_lc)
            ).scalar()
            if not in_use:
                raise NotFound(f"tag {old!r} not found")
            if new_lc != old_lc:
                # Messages carrying both: drop the old row, the new one stays.
                both = select(message_tags.c.message_id).where(
                    mt.project == project, mt.tag_lc == new_lc
                )
                conn.execute(
                    delete(message_tags).where(
                        mt.project == project,
                        mt.tag_lc == old_lc,
                        mt.message_id.in_(both.scalar_subquery()),
                    )
                )
            conn.execute(
                update(message_tags)
                .where(mt.project == project, mt.tag_lc.in_([old_lc, new_lc]))
                .values(tag=new, tag_lc=new_lc)
            )

        self._run(self._write, work)

    def delete_tag(self, project: str, tag: str) -> None:
        """Remove a tag (matched case-insensitively) from every message. NotFound if unused."""
        lowered = tag.strip().lower()

        def work(conn: Connection) -> None:
            result = conn.execute(
                delete(message_tags).where(
                    message_tags.c.project == project, message_tags.c.tag_lc == lowered
                )
            )
            if not result.rowcount:
                raise NotFound(f"tag {tag!r} not found")

        self._run(self._write, work)


# The project's tags by index skip-scan (store.tags): each step seeks the next tag_lc. A
# tag's spelling is read from its newest row, an ORDER BY the (project, tag_lc, created_us,
# seq) index serves: without one, PostgreSQL's planner (which expects a tag on a share of all
# rows) read the table from its start until a row of the tag came, the whole table for a tag
# only the newest messages have (every list answer carries the tags).
_TAGS_IN_USE = text(
    """WITH RECURSIVE t(tag_lc) AS (
  SELECT min(tag_lc) FROM message_tags WHERE project = :project
  UNION ALL
  SELECT (SELECT min(m.tag_lc) FROM message_tags m
          WHERE m.project = :project AND m.tag_lc > t.tag_lc)
  FROM t WHERE t.tag_lc IS NOT NULL
)
SELECT (SELECT m.tag FROM message_tags m
        WHERE m.project = :project AND m.tag_lc = t.tag_lc
        ORDER BY m.created_us DESC, m.seq DESC LIMIT 1)
FROM t WHERE t.tag_lc IS NOT NULL ORDER BY t.tag_lc"""
)


def _after(edge: tuple[int, int]) -> ColumnElement[bool]:
    """Messages after `edge` (created_us, seq) in oldest-first order."""
    created, seq = edge
    return or_(_c.created_us > created, and_(_c.created_us == created, _c.seq > seq))


def _decompressed_chunks(compressed: bytes, message_id: str, chunk_size: int) -> Iterator[bytes]:
    # A decompressor of its own: the chunks may be asked for from different threads.
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(compressed))
    while True:
        try:
            chunk = reader.read(chunk_size)
        except zstandard.ZstdError as exc:
            raise StorageError(f"message {message_id}: stored data is corrupt: {exc}") from exc
        if not chunk:
            return
        yield chunk


def _conforms_to_the_port(store: SqlMessageStore) -> MessageStore:
    """Never called: makes mypy check that SqlMessageStore implements MessageStore."""
    return store
