"""Round trips, lookups and listing, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from tests.integration.storage.factory import attachment, make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.types import Envelope, NewMessage
from postroom.storage import SqlMessageStore

RAW_SAMPLES = {
    "ascii": b"Subject: hi\r\n\r\nhello\r\n",
    "8bit": "Subject: caf\u00e9\r\n\r\n\u00e9t\u00e9 \u2603 \u65e5\u672c\r\n".encode(),
    "latin1": b"Subject: \xe9t\xe9\r\n\r\n\xff\xfe\x80 bytes that are not UTF-8\r\n",
    "binary": bytes(range(256)) * 4 + b"\x00\r\n.\r\n\x00" + os.urandom(4096),
    "bare-lf-and-cr": b"a\nb\rc\r\n\r\n\n\r",
    "empty": b"",
    "large": os.urandom(512 * 1024) + b"x" * (2 * 1024 * 1024),
}


@pytest.mark.parametrize("sample", sorted(RAW_SAMPLES))
async def test_raw_is_byte_exact(store: SqlMessageStore, clock: FakeClock, sample: str) -> None:
    data = RAW_SAMPLES[sample]
    message = make_message(clock, raw=data)
    await store.add(message)
    assert store.raw("default", message.id) == data
    assert store.get("default", message.id).size == len(data)
    # The delivery worker's single read gives the same record and bytes.
    assert store.get_with_raw("default", message.id) == (store.get("default", message.id), data)
    with pytest.raises(NotFound):
        store.get_with_raw("other-project", message.id)
    with pytest.raises(NotFound):
        store.get_with_raw("default", "no-such-id")


async def test_many_with_raw_in_one_read(store: SqlMessageStore, clock: FakeClock) -> None:
    small = make_message(clock, raw=RAW_SAMPLES["binary"], tags=("b", "a"))
    empty = make_message(clock, raw=b"")
    large = make_message(clock, raw=RAW_SAMPLES["large"])
    other = make_message(clock, raw=b"x", project="other")
    for message in (small, empty, large, other):
        await store.add(message)
    keys = [
        ("default", small.id),
        ("default", empty.id),
        ("default", large.id),
        ("default", other.id),  # another project's: left out, as not found
        ("default", "no-such-id"),
        ("default", small.id),  # twice: once in the answer
    ]
    found = store.get_many_with_raw(keys, max_size=64 * 1024)
    assert found == {
        small.id: store.get_with_raw("default", small.id),
        empty.id: (store.get("default", empty.id), b""),
        large.id: None,  # bigger than max_size: left for get_with_raw
    }
    assert found[small.id] is not None and found[small.id][0].tags == ("a", "b")
    assert store.get_many_with_raw([], max_size=1) == {}


async def test_record_round_trips_every_field(store: SqlMessageStore, clock: FakeClock) -> None:
    base = make_message(
        clock,
        subject="Quarterly \u00e9t\u00e9 report",
        from_="Zo\u00eb Sender <zoe@example.com>",
        to=("Bob <bob@example.org>", "carol@example.org"),
        cc=("Dan <dan@example.net>",),
        bcc=("eve@example.net",),
        reply_to=("Replies <replies@example.com>",),
        body="the body text",
        tags=("Work", "urgent"),
        attachments=(attachment("a.pdf"), attachment("logo.png", inline=True)),
        date=datetime(2025, 12, 31, 23, 59, 58, tzinfo=timezone(timedelta(hours=2))),
        username="smtp-user",
        status="captured",
        warnings=("bare LF normalised",),
    )
    message = NewMessage(
        id=base.id,
        project=base.project,
        created=base.created.replace(microsecond=123456),
        raw=base.raw,
        envelope=Envelope(
            mail_from="bounce@example.com",
            recipients=("bob@example.org", "carol@example.org"),
            mail_params={"SIZE": "1234", "BODY": "8BITMIME"},
            rcpt_params=({"NOTIFY": "FAILURE"}, {}),
        ),
        summary=base.summary,
        tags=base.tags,
        username=base.username,
        status=base.status,
        warnings=base.warnings,
    )
    await store.add(message)
    record = store.get("default", message.id)
    assert record.id == message.id
    assert record.project == "default"
    assert record.created == message.created
    assert record.created.tzinfo is not None
    assert record.size == len(message.raw)
    assert record.read is False
    assert record.envelope == message.envelope
    assert record.summary == message.summary
    assert record.summary.date is not None
    assert record.summary.date.utcoffset() == timedelta(hours=2)
    assert record.summary.attachment_count == 1
    assert record.tags == ("urgent", "Work")  # sorted case-insensitively
    assert record.username == "smtp-user"
    assert record.status == "captured"
    assert record.warnings == ("bare LF normalised",)


async def test_message_without_from_or_date(store: SqlMessageStore, clock: FakeClock) -> None:
    message = make_message(clock, from_=None, to=(), date=None)
    await store.add(message)
    record = store.get("default", message.id)
    assert record.summary.from_ is None
    assert record.summary.to == ()
    assert record.summary.date is None


async def test_latest_is_the_newest(store: SqlMessageStore, clock: FakeClock) -> None:
    with pytest.raises(NotFound):
        store.get("default", "latest")
    first = make_message(clock, subject="first")
    second = make_message(clock, subject="second")
    other = make_message(clock, subject="other project", project="other")
    for m in (first, second, other):
        await store.add(m)
    assert store.get("default", "latest").id == second.id
    assert store.raw("default", "latest") == second.raw
    assert store.get("other", "latest").id == other.id


async def test_not_found(store: SqlMessageStore, clock: FakeClock) -> None:
    message = make_message(clock, project="other")
    await store.add(message)
    for missing in ("01JZZZZZZZZZZZZZZZZZZZZZZZ", "nonsense", ""):
        with pytest.raises(NotFound):
            store.get("default", missing)
        with pytest.raises(NotFound):
            store.raw("default", missing)
    # Ids are scoped by project.
    with pytest.raises(NotFound):
        store.get("default", message.id)
    with pytest.raises(NotFound):
        store.raw("default", message.id)
    assert store.get("other", message.id).id == message.id


async def test_paging_newest_first(store: SqlMessageStore, clock: FakeClock) -> None:
    added = [make_message(clock, subject=f"m{i:02}") for i in range(25)]
    for m in added:
        await store.add(m)
    newest_first = [m.id for m in reversed(added)]

    page = store.list("default", None, 0, 10)
    assert [m.id for m in page.messages] == newest_first[:10]
    assert (page.total, page.unread, page.matched, page.matched_unread, page.start) == (
        25,
        25,
        25,
        25,
        0,
    )
    assert [m.id for m in store.list("default", None, 10, 10).messages] == newest_first[10:20]
    last = store.list("default", None, 20, 10)
    assert [m.id for m in last.messages] == newest_first[20:]
    assert last.start == 20
    beyond = store.list("default", None, 30, 10)
    assert beyond.messages == ()
    assert beyond.total == 25
    counts_only = store.list("default", None, 0, 0)
    assert counts_only.messages == ()
    assert counts_only.total == 25
    # Listing leaves the body text out; `get` has it.
    assert page.messages[0].summary.search_text == ""
    assert store.get("default", newest_first[0]).summary.search_text == "plain body text"
    assert page.messages[0].summary.subject == "m24"


async def test_equal_timestamps_list_in_insertion_order(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    same = datetime(2026, 2, 1, tzinfo=UTC)
    added = [make_message(clock, subject=f"s{i}", created=same) for i in range(5)]
    for m in added:
        await store.add(m)
    assert [m.id for m in store.list("default", None, 0, 10).messages] == [
        m.id for m in reversed(added)
    ]
    assert store.get("default", "latest").id == added[-1].id


async def test_counts_follow_read_flags_and_projects(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    ids = []
    for i in range(6):
        m = make_message(clock, subject="alpha" if i % 2 else "beta")
        ids.append(m.id)
        await store.add(m)
    await store.add(make_message(clock, subject="alpha", project="elsewhere"))
    store.set_read("default", ids[:3], None, True)
    from postroom.core.search import SearchQuery, Term

    page = store.list("default", SearchQuery((Term("subject", text="alpha"),)), 0, 50)
    assert (page.total, page.unread) == (6, 3)
    assert (page.matched, page.matched_unread) == (3, 2)  # ids 1, 3, 5; id 1 is read
    assert {m.id for m in page.messages} == {ids[1], ids[3], ids[5]}
    assert store.list("elsewhere", None, 0, 50).total == 1
    assert store.list("nobody", None, 0, 50).total == 0


async def test_bad_paging_arguments(store: SqlMessageStore) -> None:
    with pytest.raises(InvalidInput):
        store.list("default", None, -1, 10)
    with pytest.raises(InvalidInput):
        store.list("default", None, 0, -5)


async def test_database_size_grows(store: SqlMessageStore, clock: FakeClock) -> None:
    before = store.database_size()
    assert before > 0
    for _ in range(20):
        await store.add(make_message(clock, raw=os.urandom(64 * 1024)))
    assert store.database_size() > before


async def test_text_the_database_refuses_is_replaced_not_fatal(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    """NUL characters and lone surrogates (undecodable header bytes) cannot be stored as text
    by PostgreSQL (NUL) or encoded as UTF-8 at all (surrogates): the message is still stored,
    with those characters replaced, and the rest of its batch is unaffected."""
    import asyncio

    bad = make_message(
        clock,
        subject="nul\x00here and \udcff surrogate",
        from_="Bad\x00Name <bad@example.com>",
        body="body \x00 text \udce9",
        tags=("t\x00g",),
        raw=b"Subject: nul\x00here \xff\r\n\r\nbody\r\n",
    )
    good = [make_message(clock) for _ in range(5)]
    await asyncio.gather(*(store.add(m) for m in [*good[:2], bad, *good[2:]]))
    record = store.get("default", bad.id)
    assert record.summary.subject == "nul\ufffdhere and ? surrogate"
    assert record.summary.from_ is not None
    # Inside JSON columns a NUL is an escape sequence that both databases accept.
    assert record.summary.from_.name in ("Bad\ufffdName", "Bad\x00Name")
    assert record.summary.search_text == "body \ufffd text ?"
    assert record.tags == ("t\ufffdg",)
    assert store.raw("default", bad.id) == bad.raw  # the bytes are untouched
    assert store.list("default", None, 0, 0).total == 6
