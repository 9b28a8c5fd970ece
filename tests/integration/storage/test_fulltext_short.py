"""SQLite's full-text index and terms of one and two characters (storage/fulltext.py, migration
0029): the indexed text ends with two newlines, so a message holding such a term holds a
trigram starting with it, read from the fts5vocab table `messages_fts_vi`; the index stays
exact (every indexed message holds exactly the trigrams of its text) through inserts, the
writer's drain, deletes, text updates, `postroom fulltext off|on` and the migration
re-indexing a database made before it; a search for such a term answers what the scan
answers, on every text field, beside longer terms, with the candidates the index gives."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection
from tests.integration.storage.factory import make_message
from tests.integration.storage.test_fulltext import NOW, START

from postroom.core.clock import FakeClock
from postroom.core.search import SearchQuery, Term, parse_query
from postroom.core.types import NewMessage
from postroom.storage import SqlMessageStore, codec, fulltext, migrate, open_store
from postroom.storage.engine import set_sqlite_fulltext, writer_engine
from postroom.storage.schema import message_raw, messages

# Terms of one and two characters: FTS5's syntax characters, non-ASCII, letters; then ones no
# message holds.
SHORT = ["ж", "ǂ", '"', "*", "(", "€", "qj", "жz", "(*", '"ǂ', "é!", "j", "e", "\n"]
ABSENT = ["☃", "☃x", "x☃", "ж☃"]


def _corpus() -> list[NewMessage]:
    """Each short term at the end of one field (the very end of the indexed text: the body),
    inside a text, and messages holding none of them."""
    clock = FakeClock(START)
    made = [
        make_message(clock, subject="Report ж", body="plain words"),
        make_message(clock, from_="zed@host.example€", body="plain words"),
        make_message(clock, to=("amy@host.example(",), body="plain words"),
        make_message(clock, cc=("cat@host.example*",), body="plain words"),
        make_message(clock, bcc=('dan@host.example"',), body="plain words"),
        make_message(clock, message_id="mid-5@host.exampleǂ", body="plain words"),
        make_message(clock, body="ends with ǂ"),
        make_message(clock, body="ends with qj"),
        make_message(clock, subject="Weekly жz", to=("eve@host.example(*",)),
        make_message(clock, body='a "ǂ inside, é! too\nand a second line'),
        make_message(clock, subject="QJ upper", body="ends with j"),
    ]
    made += [make_message(clock, subject=f"filler {n}", body=f"nothing {n}") for n in range(8)]
    return made


def _rows(conn: Connection) -> dict[int, tuple[str, list[str]]]:
    """seq -> (id, the indexed fields) of every message."""
    sql = f"SELECT seq, id, {', '.join(fulltext.FTS_COLUMNS)} FROM messages"
    return {r[0]: (r[1], list(r[2:])) for r in conn.execute(text(sql))}


def _waiting(conn: Connection) -> set[int]:
    return {r[0] for r in conn.execute(text(f"SELECT seq FROM {fulltext.PENDING_TABLE}"))}


def _index_exact(conn: Connection) -> None:
    """Every indexed message holds exactly the trigrams of its text (the fields joined by
    newlines, two after the last), and no other message is in the index: a 'delete' given
    another text than the one indexed would leave trigrams behind."""
    waiting = _waiting(conn)
    want = {}
    for seq, (_, fields) in _rows(conn).items():
        if seq not in waiting:
            body = "\n".join(fields) + "\n\n"
            want[seq] = {body[i : i + 3] for i in range(len(body) - 2)}
    got: dict[int, set[str]] = defaultdict(set)
    for term, doc in conn.execute(text(f"SELECT term, doc FROM {fulltext.VOCAB_TABLE}")):
        got[doc].add(term)
    assert dict(got) == want


def _prefix_docs(conn: Connection, prefix: str) -> set[int]:
    sql = f"SELECT doc FROM {fulltext.VOCAB_TABLE} WHERE term >= :lo AND term <= :hi"
    return {r[0] for r in conn.execute(text(sql), {"lo": prefix, "hi": prefix + "\U0010ffff" * 2})}


def _short_terms_indexed(conn: Connection, every: bool = False) -> None:
    """Each message holding a short term in a field is among the index's messages holding a
    trigram starting with it, or waits to be indexed. `every`: each of SHORT is held."""
    waiting = _waiting(conn)
    rows = _rows(conn)
    for term in SHORT + ABSENT:
        docs = _prefix_docs(conn, term)
        holding = {seq for seq, (_, fields) in rows.items() if any(term in f for f in fields)}
        assert holding <= docs | waiting, term
        if term in ABSENT:
            assert not docs and not holding, term
        elif every:
            assert holding, term
    _index_exact(conn)


def _names(conn: Connection) -> set[str]:
    sql = "SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'"
    return {r[0] for r in conn.execute(text(sql))}


async def test_short_terms_reach_the_index(tmp_path: Path) -> None:
    """Waiting, drained, deleted one by one, updated, drained again; `fulltext off` drops the
    vocab table with the index, `on` makes both and indexes the stored messages."""
    target = str(tmp_path / "data")
    store = open_store(target, FakeClock(START))
    try:
        corpus = _corpus()
        for m in corpus:
            await store.add(m)
        with store._write.begin() as conn:
            assert fulltext.VOCAB_TABLE in _names(conn)
            _short_terms_indexed(conn, every=True)
            assert fulltext.sqlite_drain(conn)
            assert _waiting(conn) == set()
            _short_terms_indexed(conn, every=True)
        store.delete("default", [corpus[6].id, corpus[1].id], None)
        with store._write.begin() as conn:
            _short_terms_indexed(conn)
            conn.execute(
                text("UPDATE messages SET search_text = 'now ends with €' WHERE id = :id"),
                {"id": corpus[7].id},
            )
            conn.execute(
                text("UPDATE messages SET subject_lc = 'ж' WHERE id = :id"), {"id": corpus[12].id}
            )
            _short_terms_indexed(conn)
            assert fulltext.sqlite_drain(conn)
            _short_terms_indexed(conn)
        assert set_sqlite_fulltext(target, False) is False
        with store._write.begin() as conn:
            assert _names(conn) == set()
        assert set_sqlite_fulltext(target, True) is True
        with store._write.begin() as conn:
            assert fulltext.VOCAB_TABLE in _names(conn)
            assert _waiting(conn) == set()
            _short_terms_indexed(conn)
    finally:
        await store.close()


def _insert_row(conn: Connection, message: NewMessage) -> None:
    row = dict(zip(codec.MESSAGE_COLUMNS, codec.message_row(message), strict=True))
    conn.execute(insert(messages).values(row))
    conn.execute(insert(message_raw).values(message_id=message.id, data=b"not read here"))


def _pending_form() -> list[str]:
    """What migration 0027 and `postroom fulltext on` made before migration 0029: the fields
    joined by newlines, nothing after the last."""
    old = " || char(10) || ".join(f"old.{c}" for c in fulltext.FTS_COLUMNS)
    stored = old.replace("old.", "messages.")
    unindex = (
        f"INSERT INTO messages_fts(messages_fts, rowid, body) SELECT 'delete', old.seq, {old} "
        "WHERE NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE seq = old.seq);"
    )
    return [
        "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='', detail=none, "
        "columnsize=0, tokenize='trigram case_sensitive 1')",
        "CREATE TABLE messages_fts_pending (seq INTEGER PRIMARY KEY)",
        "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
        "INSERT INTO messages_fts_pending(seq) VALUES (new.seq); END",
        f"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN {unindex} "
        "DELETE FROM messages_fts_pending WHERE seq = old.seq; END",
        f"CREATE TRIGGER messages_fts_update AFTER UPDATE OF {', '.join(fulltext.FTS_COLUMNS)} "
        f"ON messages BEGIN {unindex} "
        "INSERT OR IGNORE INTO messages_fts_pending(seq) VALUES (new.seq); END",
        f"INSERT INTO messages_fts(rowid, body) SELECT seq, {stored} FROM messages",
    ]


def _make_0028(target: str, corpus: list[NewMessage], with_index: bool) -> None:
    """A database at revision 0028 holding `corpus`: with the index of that time, most of
    the messages indexed and the last three waiting."""
    Path(target).mkdir(mode=0o700)
    engine = writer_engine(target)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "0028")
            assert not fulltext.sqlite_present(conn)
            for m in corpus[:-3]:
                _insert_row(conn, m)
            if with_index:
                for statement in _pending_form():
                    conn.execute(text(statement))
            for m in corpus[-3:]:
                _insert_row(conn, m)
    finally:
        engine.dispose()


async def test_migration_indexes_a_0028_database_again(tmp_path: Path) -> None:
    """0029 indexes every message of a database that had the index with the new text and
    makes the vocab table; deletes and updates after it leave the index exact; a database
    without the index gets nothing until `fulltext on`."""
    corpus = _corpus()
    for name, made in (("on", True), ("off", False)):
        target = str(tmp_path / name)
        _make_0028(target, corpus, made)
        store = open_store(target, FakeClock(START))
        try:
            with store._write.begin() as conn:
                assert migrate.current_revision(conn) == migrate.head_revision()
                if not made:
                    assert _names(conn) == set()
                    continue
                assert fulltext.VOCAB_TABLE in _names(conn)
                assert _waiting(conn) == set()  # all indexed again
                triggers = conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE :n"),
                    {"n": "messages_fts_%"},
                ).scalars()
                assert sorted(triggers) == sorted(fulltext.sqlite_trigger_statements())
                _short_terms_indexed(conn, every=True)
            store.delete("default", [corpus[0].id, corpus[6].id, corpus[-1].id], None)
            with store._write.begin() as conn:
                conn.execute(
                    text("UPDATE messages SET to_text = 'new@host.example*' WHERE id = :id"),
                    {"id": corpus[2].id},
                )
                _short_terms_indexed(conn)
                assert fulltext.sqlite_drain(conn)
                _short_terms_indexed(conn)
                table = fulltext.SQLITE_TABLE
                conn.execute(
                    text(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 0)")
                )
            added = make_message(FakeClock(NOW), subject="after the upgrade ж")
            await store.add(added)
            for query in ("upgrade", "plain", "filler", "host.example("):
                page = store.list("default", parse_query(query, NOW), 0, 100)
                with store._read.connect() as conn:
                    rows = _rows(conn).values()
                want = {row_id for row_id, fields in rows if any(query in f for f in fields)}
                assert {m.id for m in page.messages} == want != set(), query
        finally:
            await store.close()
        if not made:
            assert set_sqlite_fulltext(target, True) is True
            engine = writer_engine(target)
            try:
                with engine.begin() as conn:
                    assert fulltext.VOCAB_TABLE in _names(conn)
                    _short_terms_indexed(conn)
            finally:
                engine.dispose()


_FIELDS = {
    "text": fulltext.FTS_COLUMNS,
    "subject": ("subject_lc",),
    "from": ("from_text",),
    "to": ("to_text",),
    "cc": ("cc_text",),
    "message-id": ("message_id_lc",),
}


def _scan(conn: Connection, field: str, needle: str) -> set[str]:
    """The ids of project "default" whose `field` holds `needle` (lower-cased), by Python's
    substring test over the stored columns."""
    columns = _FIELDS[field]
    sql = f"SELECT id, {', '.join(columns)} FROM messages WHERE project = 'default'"
    return {r[0] for r in conn.execute(text(sql)) if any(needle in f for f in r[1:])}


def _searches_answer_as_the_scan(store: SqlMessageStore, indexed: bool) -> None:
    """Every short term, alone, on every field, and beside a longer one, answers what the
    scan answers (list, its count and the first page); with the index, a short term's filter
    is the vocab table's range."""
    with store._read.connect() as conn:
        for term in SHORT + ABSENT:
            if indexed:
                found = fulltext.sqlite_match(conn, [term])
                assert found is not None and found.prefix and found.few, term
                assert found.match == term
            for field in _FIELDS:
                want = _scan(conn, field, term)
                _check(store, SearchQuery((Term(field, text=term),)), want)
            if term in SHORT and term not in ("e", "\n"):
                assert _scan(conn, "text", term), term  # not vacuous
            for longer in ("plain", "host.example", "ends with"):
                want = _scan(conn, "text", term) & _scan(conn, "text", longer)
                terms = (Term("text", text=longer), Term("text", text=term))
                _check(store, SearchQuery(terms), want)
                negated = (Term("text", text=longer), Term("text", text=term, negated=True))
                _check(store, SearchQuery(negated), _scan(conn, "text", longer) - want)


def _check(store: SqlMessageStore, query: SearchQuery, want: set[str]) -> None:
    page = store.list("default", query, 0, 100)
    assert {m.id for m in page.messages} == want, query
    assert page.matched == len(want), query
    first = store.page("default", query, 0, 3)
    assert [m.id for m in first.messages] == [m.id for m in page.messages[:3]], query


async def test_short_terms_are_searched_with_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting and indexed messages, after deletes and text updates, without the index; a
    common short term (at least FEW candidates, lowered here) walks the newest first."""
    target = str(tmp_path / "data")
    store = open_store(target, FakeClock(START))
    try:
        corpus = _corpus()
        for m in corpus:
            await store.add(m)
        await store.add(make_message(FakeClock(START), subject="ж qj e (*", project="other"))
        with store._read.connect() as conn:
            assert _waiting(conn)  # all but the first
        _searches_answer_as_the_scan(store, indexed=True)
        with store._write.begin() as conn:
            assert fulltext.sqlite_drain(conn)
        _searches_answer_as_the_scan(store, indexed=True)
        for query in ("subject:Ж", "Ж", "ЖZ", "to:(*"):
            page = store.list("default", parse_query(query, NOW), 0, 10)
            with store._read.connect() as conn:
                field, _, needle = query.lower().rpartition(":")
                assert {m.id for m in page.messages} == _scan(conn, field or "text", needle)
        # The index decides: a message taken out of it behind the triggers' back is not found.
        _unindex(store, corpus[8].id)
        for query in ("ж", "subject:жz", "(*", "weekly"):
            page = store.list("default", parse_query(query, NOW), 0, 10)
            assert corpus[8].id not in {m.id for m in page.messages}, query
        _unindex(store, corpus[8].id, back=True)
        store.delete("default", [corpus[6].id, corpus[0].id], None)
        with store._write.begin() as conn:
            conn.execute(
                text("UPDATE messages SET search_text = 'now ends with ж' WHERE id = :id"),
                {"id": corpus[7].id},
            )
        _searches_answer_as_the_scan(store, indexed=True)
        with store._write.begin() as conn:
            assert fulltext.sqlite_drain(conn)
        _searches_answer_as_the_scan(store, indexed=True)
        with store._read.connect() as conn:
            # The rarer filter wins: a short term's range beside a common trigram, a rare
            # trigram beside a short term held by every message.
            beside = fulltext.sqlite_match(conn, ["plain", "ж"])
            assert beside is not None and beside.prefix and beside.match == "ж"
            rare = fulltext.sqlite_match(conn, ["mid-5@", "e"])
            assert rare is not None and not rare.prefix and rare.few
        monkeypatch.setattr(fulltext, "FEW", 2)
        with store._read.connect() as conn:
            common = fulltext.sqlite_match(conn, ["e"])
            assert common is None  # more than FEW candidates: no filter
        _check(store, SearchQuery((Term("text", text="e"),)), _scan_ids(store, "e"))
        monkeypatch.undo()
        assert set_sqlite_fulltext(target, False) is False
        _searches_answer_as_the_scan(store, indexed=False)
    finally:
        await store.close()


def _unindex(store: SqlMessageStore, message_id: str, back: bool = False) -> None:
    """Take a message out of the FTS5 table (or put it `back`), as no trigger would."""
    body = " || char(10) || ".join(f"messages.{c}" for c in fulltext.FTS_COLUMNS)
    body += " || char(10) || char(10)"
    table = fulltext.SQLITE_TABLE
    sql = (
        f"INSERT INTO {table}(rowid, body) SELECT seq, {body}"
        if back
        else f"INSERT INTO {table}({table}, rowid, body) SELECT 'delete', seq, {body}"
    )
    with store._write.begin() as conn:
        conn.execute(text(f"{sql} FROM messages WHERE id = :id"), {"id": message_id})
        if back:
            _index_exact(conn)


def _scan_ids(store: SqlMessageStore, needle: str) -> set[str]:
    with store._read.connect() as conn:
        return _scan(conn, "text", needle)
