"""The suppression list: table `suppressions` and `SqlSuppressionStore`.

One row per (scope, lower-cased address): the scope is a project id or `*` (the account).
Adding an address already there keeps one row: the newer reason, time and expiry replace the
old (an upsert), so imports and the automatic feed can repeat themselves. Times are integer
microseconds since the epoch (UTC); `expires_us` NULL means never.

Bulk import runs one multi-row upsert per chunk of rows in one transaction, so 100,000 rows
take seconds (bench/suppression_import.py); export streams the rows by address.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from postroom.core.errors import InvalidInput, NotFound
from postroom.core.suppression import (
    ACCOUNT,
    MAX_PAGE,
    Suppression,
    SuppressionPage,
    SuppressionQuery,
    address_key,
)
from postroom.storage import codec
from postroom.storage.events import events
from postroom.storage.schema import metadata
from postroom.storage.sql_part import SqlPart

suppressions = Table(
    "suppressions",
    metadata,
    Column("scope", String(100), primary_key=True),
    Column("address_lc", Text, primary_key=True),
    Column("address", Text, nullable=False),
    Column("reason", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=True),
    Column("event_id", BigInteger, nullable=True),
    Column("detail", Text, nullable=False, default=""),
)
Index("ix_suppressions_address", suppressions.c.address_lc)

suppression_feed = Table(
    "suppression_feed",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_event_id", BigInteger, nullable=False),
)

_s = suppressions.c
_COLUMNS = (
    "scope",
    "address_lc",
    "address",
    "reason",
    "created_us",
    "expires_us",
    "event_id",
    "detail",
)
# Rows per INSERT statement in a bulk import (SQLite allows 32,766 bound values; 8 per row).
IMPORT_CHUNK = 2000


def _entry(found: Any) -> Suppression:
    return Suppression(
        scope=found.scope,
        address=found.address,
        reason=found.reason,
        created=codec.from_micros(found.created_us),
        expires=None if found.expires_us is None else codec.from_micros(found.expires_us),
        event_id=found.event_id,
        detail=found.detail or "",
    )


# The suppression check of every accepted message (see SqlSuppressionStore.suppressed): one
# statement on a driver connection, as its SQLAlchemy form cost more than the query itself.
SUPPRESSED_CHUNK = 500
_SUPPRESSED = (
    f"SELECT {', '.join(_COLUMNS)} FROM suppressions"
    " WHERE scope IN ({scopes}) AND address_lc IN ({keys})"
    " AND (expires_us IS NULL OR expires_us > {mark})"
)


def _entry_of(row: tuple[Any, ...]) -> Suppression:
    """A Suppression from a driver row of _COLUMNS."""
    scope, _lc, address, reason, created_us, expires_us, event_id, detail = row
    return Suppression(
        scope=scope,
        address=address,
        reason=reason,
        created=codec.from_micros(created_us),
        expires=None if expires_us is None else codec.from_micros(expires_us),
        event_id=event_id,
        detail=detail or "",
    )


def _row(entry: Suppression) -> dict[str, Any]:
    return {
        "scope": entry.scope,
        "address_lc": address_key(entry.address),
        "address": entry.address,
        "reason": entry.reason,
        "created_us": codec.to_micros(entry.created),
        "expires_us": None if entry.expires is None else codec.to_micros(entry.expires),
        "event_id": entry.event_id,
        "detail": entry.detail,
    }


def _reader(stmt: Any) -> Callable[[Connection], list[Suppression]]:
    return lambda conn: [_entry(r) for r in conn.execute(stmt)]


class SqlSuppressionStore(SqlPart):
    """The suppression list on the message store's database (its engines and write lock)."""

    part = "the suppression list"

    def __init__(
        self,
        read_engine: Engine,
        write_engine: Engine,
        write_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        super().__init__(read_engine, write_engine, write_lock)
        dialect = write_engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._copy = dialect == "postgresql"

    def _upsert(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if self._copy and len(rows) > IMPORT_CHUNK:
            self._copy_upsert(conn, rows)
            return
        stmt = self._insert(suppressions)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_s.scope, _s.address_lc],
            set_={
                "address": stmt.excluded.address,
                "reason": stmt.excluded.reason,
                "created_us": stmt.excluded.created_us,
                "expires_us": stmt.excluded.expires_us,
                "event_id": stmt.excluded.event_id,
                "detail": stmt.excluded.detail,
            },
        )
        for start in range(0, len(rows), IMPORT_CHUNK):
            conn.execute(stmt, list(rows[start : start + IMPORT_CHUNK]))

    def _copy_upsert(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """PostgreSQL, many rows: COPY into a temporary table, then one INSERT ... SELECT ...
        ON CONFLICT (an order of magnitude faster than multi-row INSERTs)."""
        names = ", ".join(_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:])
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE suppression_import "
                "(LIKE suppressions INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            with cursor.copy(f"COPY suppression_import ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row[c] for c in _COLUMNS))
            cursor.execute(
                f"INSERT INTO suppressions ({names}) SELECT {names} FROM suppression_import "
                f"ON CONFLICT (scope, address_lc) DO UPDATE SET {updates}"
            )
            cursor.execute("DROP TABLE suppression_import")

    # -- writes ----------------------------------------------------------------------------

    def add(self, entry: Suppression) -> Suppression:
        """Add or replace the entry of (scope, address)."""
        self._run(self._write, lambda conn: self._upsert(conn, [_row(entry)]))
        return entry

    def add_many(self, entries: Iterable[Suppression]) -> int:
        """Add or replace many entries in one transaction; the number of rows given (an
        address repeated in `entries` counts once, its last entry winning)."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in entries:
            row = _row(entry)
            rows[(row["scope"], row["address_lc"])] = row
        values = list(rows.values())
        self._run(self._write, lambda conn: self._upsert(conn, values))
        return len(values)

    def remove(self, scope: str, address: str) -> None:
        """Delete the entry; NotFound when there is none."""
        stmt = delete(suppressions).where(_s.scope == scope, _s.address_lc == address_key(address))

        def work(conn: Connection) -> None:
            if conn.execute(stmt).rowcount == 0:
                raise NotFound(f"{address} is not on the suppression list")

        self._run(self._write, work)

    def remove_expired(self, now: datetime) -> int:
        stmt = delete(suppressions).where(
            _s.expires_us.is_not(None), _s.expires_us <= codec.to_micros(now)
        )
        return self._run(self._write, lambda conn: int(conn.execute(stmt).rowcount))

    # -- reads -----------------------------------------------------------------------------

    def get(self, scope: str, address: str) -> Suppression:
        stmt = select(suppressions).where(_s.scope == scope, _s.address_lc == address_key(address))
        found = self._run(self._read, lambda conn: conn.execute(stmt).first())
        if found is None:
            raise NotFound(f"{address} is not on the suppression list")
        return _entry(found)

    def query(self, scope: str, query: SuppressionQuery) -> SuppressionPage:
        if not 1 <= query.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", "limit")
        conditions = [_s.scope == scope]
        if query.search:
            pattern = "%" + query.search.lower().replace("\\", "\\\\").replace("%", "\\%")
            pattern = pattern.replace("_", "\\_") + "%"
            conditions.append(_s.address_lc.like(pattern, escape="\\"))
        if query.reason is not None:
            conditions.append(_s.reason == query.reason)
        if query.after is not None:
            conditions.append(_s.address_lc > query.after.lower())
        stmt = (
            select(suppressions).where(*conditions).order_by(_s.address_lc).limit(query.limit + 1)
        )

        def work(conn: Connection) -> SuppressionPage:
            found = [_entry(r) for r in conn.execute(stmt)]
            more = len(found) > query.limit
            page = tuple(found[: query.limit])
            return SuppressionPage(page, address_key(page[-1].address) if more else None)

        return self._run(self._read, work)

    def export(self, scope: str, chunk: int = 5000) -> Iterator[Suppression]:
        """Every entry of a scope, by address, read a chunk at a time."""
        after = ""
        while True:
            stmt = (
                select(suppressions)
                .where(_s.scope == scope, _s.address_lc > after)
                .order_by(_s.address_lc)
                .limit(chunk)
            )
            rows = self._run(self._read, _reader(stmt))
            yield from rows
            if len(rows) < chunk:
                return
            after = address_key(rows[-1].address)

    def suppressed(
        self, project: str, addresses: Sequence[str], now: datetime
    ) -> builtins.dict[str, Suppression]:
        """The entries (the project's, else the account's) that suppress any of `addresses`
        now, by lower-cased address."""
        return self.suppressed_many([(project, addresses)], now)[0]

    def suppressed_many(
        self, questions: Sequence[tuple[str, Sequence[str]]], now: datetime
    ) -> builtins.list[builtins.dict[str, Suppression]]:
        """`suppressed` for several (project, addresses) at once, in one statement (per
        SUPPRESSED_CHUNK addresses): one answer per question, in order."""
        wanted = [{address_key(a) for a in addresses} for _, addresses in questions]
        keys = sorted(set().union(*wanted))
        answers: list[dict[str, Suppression]] = [{} for _ in questions]
        if not keys:
            return answers
        scopes = sorted({project for project, _ in questions} | {ACCOUNT})
        rows: list[tuple[Any, ...]] = []
        mark = self._mark()
        in_scopes = ", ".join([mark] * len(scopes))
        for start in range(0, len(keys), SUPPRESSED_CHUNK):
            chunk = keys[start : start + SUPPRESSED_CHUNK]
            sql = _SUPPRESSED.format(
                mark=mark, scopes=in_scopes, keys=", ".join([mark] * len(chunk))
            )
            rows.extend(self._select(sql, (*scopes, *chunk, codec.to_micros(now))))
        for (project, _), keys_wanted, found in zip(questions, wanted, answers, strict=True):
            for row in rows:
                scope, key = row[0], row[1]
                if key not in keys_wanted or scope not in (project, ACCOUNT):
                    continue
                if key not in found or scope != ACCOUNT:  # the project's entry wins
                    found[key] = _entry_of(row)
        return answers

    # -- the feed from the event log (suppression/feed.py) ------------------------------------

    def feed_cursor(self, name: str) -> int:
        stmt = select(suppression_feed.c.last_event_id).where(suppression_feed.c.name == name)
        found = self._run(self._read, lambda conn: conn.execute(stmt).scalar())
        return int(found or 0)

    def feedback_events(
        self, after: int, types: Sequence[str], limit: int
    ) -> builtins.list[tuple[int, str, str, str, int, str]]:
        """(id, project, type, recipient, time_us, detail JSON) of the events after `after`
        of the given types, oldest first; and the largest event id there is (the cursor may go
        there when nothing of these types came)."""
        e = events.c
        stmt = (
            select(e.id, e.project, e.type, e.recipient, e.time_us, e.detail)
            .where(e.id > after, e.type.in_(list(types)), e.recipient.is_not(None))
            .order_by(e.id)
            .limit(limit)
        )
        return self._run(
            self._read,
            lambda conn: [tuple(r) for r in conn.execute(stmt)],
        )

    def last_event_id(self) -> int:
        stmt = select(func.max(events.c.id))
        return int(self._run(self._read, lambda conn: conn.execute(stmt).scalar()) or 0)

    def failures_since(
        self, project: str, recipient: str, types: Sequence[str], since_us: int, up_to: int
    ) -> builtins.list[str]:
        """The detail (JSON) of a recipient's events of `types` from `since_us` on, up to the
        event id `up_to`."""
        e = events.c
        stmt = select(e.detail).where(
            e.project == project,
            e.recipient_lc == address_key(recipient),
            e.type.in_(list(types)),
            e.time_us >= since_us,
            e.id <= up_to,
        )
        return self._run(self._read, lambda conn: [str(r[0]) for r in conn.execute(stmt)])

    def commit_feed(self, name: str, last_id: int, entries: Sequence[Suppression]) -> None:
        """Add the entries and move the feed's cursor to `last_id`, in one transaction."""
        rows = [_row(entry) for entry in entries]
        cursor = suppression_feed.c

        def work(conn: Connection) -> None:
            if rows:
                self._upsert(conn, rows)
            moved = conn.execute(
                update(suppression_feed).where(cursor.name == name).values(last_event_id=last_id)
            ).rowcount
            if not moved:
                conn.execute(insert(suppression_feed).values(name=name, last_event_id=last_id))

        self._run(self._write, work)
