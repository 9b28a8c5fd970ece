"""The full-text index (storage/fulltext.py, migration 0018, `postroom fulltext on`): every
operator answers exactly what a case-insensitive substring scan answers (SQLite with and
without its index, PostgreSQL); the index follows inserts, deletes and text updates in the same
transaction, search plans use it, and making it indexes rows stored before; on SQLite migration
0020 removes the FTS5 table the first form of 0018 created."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Connection
from tests.integration.storage.factory import attachment, make_message

from postroom.core.clock import FakeClock
from postroom.core.search import SearchQuery, Term, parse_query
from postroom.core.types import NewMessage
from postroom.storage import SqlMessageStore, codec, fulltext, migrate, open_store, resolve_target
from postroom.storage.batch import BatchWriter
from postroom.storage.engine import set_pg_short_index, set_sqlite_fulltext, writer_engine
from postroom.storage.platform_store import SqlPlatformStore
from postroom.storage.schema import message_raw, messages

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = START + timedelta(days=30)

SUBJECTS = [
    "Your INVOICE #42",
    "Weekly news: 100% off_sale",
    'Password "reset" link',
    "Caf\u00e9 \u00c9T\u00c9 menu",
    "日本語の件名 order",
    "re: re: ORDER 7781 shipped",
]
SENDERS = [
    "Billing Dept <billing@shop.example>",
    "News <news@letters.example>",
    "Security <no-reply@auth.example>",
    "Jürgen Groß <jurgen@bücher.example>",
]
BODIES = [
    "amount due: 100% of it",
    "click the link within 24h",
    "special_offer for you",
    "lots of data, order number 7781",
    "nothing to see",
    "le café est fermé",
]


def _corpus() -> list[NewMessage]:
    clock = FakeClock(START)
    out = []
    for n in range(24):
        out.append(
            make_message(
                clock,
                step=3600,
                subject=SUBJECTS[n % len(SUBJECTS)],
                from_=SENDERS[n % len(SENDERS)],
                to=(f"User {n} <user{n}@example.com>",),
                cc=("Carol Cc <carol@example.net>",) if n % 3 == 0 else (),
                body=BODIES[n % len(BODIES)] + f" serial-{n:03d}",
                tags=("Finance",) if n % 4 == 0 else (),
                attachments=(attachment("invoice.pdf"),) if n % 5 == 0 else (),
            )
        )
    return out


def _fields(m: NewMessage) -> dict[str, str]:
    s = m.summary

    def lines(addresses: tuple[object, ...]) -> str:
        return "\n".join(str(a) for a in addresses)

    sender = str(s.from_) if s.from_ is not None else ""
    return {
        "subject": s.subject,
        "from": sender,
        "to": lines(s.to),
        "cc": lines(s.cc),
        "message-id": s.message_id,
        "text": "\n".join(
            (s.subject, sender, lines(s.to), lines(s.cc), lines(s.bcc), s.message_id, s.search_text)
        ),
    }


def _when(query: str) -> datetime:
    when = parse_query(query, NOW).terms[0].when
    assert when is not None
    return when


# (query, expected ids as a predicate over a message): the expectation is computed in Python
# by substring tests, not by the database.
def _expected(corpus: list[NewMessage], query: str) -> set[str]:
    def contains(field: str, needle: str, m: NewMessage) -> bool:
        return needle.lower() in _fields(m)[field].lower()

    checks = {
        "order": lambda m: contains("text", "order", m),
        # two terms, both required
        "ORDER 7781": lambda m: contains("text", "order", m) and contains("text", "7781", m),
        '"ORDER 7781"': lambda m: contains("text", "order 7781", m),
        '"100% of"': lambda m: contains("text", "100% of", m),
        "off_sale": lambda m: contains("text", "off_sale", m),
        "of": lambda m: contains("text", "of", m),
        "café": lambda m: contains("text", "café", m),
        "日本語": lambda m: contains("text", "日本語", m),
        "serial-007": lambda m: contains("text", "serial-007", m),
        "serial-013": lambda m: contains("text", "serial-013", m),
        "from:billing@shop": lambda m: contains("from", "billing@shop", m),
        "from:GROß": lambda m: contains("from", "groß", m),
        "to:user1@": lambda m: contains("to", "user1@", m),
        "cc:carol": lambda m: contains("cc", "carol", m),
        "subject:invoice": lambda m: contains("subject", "invoice", m),
        # "billing" is in From and never in the subject: the column filter must hold.
        "subject:billing": lambda m: contains("subject", "billing", m),
        "message-id:@test.example": lambda m: contains("message-id", "@test.example", m),
        "-subject:order": lambda m: not contains("subject", "order", m),
        "order -from:news": lambda m: (
            contains("text", "order", m) and not contains("from", "news", m)
        ),
        "tag:finance": lambda m: "Finance" in m.tags,
        "has:attachment": lambda m: bool(m.summary.attachments),
        "has:attachment subject:invoice": lambda m: (
            bool(m.summary.attachments) and contains("subject", "invoice", m)
        ),
        "before:2026-03-02": lambda m: m.created < _when("before:2026-03-02"),
        "after:2026-03-01T20:00:00Z order": lambda m: (
            m.created > _when("after:2026-03-01T20:00:00Z") and contains("text", "order", m)
        ),
        # Straddles the subject and From columns of PostgreSQL's concatenated index expression.
        '"42billing"': lambda m: False,
        '"42\nbilling"': lambda m: False,
        # negated free text, alone and beside other terms
        "-order": lambda m: not contains("text", "order", m),
        "-serial-007 order": lambda m: (
            contains("text", "order", m) and not contains("text", "serial-007", m)
        ),
        "serial-0 -serial-00": lambda m: (
            contains("text", "serial-0", m) and not contains("text", "serial-00", m)
        ),
        # a quoted phrase across the body's words, non-ASCII
        '"fermé serial"': lambda m: contains("text", "fermé serial", m),
        "subject:invoice from:billing tag:finance": lambda m: (
            contains("subject", "invoice", m)
            and contains("from", "billing", m)
            and "Finance" in m.tags
        ),
        "absent-term-xyz": lambda m: False,
        "24h": lambda m: contains("text", "24h", m),
        # terms of 1-2 characters (PostgreSQL's index of short terms when rare in the window)
        "24": lambda m: contains("text", "24", m),  # inside a word ("24h"), at its start
        "4h": lambda m: contains("text", "4h", m),  # at a word's end
        "h": lambda m: contains("text", "h", m),
        "ca": lambda m: contains("text", "ca", m),  # before "é" ("café")
        "fé": lambda m: contains("text", "fé", m),  # non-ASCII, at a word's end
        "é": lambda m: contains("text", "é", m),
        "ß": lambda m: contains("text", "ß", m),  # one message in four (Groß), in From
        "日本": lambda m: contains("text", "日本", m),
        "2b": lambda m: contains("text", "2b", m),  # only across subject|From: none
        "qu": lambda m: contains("text", "qu", m),  # in none (no "u" in a ULID)
        "ж": lambda m: contains("text", "ж", m),
        "q": lambda m: contains("text", "q", m),
        "%": lambda m: contains("text", "%", m),  # no letter: scanned
        "h.": lambda m: contains("text", "h.", m),
        "subject:ß": lambda m: contains("subject", "ß", m),
        "from:ß": lambda m: contains("from", "ß", m),
        "-of 24": lambda m: not contains("text", "of", m) and contains("text", "24", m),
    }
    return {m.id for m in corpus if checks[query](m)}


QUERIES = [
    "order",
    "ORDER 7781",
    '"ORDER 7781"',
    '"100% of"',
    "off_sale",
    "of",
    "café",
    "日本語",
    "serial-007",
    "from:billing@shop",
    "from:GROß",
    "to:user1@",
    "cc:carol",
    "subject:invoice",
    "subject:billing",
    "message-id:@test.example",
    "-subject:order",
    "order -from:news",
    "tag:finance",
    "has:attachment",
    "has:attachment subject:invoice",
    "before:2026-03-02",
    "after:2026-03-01T20:00:00Z order",
    '"42billing"',
    '"42\nbilling"',
    "-order",
    "-serial-007 order",
    "serial-0 -serial-00",
    '"fermé serial"',
    "subject:invoice from:billing tag:finance",
    "absent-term-xyz",
    "24h",
]
SHORT_QUERIES = [
    "24",
    "4h",
    "h",
    "ca",
    "fé",
    "é",
    "ß",
    "日本",
    "2b",
    "qu",
    "ж",
    "q",
    "%",
    "h.",
    "of",
    "subject:ß",
    "from:ß",
    "-of 24",
]


async def _fill(store: SqlMessageStore) -> list[NewMessage]:
    corpus = _corpus()
    for m in corpus:
        await store.add(m)
    await store.add(make_message(FakeClock(START), subject="order INVOICE", project="other"))
    return corpus


async def test_each_operator_answers_as_the_substring_scan(store: SqlMessageStore) -> None:
    _answers_as_the_scan(store, await _fill(store))


async def test_short_terms_answer_as_the_substring_scan(
    store: SqlMessageStore, target: str, backend: str
) -> None:
    corpus = await _fill(store)
    _answers_as_the_scan(store, corpus, SHORT_QUERIES)  # scanned
    if backend == "postgres":
        assert set_pg_short_index(target, True)
        _answers_as_the_scan(store, corpus, SHORT_QUERIES)  # rare ones through the index


async def test_sqlite_index_answers_as_the_substring_scan(tmp_path: Path) -> None:
    """With `postroom fulltext on`, made after the messages (it indexes them) and before more
    come (its triggers index those)."""
    target = str(tmp_path / "data")
    store = open_store(target, FakeClock(START))
    try:
        corpus = await _fill(store)
        moved = corpus[12:]
        store.delete("default", [m.id for m in moved], None)
        assert set_sqlite_fulltext(target, True) is True
        for m in moved:
            await store.add(m)
        with store._read.connect() as conn:
            assert fulltext.sqlite_present(conn)
            found = fulltext.sqlite_match(conn, ["serial-007"])
            assert found is not None and found.few  # fewer than RARE candidates
            assert corpus[7].id in _sqlite_hits(conn, "serial-007")
            assert corpus[13].id in _sqlite_hits(conn, "serial-013")
        _answers_as_the_scan(store, corpus)
        assert set_sqlite_fulltext(target, None) is True
        assert set_sqlite_fulltext(target, False) is False
        with store._read.connect() as conn:
            assert not fulltext.sqlite_present(conn)
        _answers_as_the_scan(store, corpus)
    finally:
        await store.close()


async def test_sqlite_index_with_common_trigrams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filter's other branches, made reachable on a small corpus by lowering the bounds:
    no trigram under RARE (counted again up to MANY), none under MANY (PICK of them all), and
    more than FEW candidates (the (project, created) index walks the page)."""
    monkeypatch.setattr(fulltext, "RARE", 1)
    monkeypatch.setattr(fulltext, "MANY", 3)
    monkeypatch.setattr(fulltext, "FEW", 2)
    target = str(tmp_path / "data")
    store = open_store(target, FakeClock(START))
    try:
        set_sqlite_fulltext(target, True)
        corpus = await _fill(store)
        _answers_as_the_scan(store, corpus)  # most of them waiting to be indexed
        with store._write.begin() as conn:
            fulltext.sqlite_drain(conn)
        with store._read.connect() as conn:
            common = fulltext.sqlite_match(conn, ["order"])
            assert common is not None and not common.few
            assert common.match == '"ord" "rde" "der"'
        _answers_as_the_scan(store, corpus)
    finally:
        await store.close()


def _answers_as_the_scan(
    store: SqlMessageStore, corpus: list[NewMessage], queries: list[str] = QUERIES
) -> None:
    for query in queries:
        page = store.list("default", parse_query(query, NOW), 0, 100)
        found = {m.id for m in page.messages}
        assert found == _expected(corpus, query), query
        assert page.matched == len(found), query
        first = store.page("default", parse_query(query, NOW), 0, 5)
        assert [m.id for m in first.messages] == [m.id for m in page.messages[:5]], query
    # A double quote reaches the FTS5 phrase quoted (the parser cannot spell one in a term).
    quoted = store.list("default", SearchQuery((Term("text", text='"RESET" link'),)), 0, 100)
    assert (
        {m.id for m in quoted.messages}
        == {m.id for m in corpus if '"reset" link' in m.summary.subject.lower()}
        != set()
    )
    # the bar's operators are not vacuous here
    for query in ("order", "from:billing@shop", "subject:invoice", "tag:finance", "café"):
        assert _expected(corpus, query), query


def _index_hits(conn: Connection, needle: str) -> set[str]:
    """Ids PostgreSQL's trigram index yields for `needle` (lower-case, >= 3 characters), with
    the plan checked to go through the index."""
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    sql = f"SELECT id FROM messages WHERE {fulltext.PG_EXPRESSION} LIKE :q"
    plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql), {"q": f"%{needle}%"}))
    assert fulltext.PG_INDEX in plan, plan
    return {r[0] for r in conn.execute(text(sql), {"q": f"%{needle}%"})}


async def test_pg_index_follows_inserts_and_deletes(postgres_database: str) -> None:
    store = open_store(postgres_database, FakeClock(START))
    try:
        corpus = await _fill(store)
        with store._write.begin() as conn:
            assert _index_hits(conn, "serial-007") == {corpus[7].id}
            assert _index_hits(conn, "order 7781") == _expected(corpus, '"ORDER 7781"')
        store.delete("default", [corpus[7].id], None)
        store.delete("default", None, parse_query("subject:invoice", NOW))
        with store._write.begin() as conn:
            assert _index_hits(conn, "serial-007") == set()
            assert _index_hits(conn, "your invoice") == set()
            assert _index_hits(conn, "order 7781") == _expected(corpus, '"ORDER 7781"') - {
                corpus[7].id
            }
        added = make_message(FakeClock(NOW), subject="Fresh arrival zebra")
        await store.add(added)
        with store._write.begin() as conn:
            assert _index_hits(conn, "zebra") == {added.id}
        page = store.list("default", parse_query("zebra", NOW), 0, 10)
        assert [m.id for m in page.messages] == [added.id]
    finally:
        await store.close()


def _short_hits(conn: Connection, needle: str) -> set[str]:
    """Ids PostgreSQL's index of short terms yields for `needle` (lower-case, 1-2 letters or
    digits), with the plan checked to go through that index."""
    pattern = fulltext.short_pattern(needle)
    assert pattern is not None, needle
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    sql = f"SELECT id FROM messages WHERE {fulltext.PG_SHORT_EXPRESSION} LIKE :q"
    plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql), {"q": pattern}))
    assert fulltext.PG_SHORT_INDEX in plan, plan
    return {r[0] for r in conn.execute(text(sql), {"q": pattern})}


def _in_concatenation(conn: Connection, needle: str) -> set[str]:
    """Ids of the rows whose concatenated text columns hold `needle` (read by a scan)."""
    sql = f"SELECT id FROM messages WHERE strpos({fulltext.PG_EXPRESSION}, :n) > 0"
    return {r[0] for r in conn.execute(text(sql), {"n": needle})}


def test_short_patterns() -> None:
    assert fulltext.short_pattern("ab") == "%a0b%"
    assert fulltext.short_pattern("é") == "%0é0%"
    assert fulltext.short_pattern("7") == "%070%"
    for refused in ("", "abc", "a.", "%", "_", " a", "²"):
        assert fulltext.short_pattern(refused) is None, refused


async def test_pg_short_index_finds_every_short_term(postgres_database: str) -> None:
    """Every 1-2 character term of letters and digits that some stored text holds, and some
    that none holds: the index of short terms (made over stored messages) yields exactly the
    rows whose concatenation holds it (a superset for a term of separators, "0" and "00"),
    through inserts and deletes."""
    store = open_store(postgres_database, FakeClock(START))
    try:
        await _fill(store)
        assert not set_pg_short_index(postgres_database, None)  # off by default
        assert set_pg_short_index(postgres_database, True)
        added = make_message(FakeClock(NOW), subject="Zu x", body="ab0 00 xy")
        await store.add(added)
        with store._write.begin() as conn:
            texts = [
                r[0] for r in conn.execute(text(f"SELECT {fulltext.PG_EXPRESSION} FROM messages"))
            ]
            needles = {
                t[i : i + n]
                for t in texts
                for n in (1, 2)
                for i in range(len(t) - n + 1)
                if fulltext.short_pattern(t[i : i + n]) is not None
            }
            assert len(needles) > 300
            # every fourth (the plan and two reads each), some absent, the separator's
            sample = [*sorted(needles)[::4], "vu", "uj", "zz", "ж", "0", "00", "é", "ß", "日本"]
            checked = 0
            for needle in sample:
                hits, holding = _short_hits(conn, needle), _in_concatenation(conn, needle)
                if set(needle) <= {fulltext.SEPARATOR}:
                    assert hits >= holding, needle
                else:
                    assert hits == holding, needle
                checked += bool(holding)
            assert checked > 70
            assert _short_hits(conn, "zu") == {added.id}
            assert _short_hits(conn, "vu") == set()  # no "u" in a ULID
        store.delete("default", [added.id], None)
        with store._write.begin() as conn:
            assert _short_hits(conn, "zu") == set()
        assert set_pg_short_index(postgres_database, True)  # already there
        assert not set_pg_short_index(postgres_database, False)
        with store._write.begin() as conn:
            assert fulltext.pg_short_state(conn) is None
        # A failed CONCURRENTLY build leaves an invalid index, which searches do not use
        # and `on` makes again.
        with store._write.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(fulltext.pg_short_create_statement())
            conn.exec_driver_sql(
                "UPDATE pg_index SET indisvalid = false "
                f"WHERE indexrelid = '{fulltext.PG_SHORT_INDEX}'::regclass"
            )
            assert fulltext.pg_short_state(conn) is False
            assert not fulltext.pg_short_present(conn)
        assert set_pg_short_index(postgres_database, True)
        page = store.list("default", parse_query("ß", NOW), 0, 100)
        assert page.matched == len(page.messages) > 0
    finally:
        await store.close()


async def test_pg_rare_short_term_is_read_from_its_index(postgres_database: str) -> None:
    """The statement a page of a rare 2-character term runs is planned (not forced) through
    the index of short terms once the table is large; a common one walks newest first."""
    store = open_store(postgres_database, FakeClock(START))
    statements: list[tuple[str, object]] = []

    def record(conn: object, cursor: object, statement: str, params: object, *_: object) -> None:
        if "regexp_replace" in statement:
            statements.append((statement, params))

    try:
        assert set_pg_short_index(postgres_database, True)
        clock = FakeClock(START)
        rows = [
            dict(
                zip(
                    codec.MESSAGE_COLUMNS,
                    codec.message_row(
                        make_message(clock, subject=f"note {n}", body=f"word{n % 97} text")
                    ),
                    strict=True,
                )
            )
            for n in range(6000)
        ]
        with store._write.begin() as conn:
            conn.execute(insert(messages), rows)
        rare = make_message(FakeClock(START), subject="the vu sign")
        await store.add(rare)
        with store._write.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE messages")
        event.listen(store._read, "before_cursor_execute", record)
        page = store.page("default", parse_query("vu", NOW), 0, 50)
        assert [m.id for m in page.messages] == [rare.id]
        assert statements, "no statement used the index of short terms"
        with store._read.connect() as conn:
            plan = "\n".join(
                r[0]
                for r in conn.exec_driver_sql("EXPLAIN " + statements[-1][0], statements[-1][1])
            )
        assert fulltext.PG_SHORT_INDEX in plan, plan
        statements.clear()
        page = store.page("default", parse_query("te", NOW), 0, 50)
        assert len(page.messages) == 50 and not statements  # the window held the page
    finally:
        event.remove(store._read, "before_cursor_execute", record)
        await store.close()


def _fts_hits(conn: Connection, needle: str) -> set[str]:
    """Ids of project "default" that SQLite's FTS5 table yields for all the trigrams of
    `needle` (lower-case): a superset of the indexed messages holding it (the trigrams of
    "serial-007" can all be in a message that says "serial-012" and has "007" in the random
    part of its Message-ID)."""
    match = " ".join(f'"{g}"' for g in fulltext.trigrams(needle))
    sql = (
        f"SELECT id FROM messages WHERE project = 'default' AND seq IN (SELECT rowid FROM "
        f"{fulltext.SQLITE_TABLE} WHERE {fulltext.SQLITE_TABLE} MATCH :m)"
    )
    return {r[0] for r in conn.execute(text(sql), {"m": match})}


def _waiting(conn: Connection) -> set[str]:
    """Ids of the messages waiting to be indexed (the LIKE tests them)."""
    sql = f"SELECT id FROM messages WHERE seq IN (SELECT seq FROM {fulltext.PENDING_TABLE})"
    return {r[0] for r in conn.execute(text(sql))}


def _sqlite_hits(conn: Connection, needle: str) -> set[str]:
    """The candidates a search for `needle` gets: the FTS5 table's, and the waiting ones."""
    return _fts_hits(conn, needle) | _waiting(conn)


def _sqlite_intact(conn: Connection) -> None:
    table = fulltext.SQLITE_TABLE
    conn.execute(text(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 0)"))


async def test_sqlite_index_follows_inserts_deletes_and_updates(tmp_path: Path) -> None:
    """A new message waits until the writer indexes the waiting ones (drained here); a
    deleted one leaves the index or the waiting list; a text update takes it out of the index
    and back into the waiting list."""
    target = str(tmp_path / "data")
    store = open_store(target, FakeClock(START))
    try:
        set_sqlite_fulltext(target, True)
        corpus = await _fill(store)
        with store._write.begin() as conn:
            assert fulltext.sqlite_drain(conn)
            assert _waiting(conn) == set()
            assert corpus[7].id in _fts_hits(conn, "serial-007")
            assert (
                _fts_hits(conn, "jurgen@bücher")
                == {m.id for m in corpus if "jurgen@bücher" in _fields(m)["from"].lower()}
                != set()
            )
        store.delete("default", [corpus[7].id], None)
        store.delete("default", None, parse_query("subject:invoice", NOW))
        with store._write.begin() as conn:
            assert corpus[7].id not in _fts_hits(conn, "serial-007")
            assert _fts_hits(conn, "your invoice") == set()
            assert corpus[13].id in _fts_hits(conn, "serial-013")
            conn.execute(
                text("UPDATE messages SET subject_lc = 'renamed quokka' WHERE id = :id"),
                {"id": corpus[13].id},
            )
            assert _waiting(conn) == {corpus[13].id}
            assert corpus[13].id not in _fts_hits(conn, "serial-013")
            assert fulltext.sqlite_drain(conn)
            assert _fts_hits(conn, "quokka") == {corpus[13].id}
            assert corpus[13].id in _fts_hits(conn, "serial-013")  # the body's
            conn.execute(
                text("UPDATE messages SET search_text = 'gone' WHERE id = :id"),
                {"id": corpus[13].id},
            )
            conn.execute(  # updated again while waiting: waits once
                text("UPDATE messages SET subject_lc = 'renamed wombat' WHERE id = :id"),
                {"id": corpus[13].id},
            )
            assert _waiting(conn) == {corpus[13].id}
            assert fulltext.sqlite_drain(conn)
            assert corpus[13].id not in _fts_hits(conn, "serial-013")
            assert _fts_hits(conn, "wombat") == {corpus[13].id}
            _sqlite_intact(conn)
        added = make_message(FakeClock(NOW), subject="Fresh arrival zebra")
        await store.add(added)
        with store._write.begin() as conn:
            assert added.id in _sqlite_hits(conn, "zebra")
        page = store.list("default", parse_query("zebra", NOW), 0, 10)
        assert [m.id for m in page.messages] == [added.id]
        assert [m.id for m in store.page("default", parse_query("zebra", NOW), 0, 10).messages] == [
            added.id
        ]
        gone = make_message(FakeClock(NOW), subject="Deleted while waiting")
        await store.add(gone)
        with store._write.begin() as conn:
            assert gone.id in _waiting(conn)  # never indexed: the delete must not unindex it
        store.delete("default", [gone.id], None)
        with store._write.begin() as conn:
            assert gone.id not in _waiting(conn)
            _sqlite_intact(conn)
            assert fulltext.sqlite_drain(conn)
            assert _fts_hits(conn, "zebra") == {added.id}
            _sqlite_intact(conn)
    finally:
        await store.close()


async def test_waiting_messages_are_found_and_the_writer_indexes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every search finds the messages not indexed yet (a term only their Message-ID, a
    subject: or a to: holds, as the LIKE decides), and the writer indexes the waiting ones
    once it has written DRAIN_EVERY messages."""
    monkeypatch.setattr(fulltext, "DRAIN_EVERY", 5)
    target = str(tmp_path / "data")
    store = open_store(target, FakeClock(START))
    try:
        with store._read.connect() as conn:
            assert fulltext.sqlite_present(conn)  # on in a new database
        clock = FakeClock(START)
        sent = []
        for n in range(12):
            m = make_message(
                clock, step=60, subject=f"Wave {n:02d} kestrel", to=(f"owl{n:02d}@nest.example",)
            )
            m = dataclasses.replace(
                m,
                summary=dataclasses.replace(
                    m.summary, message_id=f"<mid-{n:02d}-qx7@host.example>"
                ),
            )
            await store.add(m)
            sent.append(m)
        with store._read.connect() as conn:
            waiting = _waiting(conn)
            indexed = _fts_hits(conn, "kestrel")
        assert 0 < len(waiting) < 5  # the writer drained the rest in its transactions
        assert len(indexed) == 12 - len(waiting)
        assert indexed | waiting == {m.id for m in sent}
        for m in sent:
            n = int(m.summary.subject.split()[1])
            for query in (
                f"mid-{n:02d}-qx7",
                f"message-id:MID-{n:02d}-",
                f"subject:wave {n:02d}",
                f"to:owl{n:02d}@",
            ):
                page = store.page("default", parse_query(query, NOW), 0, 10)
                assert [x.id for x in page.messages] == [m.id], query
    finally:
        await store.close()


async def test_a_new_sqlite_database_has_the_index_an_existing_one_keeps_its_choice(
    tmp_path: Path,
) -> None:
    """Migration 0027: on in a new database; a database made before keeps it off, or, when
    `postroom fulltext on` had made it (first form: indexed in each insert's transaction),
    keeps its rows and gets the waiting list."""
    assert set_sqlite_fulltext(str(tmp_path / "new"), None) is True
    corpus = [dataclasses.replace(m, tags=()) for m in _corpus()]
    for name, made in (("off", False), ("on", True)):
        target = str(tmp_path / name)
        Path(target).mkdir(mode=0o700)
        engine = writer_engine(target)
        try:
            with engine.begin() as conn:
                command.upgrade(migrate.alembic_config(conn), "0026")
                if made:
                    for statement in FIRST_FORM:
                        conn.execute(text(statement))
                for m in corpus:
                    _insert_0017(conn, m)
        finally:
            engine.dispose()
        store = open_store(target, FakeClock(START))
        try:
            with store._write.begin() as conn:
                assert migrate.current_revision(conn) == migrate.head_revision()
                assert fulltext.sqlite_present(conn) is made
                if made:
                    assert _waiting(conn) == set()
                    assert _fts_hits(conn, "serial-013") == {corpus[13].id}
            added = make_message(FakeClock(NOW), subject="after the upgrade")
            await store.add(added)
            for query in ("order", "subject:invoice", "serial-013"):
                page = store.list("default", parse_query(query, NOW), 0, 100)
                assert {m.id for m in page.messages} == _expected(corpus, query), query
            found = store.list("default", parse_query("after the upgrade", NOW), 0, 10)
            assert [m.id for m in found.messages] == [added.id]
            if made:
                store.delete("default", [corpus[13].id], None)
                with store._write.begin() as conn:
                    assert _fts_hits(conn, "serial-013") == set()
                    _sqlite_intact(conn)
        finally:
            await store.close()


_FIRST_TEXT = " || char(10) || ".join(f"new.{c}" for c in fulltext.FTS_COLUMNS)
_FIRST_OLD = _FIRST_TEXT.replace("new.", "old.")
FIRST_FORM = [  # what `postroom fulltext on` made before migration 0027
    "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='', detail=none, "
    "columnsize=0, tokenize='trigram case_sensitive 1')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
    f"INSERT INTO messages_fts(rowid, body) VALUES (new.seq, {_FIRST_TEXT}); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    f"INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.seq, {_FIRST_OLD}); "
    "END",
]


def test_trigrams_are_distinct_and_in_order() -> None:
    assert fulltext.trigrams("abcabc") == ["abc", "bca", "cab"]
    assert fulltext.trigrams("ab") == []
    assert fulltext.trigrams("日本語の") == ["日本語", "本語の"]


def _insert_0017(conn: Connection, message: NewMessage) -> None:
    row = dict(zip(codec.MESSAGE_COLUMNS, codec.message_row(message), strict=True))
    conn.execute(insert(messages).values(row))
    conn.execute(insert(message_raw).values(message_id=message.id, data=b"not read here"))


OLD_SQLITE_FTS = [  # what the first form of migration 0018 created on SQLite
    "CREATE VIRTUAL TABLE messages_fts USING fts5(subject_lc, from_text, to_text, cc_text, "
    "bcc_text, message_id_lc, search_text, content='messages', content_rowid='seq', "
    "tokenize='trigram case_sensitive 1')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, subject_lc) VALUES (new.seq, new.subject_lc); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, subject_lc) "
    "VALUES ('delete', old.seq, old.subject_lc); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
]


async def test_migration_on_a_database_holding_rows(
    target: str, backend: str, clock: FakeClock
) -> None:
    """PostgreSQL: 0018 indexes the rows already stored. SQLite: 0020 drops the FTS5 table and
    triggers the first form of 0018 left, and the messages stay searchable and writable."""
    resolved = resolve_target(target)
    if resolved.sqlite_path is not None:
        Path(resolved.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    corpus = [dataclasses.replace(m, tags=()) for m in _corpus()]
    engine = writer_engine(target)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "0017")
            for m in corpus:
                _insert_0017(conn, m)
            if backend == "sqlite":
                command.upgrade(migrate.alembic_config(conn), "0018")
                for statement in OLD_SQLITE_FTS:
                    conn.execute(text(statement))
    finally:
        engine.dispose()
    store = open_store(target, clock)
    try:
        with store._write.begin() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
            if backend == "postgres":
                assert _index_hits(conn, "serial-013") == {corpus[13].id}
                assert _index_hits(conn, "order") == _expected(corpus, "order")
            else:
                left = conn.execute(
                    text("SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'")
                ).all()
                assert left == []
        for query in ("order", "from:billing@shop", "subject:invoice", "café", "serial-013"):
            page = store.list("default", parse_query(query, NOW), 0, 100)
            assert {m.id for m in page.messages} == _expected(corpus, query), query
        added = make_message(clock, subject="after the upgrade")
        await store.add(added)
        store.delete("default", [corpus[0].id], None)
        found = store.list("default", parse_query("after the upgrade", NOW), 0, 10).messages
        assert [m.id for m in found] == [added.id]
    finally:
        await store.close()


def _fts_all(conn: Connection, needle: str) -> set[str]:
    """Ids of any project that the FTS5 table yields for the trigrams of `needle`."""
    match = " ".join(f'"{g}"' for g in fulltext.trigrams(needle))
    sql = (
        f"SELECT id FROM messages WHERE seq IN (SELECT rowid FROM {fulltext.SQLITE_TABLE} "
        f"WHERE {fulltext.SQLITE_TABLE} MATCH :m)"
    )
    return {r[0] for r in conn.execute(text(sql), {"m": match})}


def _fts_rows(conn: Connection) -> int:
    """The FTS5 table's rows holding a trigram every message of the corpus has."""
    sql = f"SELECT count(*) FROM {fulltext.SQLITE_TABLE} WHERE {fulltext.SQLITE_TABLE} MATCH :m"
    return int(conn.execute(text(sql), {"m": '"exa" OR "ple" OR "com"'}).scalar_one())


def _counting_resets(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every bulk delete of at least one message pay for a reset, and count resets."""
    monkeypatch.setattr(fulltext, "RESET_MIN", 1)
    resets: list[int] = []
    original = fulltext.sqlite_delete_resetting

    def counted(conn: Connection, delete_rows: object) -> object:
        resets.append(1)
        return original(conn, delete_rows)  # type: ignore[arg-type]

    monkeypatch.setattr(fulltext, "sqlite_delete_resetting", counted)
    return resets


def _delete_trigger_back(conn: Connection) -> None:
    found = conn.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
        {"n": "messages_fts_delete"},
    ).scalar_one()
    assert found in fulltext.sqlite_trigger_statements()


async def test_delete_all_empties_the_index_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting every message (the Mailpit API's delete-all) empties the FTS5 table with its
    'delete-all' and clears the waiting list, rather than unindexing each message; the index
    stays intact and follows the messages stored after."""
    resets = _counting_resets(monkeypatch)
    target = str(tmp_path / "data")
    store = open_store(target, FakeClock(START))
    try:
        corpus = _corpus()
        for m in corpus[:20]:
            await store.add(m)
        with store._write.begin() as conn:
            assert fulltext.sqlite_drain(conn)
        for m in corpus[20:]:  # these wait
            await store.add(m)
        with store._write.begin() as conn:
            assert _waiting(conn) == {m.id for m in corpus[20:]}
            assert _fts_rows(conn) == 20
        deleted = store.delete("default", None, None)
        assert set(deleted) == {m.id for m in corpus}
        assert resets == [1]
        with store._write.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == 0
            assert _waiting(conn) == set()
            pending = f"SELECT count(*) FROM {fulltext.PENDING_TABLE}"
            assert conn.execute(text(pending)).scalar_one() == 0
            assert _fts_rows(conn) == 0
            _sqlite_intact(conn)
            _delete_trigger_back(conn)
        fresh = [
            make_message(FakeClock(NOW), subject=f"after the purge {n}", body="serial-007")
            for n in range(3)
        ]
        for m in fresh:
            await store.add(m)
        with store._write.begin() as conn:
            assert fulltext.sqlite_drain(conn)
            assert _fts_hits(conn, "serial-007") == {m.id for m in fresh}
            _sqlite_intact(conn)
        for query in ("serial-007", "subject:purge", "order"):
            page = store.list("default", parse_query(query, NOW), 0, 100)
            expected = {m.id for m in fresh} if query != "order" else set()
            assert {m.id for m in page.messages} == expected, query
        store.delete("default", [fresh[0].id], None)  # the trigger is back: one by one
        assert resets == [1]
        with store._write.begin() as conn:
            assert _fts_hits(conn, "serial-007") == {m.id for m in fresh[1:]}
            _sqlite_intact(conn)
    finally:
        await store.close()


@pytest.mark.parametrize("reset", [True, False])
async def test_bulk_deletes_keep_the_other_messages_findable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reset: bool
) -> None:
    """Deleting one project's messages in a two-project database, a search's matches, or a
    project: emptying the index and indexing again the messages left (`reset`, the path taken
    when most messages go) or unindexing each leaves the same index, the kept messages found."""
    resets = _counting_resets(monkeypatch)
    if not reset:
        monkeypatch.setattr(fulltext, "RESET_MIN", 10**9)
    target = str(tmp_path / "data")
    store = open_store(target, FakeClock(START))
    try:
        corpus = _corpus()
        others = [
            make_message(FakeClock(START), subject=f"kept {n}", body="kestrel", project="other")
            for n in range(4)
        ]
        for m in [*corpus, *others[:3]]:
            await store.add(m)
        with store._write.begin() as conn:
            assert fulltext.sqlite_drain(conn)
        await store.add(others[3])  # waits
        # A search's matches, most of the messages: the others are indexed again.
        kept = corpus[:5]
        store.set_read("default", [m.id for m in kept], None, True)
        gone = store.delete("default", None, parse_query("is:unread", NOW))
        assert set(gone) == {m.id for m in corpus[5:]}
        assert len(resets) == (1 if reset else 0)
        with store._write.begin() as conn:
            _sqlite_intact(conn)
            _delete_trigger_back(conn)
            assert _fts_hits(conn, "serial-0") <= {m.id for m in kept}
            for n, m in enumerate(kept):
                assert m.id in _sqlite_hits(conn, f"serial-{n:03d}")
            assert _fts_hits(conn, "serial-010") == set()
        page = store.list("default", parse_query("serial", NOW), 0, 100)
        assert {m.id for m in page.messages} == {m.id for m in kept}
        # One project's messages, the other's kept.
        assert set(store.delete("default", None, None)) == {m.id for m in kept}
        with store._write.begin() as conn:
            _sqlite_intact(conn)
            assert _fts_all(conn, "kestrel") | _waiting(conn) >= {m.id for m in others}
            assert _fts_hits(conn, "serial-0") == set()
        page = store.list("other", parse_query("kestrel", NOW), 0, 10)
        assert {m.id for m in page.messages} == {m.id for m in others}
        assert not store.list("default", parse_query("serial", NOW), 0, 10).messages
        # The project, with its messages: the other's kept.
        platform = SqlPlatformStore(store._read, store._write, owns_engines=False)
        for n in range(5):
            await store.add(make_message(FakeClock(NOW), subject=f"doomed {n}", body="osprey"))
        with store._write.begin() as conn:
            assert fulltext.sqlite_drain(conn)
        platform.delete_project("default")
        assert len(resets) == (3 if reset else 0)  # 5 of 9 messages go
        with store._write.begin() as conn:
            _sqlite_intact(conn)
            _delete_trigger_back(conn)
            assert _fts_all(conn, "osprey") == set()
            assert _fts_all(conn, "kestrel") == {m.id for m in others}
        page = store.list("other", parse_query("kestrel", NOW), 0, 10)
        assert {m.id for m in page.messages} == {m.id for m in others}
    finally:
        await store.close()


async def test_delete_all_while_messages_arrive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete-all emptying the index runs while the writer stores new messages: those it
    keeps (stored after it began) stay found, and the index holds exactly the messages left."""
    resets = _counting_resets(monkeypatch)
    target = str(tmp_path / "data")
    store = open_store(target, FakeClock(START))
    try:
        clock = FakeClock(START)
        first = [make_message(clock, subject=f"early {n}", body=f"tok-a{n:03d}") for n in range(40)]
        for m in first:
            await store.add(m)
        with store._write.begin() as conn:
            assert fulltext.sqlite_drain(conn)
        later = [make_message(clock, subject=f"late {n}", body=f"tok-b{n:03d}") for n in range(40)]

        async def arrive() -> None:
            for m in later:
                await store.add(m)

        deleting = asyncio.create_task(asyncio.to_thread(store.delete, "default", None, None))
        await arrive()
        deleted = set(await deleting)
        assert resets == [1]
        assert {m.id for m in first} <= deleted <= {m.id for m in first + later}
        left = [m for m in first + later if m.id not in deleted]
        with store._write.begin() as conn:
            _sqlite_intact(conn)
            _delete_trigger_back(conn)
            waiting = _waiting(conn)
            indexed = _fts_all(conn, "tok-")
            assert indexed | waiting == {m.id for m in left}
            assert not indexed & waiting
        for m in left:
            term = m.summary.search_text.split()[-1]
            page = store.list("default", parse_query(term, NOW), 0, 10)
            assert [x.id for x in page.messages] == [m.id], term
    finally:
        await store.close()


async def _indexed_after_a_pause(store: SqlMessageStore) -> None:
    """Wait (at most 20 s) until no message waits to be indexed; fail if some still do."""
    for _ in range(200):
        with store._read.connect() as conn:
            if not _waiting(conn):
                return
        await asyncio.sleep(0.1)
    with store._read.connect() as conn:
        assert _waiting(conn) == set()


async def test_the_writer_process_indexes_the_waiting_messages_in_a_pause(tmp_path: Path) -> None:
    """The writer process leaves new messages waiting while batches come and indexes them once
    none has come for fulltext.IDLE_DRAIN; they are found all along."""
    store = open_store(str(tmp_path / "data"), FakeClock(START), writer_process=True)
    try:
        clock = FakeClock(START)
        sent = [make_message(clock, step=60, subject=f"Heron h{n:02d}x quill") for n in range(30)]
        for m in sent:
            await store.add(m)
        page = store.page("default", parse_query("quill", NOW), 0, 50)
        assert {x.id for x in page.messages} == {m.id for m in sent}
        await _indexed_after_a_pause(store)
        with store._read.connect() as conn:
            assert _fts_hits(conn, "quill") == {m.id for m in sent}
            _sqlite_intact(conn)
        page = store.page("default", parse_query("subject:h07x", NOW), 0, 50)
        assert [x.id for x in page.messages] == [sent[7].id]
    finally:
        await store.close()


async def test_the_writer_process_indexes_with_a_descriptor_over_1024(tmp_path: Path) -> None:
    """A server holding over 1,024 descriptors starts the writer process on one above them
    (it keeps the parent's number): its pauses still index."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1_200 and hard < 1_200:
        pytest.skip(f"needs 1,200 open files; the limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1_200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1_100)]
    try:
        store = open_store(str(tmp_path / "data"), FakeClock(START), writer_process=True)
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        clock = FakeClock(START)
        sent = [make_message(clock, step=60, subject=f"Egret {n}") for n in range(5)]
        for m in sent:
            await store.add(m)
        await _indexed_after_a_pause(store)
        with store._read.connect() as conn:
            assert _fts_hits(conn, "egret") == {m.id for m in sent}
    finally:
        await store.close()


def test_a_writer_indexing_when_idle_keeps_at_most_waiting_max_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WAITING_MAX waiting messages, each batch of a writer that indexes when idle
    indexes the DRAIN_EVERY oldest; `index_waiting` indexes the oldest and counts the rest."""
    monkeypatch.setattr(fulltext, "WAITING_MAX", 10)
    monkeypatch.setattr(fulltext, "DRAIN_EVERY", 4)
    store = open_store(str(tmp_path / "data"), FakeClock(START))
    writer = BatchWriter(store._write, index_when_idle=True)
    clock = FakeClock(START)
    sent = [make_message(clock, step=60, subject=f"Plover {n:02d}") for n in range(25)]
    drains: list[tuple[str, object]] = []

    def record(_c: object, _cur: object, statement: str, params: object, *_a: object) -> None:
        if statement.startswith(f"INSERT INTO {fulltext.SQLITE_TABLE}(rowid"):
            drains.append((statement, params))

    event.listen(store._write, "before_cursor_execute", record)
    try:
        for m in sent:
            assert writer.write_messages([m]) == [None]
            assert writer.waiting <= 10
        with store._read.connect() as conn:
            waiting = _waiting(conn)
        assert 6 <= len(waiting) <= 10 and writer.waiting == len(waiting)
        assert waiting == {m.id for m in sent[-len(waiting) :]}  # the oldest were indexed
        assert writer.index_waiting(3) == len(waiting) - 3
        with store._read.connect() as conn:
            assert _waiting(conn) == {m.id for m in sent[-len(waiting) + 3 :]}
            assert _fts_hits(conn, "plover") == {m.id for m in sent[: -len(waiting) + 3]}
        assert writer.index_waiting(100) == 0 and writer.waiting == 0
        with store._read.connect() as conn:
            assert _fts_hits(conn, "plover") == {m.id for m in sent}
            _sqlite_intact(conn)
            # The waiting list drives each drain: the messages indexed before are not walked.
            assert drains
            for statement, params in drains:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
                assert fulltext.PENDING_TABLE in plan[0][3], plan
    finally:
        event.remove(store._write, "before_cursor_execute", record)
        asyncio.run(store.close())
