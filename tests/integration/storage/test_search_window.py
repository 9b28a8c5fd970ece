"""A search's page is first looked for among the newest `page_window` messages (store.py
`_page_rows`); whether the window holds the page or the search falls back to the whole
project, the pages are exactly those of a search without the window, on SQLite and
PostgreSQL, for every kind of term (tags are looked up per message inside the window).
Likewise when a rare tag or the matching senders drive the search on SQLite (`tag_drive_max`,
tag_search.py, sender_search.py), for its pages and its counts, when a query with a tag
walks that tag's messages (`tag_walk`, its window of the tag's newest `tag_window` ones
first when another index may narrow it), and the counts of a single `tag:` term read
from the tag counters are those counted from the messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.integration.storage.factory import attachment, make_message

from postroom.core.clock import FakeClock
from postroom.core.search import parse_query
from postroom.storage import SqlMessageStore, sender_search

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

QUERIES = [
    "order",  # every 3rd message: the window holds the first pages
    "rare-7",  # one old message: only the whole project has it
    "tag:common",
    "tag:rare",
    "is:tagged",
    "-tag:common",
    "has:attachment",
    "subject:order -tag:common",
    "before:2026-03-02",
    "is:unread order",
    "tag:rare tag:common",
    "tag:COMMON has:attachment",
    "tag:common -subject:order is:unread",
    "tag:rare -tag:common",
    "tag:absent",
    "tag:common before:2026-03-01T16:00",
    "from:s3@",
    "from:D1.example",
    "from:s3@ tag:common",
    "from:s3@ tag:rare",
    "from:nobody",
    "from:sender from:d2 -subject:order",
    "from:example is:unread",
]
NEVER, ALWAYS = -1, 10**9


@pytest.mark.parametrize("max_senders", [sender_search.MAX_SENDERS, 3])
async def test_windowed_pages_equal_the_whole_search(
    store: SqlMessageStore, max_senders: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`max_senders` 3: fewer than the 7 senders, so `from:` is never driven by them."""
    monkeypatch.setattr(sender_search, "MAX_SENDERS", max_senders)
    clock = FakeClock(START)
    for n in range(60):
        tags = (("common",) if n % 2 else ()) + (("rare",) if n == 3 else ())
        await store.add(
            make_message(
                clock,
                step=600,
                subject=f"order {n}" if n % 3 == 0 else f"note {n}",
                from_=f"Sender {n % 7} <s{n % 7}@d{n % 4}.example>",
                body=f"rare-{n}" if n == 7 else "text",
                tags=tags,
                attachments=(attachment("a.pdf"),) if n % 5 == 0 else (),
            )
        )
    ids = [m.id for m in store.page("default", None, 0, 60).messages]
    store.set_read("default", ids[:10], None, True)
    now = clock.now()
    for text in QUERIES:
        query = parse_query(text, now)
        for start, limit in ((0, 3), (0, 8), (2, 4), (5, 5), (0, 40)):
            # No window, no tag driving or walk: the planner's plan over the project.
            store.page_window, store.tag_drive_max, store.tag_walk = ALWAYS, NEVER, False
            whole = store.page("default", query, start, limit)
            listed = store.list("default", query, start, limit)
            expected = [m.id for m in whole.messages]
            assert listed.matched >= len(expected), text
            variants = [(w, d, False) for w, d in ((12, NEVER), (12, 2), (12, ALWAYS))]
            variants += [(ALWAYS, ALWAYS, False), (12, NEVER, True), (ALWAYS, NEVER, True)]
            for window, drive, walk in variants:
                store.page_window, store.tag_drive_max, store.tag_walk = window, drive, walk
                store.tag_window = window
                variant = (text, start, limit, window, drive, walk)
                windowed = store.page("default", query, start, limit)
                windowed_list = store.list("default", query, start, limit)
                assert [m.id for m in windowed.messages] == expected, variant
                assert [m.id for m in listed.messages] == expected, variant
                assert [m.id for m in windowed_list.messages] == expected, variant
                assert windowed.more == whole.more == (start + limit < listed.matched), variant
                assert (windowed_list.matched, windowed_list.matched_unread) == (
                    listed.matched,
                    listed.matched_unread,
                ), variant


@pytest.mark.parametrize("window", [1, 2])
async def test_tiny_windows(store: SqlMessageStore, window: int) -> None:
    clock = FakeClock(START)
    for n in range(5):
        # Message-IDs of our own: a random one can hold "s1" (free text searches it).
        message = make_message(clock, step=60, subject=f"s{n % 2}", message_id=f"m{n}@x.example")
        await store.add(message)
    store.page_window = window
    page = store.page("default", parse_query("s1", clock.now()), 0, 1)
    assert [m.summary.subject for m in page.messages] == ["s1"] and page.more


async def test_single_tag_counts_are_the_counted_ones(store: SqlMessageStore) -> None:
    """`tag:X` alone is answered from the tag counters; `tag:X tag:X` (same matches, two
    terms) is counted from the messages."""
    clock = FakeClock(START)
    for n in range(30):
        tag = "Common" if n % 3 else "common"  # two spellings, one tag
        await store.add(make_message(clock, tags=(tag,) + (("rare",) if n == 4 else ())))
    ids = [m.id for m in store.page("default", None, 0, 30).messages]
    store.set_read("default", ids[::4], None, True)
    store.tag_drive_max = NEVER
    now = clock.now()
    for tag in ("common", "COMMON", "rare", "absent"):
        single = store.list("default", parse_query(f"tag:{tag}", now), 0, 0)
        counted = store.list("default", parse_query(f"tag:{tag} tag:{tag}", now), 0, 0)
        assert (single.matched, single.matched_unread) == (
            counted.matched,
            counted.matched_unread,
        ), tag
    common = store.list("default", parse_query("tag:common", now), 0, 0)
    assert (common.matched, common.matched_unread) == (30, 30 - len(ids[::4]))
