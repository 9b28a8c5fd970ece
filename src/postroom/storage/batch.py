"""Writing one group-commit batch of new messages: rows built once, one transaction, one fsync.

The transaction also writes a `send` event (storage/events.py) per delivery of a live
project's message, and adds each submitted message's sends to its project's counter of the second
it was created (`send_counts`, read by the quotas: pipeline/quota.py), so a message is counted
exactly when it is stored, and the counters older than SEND_COUNT_RETENTION are deleted.

`BatchWriter.write_messages` completes the messages that came without their summary (parsing
them), turns each into plain rows (`prepare`) and writes the batch in one transaction. It runs
in the store's writer thread, or in the writer process (`postroom.storage.writer_process`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import psycopg
import zstandard
from sqlalchemy import Table, select
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DataError, IntegrityError

from postroom.core.errors import StorageError
from postroom.core.events import NewEvent
from postroom.core.ports import Completer
from postroom.core.spooled import SpooledData, spooled_chunks
from postroom.core.types import NewMessage, Summary
from postroom.storage import codec, fulltext, tag_array
from postroom.storage.events import INSERT_COLUMNS as EVENT_COLUMNS
from postroom.storage.events import EventRow, events
from postroom.storage.events import row as event_row
from postroom.storage.platform_store import SEND_COUNT_RETENTION, send_counts
from postroom.storage.queue import INSERT_COLUMNS as QUEUE_COLUMNS
from postroom.storage.queue import QueueRow, queue_entries
from postroom.storage.queue import rows as queue_rows
from postroom.storage.schema import message_raw, message_tags, messages

log = logging.getLogger("postroom.storage.store")

T = TypeVar("T")

ZSTD_LEVEL = 3
# Ids per statement for id lists.
ID_CHUNK = 500

_RAW_COLUMNS = ("message_id", "data")
_TAG_COLUMNS = ("message_id", "project", "tag", "tag_lc", "created_us", "seq")
_CREATED = codec.MESSAGE_COLUMNS.index("created_us")
# Errors caused by one message's data rather than by the database: worth a retry one by one.
_DATA_ERRORS = (IntegrityError, DataError, psycopg.IntegrityError, psycopg.DataError, ValueError)


class Prepared(NamedTuple):
    """One new message as the rows to insert (raw bytes not yet compressed)."""

    id: str
    project: str
    row: tuple[Any, ...]  # the `messages` row, in codec.MESSAGE_COLUMNS order
    raw: bytes
    tags: tuple[str, ...]  # normalised
    queue: tuple[QueueRow, ...]  # the message's deliveries (NewMessage.deliveries)
    events: tuple[EventRow, ...]  # a `send` event per delivery, a `suppressed` per suppressed
    sends: tuple[int, int] | None  # (second since the epoch, sends) of a submitted message
    spooled: SpooledData | None = None  # the rest of the message, in a file


# The summary and tags the writer gave a message that came without a summary.
Completion = tuple[Summary, tuple[str, ...]]
# What writing a batch tells each message: why it was not committed (StorageError), or that
# it was: None, or its Completion if the writer completed it.
Outcome = StorageError | Completion | None
Outcomes = list[Outcome]


def prepare(message: NewMessage) -> Prepared:
    """The rows of a complete message (one with its summary)."""
    sends = None
    if message.sends > 0:
        sends = (codec.to_micros(message.created) // 1_000_000, message.sends)
    return Prepared(
        message.id,
        message.project,
        codec.message_row(message),
        message.raw,
        tuple(codec.normalise_tags(message.tags)) if message.tags else (),
        queue_rows(message),
        send_events(message) + suppressed_events(message),
        sends,
        message.spooled,
    )


def send_events(message: NewMessage) -> tuple[EventRow, ...]:
    """The `send` event of each of a message's deliveries (the message accepted for it)."""
    if not message.deliveries:
        return ()
    detail = {"sender": message.envelope.mail_from}
    return tuple(
        event_row(
            NewEvent(message.project, "send", message.created, message.id, d.recipient, detail)
        )
        for d in message.deliveries
    )


def suppressed_events(message: NewMessage) -> tuple[EventRow, ...]:
    """A `suppressed` event per recipient the suppression list kept the message from."""
    return tuple(
        event_row(
            NewEvent(
                message.project,
                "suppressed",
                message.created,
                message.id,
                recipient,
                {"reason": reason, "scope": scope},
            )
        )
        for recipient, reason, scope in message.suppressed
    )


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def storage_error(exc: BaseException) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    error = StorageError(f"the message store failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def order_keys(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each stored message's page order key (created_us, seq), which its `message_tags` rows
    hold too (schema.py): {message id: key} for the ids found."""
    found: dict[str, tuple[int, int]] = {}
    c = messages.c
    for chunk in chunks(ids, ID_CHUNK):
        rows = conn.execute(select(c.id, c.created_us, c.seq).where(c.id.in_(chunk)))
        found.update((i, (int(created), int(seq))) for i, created, seq in rows)
    return found


def tag_spellings(conn: Connection, project: str, lowered: Sequence[str]) -> dict[str, str]:
    """The spelling already in use for each lower-cased tag name, if any: that of the tag's
    newest row, read from the tag index (project, tag_lc, created_us, seq) in one statement
    whatever the tag's size. (A `min(tag)` per tag read every row of it, so with a tag on
    each message every batch read all the earlier ones: the writer slowed linearly, SQLite
    1.2 ms a message at 3,000 tagged messages and 4.0 at 15,000, PostgreSQL with fresh
    statistics 2.4 and 4.1; now flat.) The rows of a
    tag share one spelling but for writers racing on a new tag; the newest then wins."""
    found: dict[str, str] = {}
    t = message_tags.c
    for chunk in chunks(sorted(set(lowered)), ID_CHUNK):
        newest = [
            select(t.tag)
            .where(t.project == project, t.tag_lc == lc)
            .order_by(t.created_us.desc(), t.seq.desc())
            .limit(1)
            .scalar_subquery()
            .label(f"s{i}")
            for i, lc in enumerate(chunk)
        ]
        row = conn.execute(select(*newest)).one()
        found.update((lc, tag) for lc, tag in zip(chunk, row, strict=True) if tag is not None)
    return found


def _insert_sql(dialect: Dialect, table: Table, columns: Sequence[str]) -> str:
    """A plain positional INSERT for the driver's executemany."""
    quote = dialect.identifier_preparer.quote
    if dialect.paramstyle == "qmark":
        mark = "?"
    elif dialect.paramstyle in ("format", "pyformat"):
        mark = "%s"
    else:  # pragma: no cover - sqlite3 and psycopg are the two drivers
        raise RuntimeError(f"unsupported paramstyle {dialect.paramstyle}")
    names = ", ".join(quote(c) for c in columns)
    marks = ", ".join([mark] * len(columns))
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"


class _BulkInsert:
    """Insert many rows built ready for the driver, skipping SQLAlchemy's per-row parameter
    processing: COPY FROM STDIN on PostgreSQL (one stream instead of a statement per row),
    a positional INSERT with executemany on SQLite."""

    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str]) -> None:
        self.copy = dialect.name == "postgresql"
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in columns)
        if self.copy:
            self.sql = f"COPY {quote(table.name)} ({names}) FROM STDIN"
        else:
            self.sql = _insert_sql(dialect, table, columns)

    def __call__(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        if not self.copy:
            conn.exec_driver_sql(self.sql, rows)
            return
        driver = conn.connection.dbapi_connection
        assert isinstance(driver, psycopg.Connection)
        with driver.cursor() as cursor, cursor.copy(self.sql) as copy:
            for row in rows:
                copy.write_row(row)


class _InsertTags:
    """Insert tag rows (message_id, project, tag, tag_lc, created_us) of messages inserted in
    the same transaction, each with its message's seq (schema.py), which only the database
    knows: SQLite looks it up in the INSERT itself (one id look-up per row); PostgreSQL,
    whose COPY cannot, reads the batch's first (one statement) and copies the rows."""

    def __init__(self, dialect: Dialect) -> None:
        self.sqlite = dialect.name == "sqlite"
        self.copy = _BulkInsert(dialect, message_tags, _TAG_COLUMNS)
        self.sql = (
            "INSERT INTO message_tags (message_id, project, tag, tag_lc, created_us, seq)"
            " VALUES (?, ?, ?, ?, ?, (SELECT seq FROM messages WHERE id = ?))"
        )

    def __call__(self, conn: Connection, rows: Sequence[tuple[str, str, str, str, int]]) -> None:
        if self.sqlite:
            conn.exec_driver_sql(self.sql, [(*r, r[0]) for r in rows])
            return
        ids = list({r[0] for r in rows})
        found = conn.exec_driver_sql("SELECT id, seq FROM messages WHERE id = ANY(%s)", (ids,))
        seqs: dict[str, int] = {str(i): int(q) for i, q in found}
        self.copy(conn, [(*r, seqs[r[0]]) for r in rows])


class _CountSends:
    """Add sends to the per-second counters (one upsert per project and second) and delete the
    project's counters older than SEND_COUNT_RETENTION, in the caller's transaction."""

    def __init__(self, dialect: Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        table, project, bucket, count = (
            quote(n) for n in (send_counts.name, "project", "bucket", "count")
        )
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.upsert = (
            f"INSERT INTO {table} ({project}, {bucket}, {count}) VALUES ({mark}, {mark}, {mark}) "
            f"ON CONFLICT ({project}, {bucket}) DO UPDATE SET {count} = {table}.{count} + "
            f"excluded.{count}"
        )
        self.prune = f"DELETE FROM {table} WHERE {project} = {mark} AND {bucket} < {mark}"
        self.retention = int(SEND_COUNT_RETENTION.total_seconds())

    def __call__(self, conn: Connection, batch: Sequence[Prepared]) -> None:
        counts: dict[tuple[str, int], int] = {}
        for p in batch:
            if p.sends is not None:
                key = (p.project, p.sends[0])
                counts[key] = counts.get(key, 0) + p.sends[1]
        if not counts:
            return
        conn.exec_driver_sql(self.upsert, [(pr, b, n) for (pr, b), n in sorted(counts.items())])
        newest: dict[str, int] = {}
        for project, second in counts:
            newest[project] = max(second, newest.get(project, second))
        conn.exec_driver_sql(
            self.prune, [(pr, second - self.retention) for pr, second in sorted(newest.items())]
        )


class BatchWriter:
    """Insert and commit batches through `engine`, one transaction each.

    `lock` is held around each transaction: the store's own SQLite writers queue on it rather
    than on SQLite's sleeping busy handler. `complete` completes messages that come without
    their summary."""

    def __init__(
        self,
        engine: Engine,
        lock: contextlib.AbstractContextManager[Any] | None = None,
        complete: Completer | None = None,
        index_when_idle: bool = False,
    ) -> None:
        self._engine = engine
        self._complete = complete
        self._lock = lock or contextlib.nullcontext()
        self._local = threading.local()
        dialect = engine.dialect
        # PostgreSQL: each row carries its tags' array too (storage/tag_array.py).
        self._tag_arrays = dialect.name == "postgresql"
        columns = codec.MESSAGE_COLUMNS + ((tag_array.COLUMN,) if self._tag_arrays else ())
        self._insert_message = _BulkInsert(dialect, messages, columns)
        self._insert_raw = _BulkInsert(dialect, message_raw, _RAW_COLUMNS)
        self._insert_tag = _InsertTags(dialect)
        self._insert_queue = _BulkInsert(dialect, queue_entries, QUEUE_COLUMNS)
        self._insert_events = _BulkInsert(dialect, events, EVENT_COLUMNS)
        self._count_sends = _CountSends(dialect)
        # SQLite's full-text index (fulltext.py): the messages waiting to be indexed, as far as
        # this writer knows. A writer thread indexes them all once it has written DRAIN_EVERY;
        # the writer process (`index_when_idle`, writer_child.py) when it has nothing to write
        # (`index_waiting`), and in a batch only the DRAIN_EVERY oldest once WAITING_MAX wait.
        # The first batch indexes (or counts) what others left waiting.
        self._sqlite = dialect.name == "sqlite"
        self._index_when_idle = index_when_idle
        self._waiting = fulltext.WAITING_MAX if index_when_idle else fulltext.DRAIN_EVERY

    @property
    def waiting(self) -> int:
        """The messages waiting to be indexed, as far as this writer knows (0: none, or no
        index)."""
        return self._waiting if self._sqlite else 0

    def index_waiting(self, limit: int) -> int:
        """Index at most `limit` of the waiting messages, the oldest first, in a transaction of
        their own; how many still wait."""
        with self._lock, self._engine.begin() as conn:
            self._waiting = fulltext.sqlite_drain_oldest(conn, limit)
        return self._waiting

    def write_messages(self, messages: Sequence[NewMessage | Prepared]) -> Outcomes:
        """Complete the messages that came without a summary, build the rows of those not
        prepared yet, then write all in one transaction (see `write`)."""
        prepared: list[Prepared] = []
        completions: list[Completion | None] = []
        try:
            for item in messages:
                if isinstance(item, Prepared):
                    prepared.append(item)
                    completions.append(None)
                elif item.summary is not None:
                    prepared.append(prepare(item))
                    completions.append(None)
                else:
                    done = self._completed(item)
                    assert done.summary is not None
                    prepared.append(prepare(done))
                    completions.append((done.summary, done.tags))
        except Exception as exc:  # a bug in parsing or row building: never lose it silently
            log.exception("preparing a batch of %d messages failed", len(messages))
            return [storage_error(exc)] * len(messages)
        outcomes = self.write(prepared)
        return [c if o is None else o for o, c in zip(outcomes, completions, strict=True)]

    def _completed(self, message: NewMessage) -> NewMessage:
        if self._complete is None:
            raise StorageError("a message without its summary reached a store with no completer")
        completed = self._complete(message)
        if completed.summary is None:
            raise StorageError("the completer left a message without its summary")
        return completed

    def write(self, batch: Sequence[Prepared]) -> list[StorageError | None]:
        """Insert and commit `batch` in one transaction.

        On a data error (a duplicate id, text the database refuses such as NUL characters or
        lone surrogates) the batch is retried one message per transaction with such text
        replaced, so a bad message fails alone, if at all; any other error fails the batch.
        """
        try:
            self._insert(batch)
        except _DATA_ERRORS as exc:
            log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            outcomes: list[StorageError | None] = []
            for message in batch:
                try:
                    self._insert([message], clean=True)
                except Exception as single:
                    outcomes.append(storage_error(single))
                else:
                    outcomes.append(None)
            return outcomes
        except Exception as exc:
            log.error("committing a batch of %d messages failed: %s", len(batch), exc)
            return [storage_error(exc)] * len(batch)
        return [None] * len(batch)

    def _compressor(self) -> zstandard.ZstdCompressor:
        # zstandard objects are not thread-safe: one per writer thread.
        found: zstandard.ZstdCompressor | None = getattr(self._local, "cctx", None)
        if found is None:
            found = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
            self._local.cctx = found
        return found

    def _compressed(self, message: Prepared) -> bytes:
        cctx = self._compressor()
        spooled = message.spooled
        if spooled is None:
            return cctx.compress(message.raw)
        # A big message: compressed as it is read from its file, never whole in memory.
        out = io.BytesIO()
        size = len(message.raw) + spooled.size
        with cctx.stream_writer(out, size=size, closefd=False) as writer:
            writer.write(message.raw)
            for chunk in spooled_chunks(spooled):
                writer.write(chunk)
        return out.getvalue()

    def _insert(self, batch: Sequence[Prepared], clean: bool = False) -> None:
        rows = [p.row for p in batch]
        raws = [(p.id, self._compressed(p)) for p in batch]
        tagged = [(p, p.tags) for p in batch if p.tags]
        if clean:
            rows = [codec.clean_row(r) for r in rows]
            tagged = [(p, tuple(codec.normalise_tags(map(codec.clean_text, t)))) for p, t in tagged]
        if self._tag_arrays:
            arrays = {p.id: tag_array.value(tags) for p, tags in tagged}
            rows = [(*r, arrays.get(p.id)) for p, r in zip(batch, rows, strict=True)]
        with self._lock, self._engine.begin() as conn:
            self._insert_message(conn, rows)
            self._insert_raw(conn, raws)
            if tagged:
                tag_rows: list[tuple[str, str, str, str, int]] = []
                for project in {p.project for p, _ in tagged}:
                    wanted = [(p, tags) for p, tags in tagged if p.project == project]
                    names = {t.lower(): t for _, tags in reversed(wanted) for t in tags}
                    spelling = tag_spellings(conn, project, list(names))
                    for p, tags in wanted:
                        for t in tags:
                            lowered = t.lower()
                            canonical = spelling.get(lowered) or names[lowered]
                            created = p.row[_CREATED]
                            tag_rows.append((p.id, project, canonical, lowered, created))
                if tag_rows:
                    self._insert_tag(conn, tag_rows)
            deliveries = [row for p in batch for row in p.queue]
            if deliveries:
                self._insert_queue(conn, deliveries)
            new_events = [row for p in batch for row in p.events]
            if new_events:  # send events, and suppressed ones (a message may have only those)
                self._insert_events(conn, new_events)
            self._count_sends(conn, batch)
            if self._sqlite:
                self._waiting += len(batch)
                if self._index_when_idle:
                    if self._waiting >= fulltext.WAITING_MAX:
                        self._waiting = fulltext.sqlite_drain_oldest(conn, fulltext.DRAIN_EVERY)
                elif self._waiting >= fulltext.DRAIN_EVERY:
                    # One FTS5 segment for ~DRAIN_EVERY messages rather than one per batch.
                    fulltext.sqlite_drain(conn)
                    self._waiting = 0
