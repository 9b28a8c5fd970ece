"""PostgreSQL's summaries of blocks of messages for terms of 1-2 characters
(storage/block_summaries.py, migration 0032): a search for such a term answers what the
per-field LIKE answers, in its project only, across summarised blocks, unsummarised ones and
the newest messages, after deletes and text changes; summaries are made only for blocks no
open transaction may still add to; the server's child process makes them."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from tests.integration.storage.factory import make_message
from tests.integration.storage.test_fulltext import START

from postroom import block_summariser
from postroom.core.clock import FakeClock
from postroom.core.search import SearchQuery, Term
from postroom.storage import SqlMessageStore, block_summaries, fulltext, open_store
from postroom.storage.engine import writer_engine
from postroom.storage.schema import messages

pytestmark = pytest.mark.postgres

SMALL = 4  # seqs per block in these tests
PAGE = 10
# Terms of one and two characters (punctuation, multi-byte, letters, a newline) and absent ones.
SHORT = ["ж", "ǂ", '"', "*", "(", "€", "qj", "жz", "(*", '"ǂ', "é!", "j", "e", "\n", "%", "_"]
ABSENT = ["☃", "☃x", "x☃", "ж☃", "qz", "q"]


def test_summary_holds_every_term_of_its_texts() -> None:
    """Whatever the texts, a block whose text holds a term in a field is among the blocks
    `condition` keeps for it (the helpers it uses, without a database)."""
    rnd = random.Random(12)
    alphabet = 'abqzж€ǂé!"*( \n%_\t\u2028\x85'
    blocks = {
        b: [["".join(rnd.choices(alphabet, k=rnd.randint(0, 6))) for _ in range(7)]]
        for b in range(40)
    }
    rows = [(b, block_summaries.MARK, b"") for b in blocks]
    for b, texts in blocks.items():
        rows += [(b, lead, bits) for lead, bits in block_summariser.summary(texts).items()]
    for needle in {a + b for a in alphabet for b in alphabet} | set(alphabet):
        holding = {b for b, texts in blocks.items() if any(needle in f for f in texts[0])}
        kept = block_summaries._holding(rows, needle)
        assert holding <= kept, needle
        ranges, tail = block_summaries.seq_ranges(blocks, kept)
        for b in holding:
            seq = b * block_summaries.BLOCK
            assert seq >= tail or any(lo <= seq < hi for lo, hi in ranges), needle


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Blocks of SMALL seqs (the migration's trigger takes the size when it runs)."""
    monkeypatch.setattr(block_summaries, "BLOCK", SMALL)
    yield


def _corpus(clock: FakeClock) -> list[Any]:
    made = [
        make_message(clock, subject="Report ж", body="plain words"),
        make_message(clock, from_="zed@host.example€", body="plain words", project="other"),
        make_message(clock, to=("amy@host.example(",), body="plain words"),
        make_message(clock, cc=("cat@host.example*",), body="plain words"),
        make_message(clock, bcc=('dan@host.example"',), body="plain words"),
        make_message(clock, message_id="mid-5@host.exampleǂ", body="plain words"),
        make_message(clock, body="ends with ǂ", project="other"),
        make_message(clock, body="ends with qj"),
        make_message(clock, subject="Weekly жz", to=("eve@host.example(*",)),
        make_message(clock, body='a "ǂ inside, é! too\nand a second line 100%_'),
        make_message(clock, subject="QJ upper", body="ends with j"),
    ]
    for n in range(25):
        made.append(
            make_message(clock, subject=f"filler {n}", body=f"nothing {n}", project="other")
            if n % 3 == 0
            else make_message(clock, subject=f"filler {n}", body=f"nothing {n}")
        )
    return made


_FIELDS = {"text": ", ".join(fulltext.FTS_COLUMNS), "subject": "subject_lc", "to": "to_text"}


def _expected(conn: Connection, project: str, needle: str, field: str = "text") -> list[str]:
    """The project's messages holding `needle` in the field(s) of `field`, newest first."""
    sql = (
        f"SELECT id, {_FIELDS[field]} FROM messages WHERE project = :p "
        "ORDER BY created_us DESC, seq DESC"
    )
    return [
        r[0] for r in conn.execute(text(sql), {"p": project}) if any(needle in f for f in r[1:])
    ]


def _check(store: SqlMessageStore, used: list[object]) -> None:
    with store._read.connect() as conn:
        for project in ("default", "other"):
            for term in SHORT + ABSENT:
                for field in ("text", "subject", "to"):
                    query = SearchQuery((Term(field, text=term),))  # type: ignore[arg-type]
                    want = _expected(conn, project, term.lower(), field)
                    got = store.page(project, query, 0, PAGE)
                    assert [m.id for m in got.messages] == want[:PAGE], (project, term, field)
                    assert got.more == (len(want) > PAGE)
                    assert all(m.project == project for m in got.messages)
                # beside a longer term
                query = SearchQuery((Term("text", text="plain"), Term("text", text=term)))
                want = sorted(
                    set(_expected(conn, project, "plain")) & set(_expected(conn, project, term)),
                    key=_expected(conn, project, "").index,
                )
                got = store.page(project, query, 0, PAGE)
                assert [m.id for m in got.messages] == want[:PAGE], (project, term)
    assert any(c is not None for c in used)  # the summaries narrowed some searches


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The conditions `block_summaries.condition` gave the searches."""
    used: list[object] = []
    real = block_summaries.condition

    def wrapped(conn: Connection, needles: Any) -> Any:
        found = real(conn, needles)
        used.append(found)
        return found

    monkeypatch.setattr(block_summaries, "condition", wrapped)
    return used


async def test_short_terms_across_blocks_edits_and_deletes(
    small_blocks: None, spy: list[object], postgres_database: str
) -> None:
    clock = FakeClock(START)
    store = open_store(postgres_database, clock)
    store.page_window = 20  # a window's few matches lead to the whole search (store.py)
    try:
        corpus = _corpus(clock)
        for m in corpus[:30]:
            await store.add(m)
        made = block_summaries.summarise(store._write, wait=1.0)
        assert made >= 6
        for m in corpus[30:]:  # the newest: no summary yet
            await store.add(m)
        with store._read.connect() as conn:
            absent = block_summaries.condition(conn, ["☃"])  # ids may hold "qz"
            assert absent is not None
            total = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
            kept = conn.execute(
                select(func.count()).select_from(messages).where(absent)
            ).scalar_one()
            summarised = conn.execute(
                text("SELECT array_agg(block ORDER BY block) FROM message_blocks WHERE lead = -1")
            ).scalar_one()
            # the summarised blocks are skipped
            assert kept < total - 20, (made, summarised, kept, total)
        spy.clear()
        _check(store, spy)

        # A text change in a summarised block: its summary goes; the search still finds it.
        store.delete("default", [corpus[0].id, corpus[2].id], None)
        with store._write.begin() as conn:
            conn.execute(
                text("UPDATE messages SET search_text = 'now qz and ☃ and ж☃' WHERE id = :id"),
                {"id": corpus[3].id},
            )
            conn.execute(
                text("UPDATE messages SET subject_lc = 'x☃ q' WHERE id = :id"),
                {"id": corpus[12].id},
            )
        spy.clear()
        _check(store, spy)
        # Made again by the next run, with the new text; deletes leave a superset.
        assert block_summaries.summarise(store._write, wait=1.0) >= 1
        spy.clear()
        _check(store, spy)
    finally:
        await store.close()


async def test_a_tag_with_a_short_term_is_answered_from_the_summaries(
    small_blocks: None, spy: list[object], postgres_database: str
) -> None:
    """A `tag:` term with a term of 1-2 characters that the tag's newest `tag_window`
    messages do not hold is narrowed by the summaries (store.py `_tag_walk`), not answered by
    a walk of all the tag's messages, and the page is still what the LIKE gives, per project."""
    clock = FakeClock(START)
    store = open_store(postgres_database, clock)
    store.tag_window = 4  # a page of 3 within it; the tag has more
    try:
        corpus = _corpus(clock)
        for n, m in enumerate(corpus):
            tags = ("Archive",) if n % 2 == 0 else ("Other",)
            await store.add(dataclasses.replace(m, tags=tags))
        assert block_summaries.summarise(store._write, wait=1.0) >= 6
        with store._read.connect() as conn:
            tagged = {
                r[0]
                for r in conn.execute(
                    text("SELECT message_id FROM message_tags WHERE tag_lc = 'archive'")
                )
            }
            for project in ("default", "other"):
                for term in SHORT + ABSENT:
                    spy.clear()
                    query = SearchQuery((Term("tag", text="archive"), Term("text", text=term)))
                    want = [i for i in _expected(conn, project, term.lower()) if i in tagged]
                    got = store.page(project, query, 0, 3)
                    assert [m.id for m in got.messages] == want[:3], (project, term)
                    assert all(m.project == project for m in got.messages)
                    if "☃" in term and project == "default":  # in no block
                        assert any(c is not None for c in spy), term  # narrowed, no walk
    finally:
        await store.close()


async def test_no_summary_while_an_older_transaction_is_open(
    small_blocks: None, postgres_database: str
) -> None:
    """A message whose transaction is still open when its block would be summarised keeps
    the block unsummarised until it ends (its seq was taken before the summariser looked)."""
    clock = FakeClock(START)
    store = open_store(postgres_database, clock)
    try:
        for m in _corpus(clock)[:8]:
            await store.add(m)
        engine = writer_engine(postgres_database)
        try:
            with engine.connect() as other:
                other.execute(text("UPDATE messages SET read = true WHERE seq = 1"))
                # open since before the summariser: it waits, then gives up
                assert block_summaries.summarise(store._write, wait=0.3) == 0
                other.rollback()
            assert block_summaries.summarise(store._write, wait=0.3) == 2
        finally:
            engine.dispose()
    finally:
        await store.close()


async def test_the_job_summarises_in_a_child_process(postgres_database: str) -> None:
    """`summarise_blocks` (the server's job `pg-blocks`) has the child summarise when a full
    block of BLOCK seqs is due, and does nothing once none is; the child lives until the store
    closes."""
    clock = FakeClock(START)
    store = open_store(postgres_database, clock)
    try:
        await store.add(make_message(clock, subject="Seed ж", body="qj"))
        columns = ", ".join(
            c for c in _message_columns(store) if c not in ("seq", "id", "message_id")
        )
        with store._write.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO messages (id, message_id, {columns}) "
                    f"SELECT 'm' || lpad(n::text, 25, '0'), 'x' || n, {columns} "
                    f"FROM messages, generate_series(1, {2 * block_summaries.BLOCK}) AS n"
                )
            )
        assert await store.summarise_blocks() == 2
        with store._read.connect() as conn:
            assert not block_summaries.due(conn)
        assert await store.summarise_blocks() == 0
        summariser = store._summariser
        assert summariser is not None
        child = summariser._child
        assert child is not None and child.returncode is None  # kept for the next runs
    finally:
        await store.close()
    assert child.returncode == 0  # stopped with the store


def _message_columns(store: SqlMessageStore) -> list[str]:
    with store._read.connect() as conn:
        sql = (
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'messages' "
            "ORDER BY ordinal_position"
        )
        return [r[0] for r in conn.execute(text(sql))]
