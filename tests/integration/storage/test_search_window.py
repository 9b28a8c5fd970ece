"""A search's page is first looked for among the newest `page_window` messages (store.py
`_page_rows`); whether the window holds the page or the search falls back to the whole
project, the pages are exactly those of a search without the window, on SQLite and
PostgreSQL, for every kind of term (tags are looked up per message inside the window)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.integration.storage.factory import attachment, make_message

from postroom.core.clock import FakeClock
from postroom.core.search import parse_query
from postroom.storage import SqlMessageStore

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
]


async def test_windowed_pages_equal_the_whole_search(store: SqlMessageStore) -> None:
    clock = FakeClock(START)
    for n in range(60):
        tags = (("common",) if n % 2 else ()) + (("rare",) if n == 3 else ())
        await store.add(
            make_message(
                clock,
                step=600,
                subject=f"order {n}" if n % 3 == 0 else f"note {n}",
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
            store.page_window = 10**9  # no window: the planner's plan over the project
            whole = store.page("default", query, start, limit)
            listed = store.list("default", query, start, limit)
            store.page_window = 12
            windowed = store.page("default", query, start, limit)
            windowed_list = store.list("default", query, start, limit)
            expected = [m.id for m in whole.messages]
            assert [m.id for m in windowed.messages] == expected, (text, start, limit)
            assert [m.id for m in listed.messages] == expected, (text, start, limit)
            assert [m.id for m in windowed_list.messages] == expected, (text, start, limit)
            assert windowed.more == whole.more == (start + limit < listed.matched), text


@pytest.mark.parametrize("window", [1, 2])
async def test_tiny_windows(store: SqlMessageStore, window: int) -> None:
    clock = FakeClock(START)
    for n in range(5):
        await store.add(make_message(clock, step=60, subject=f"s{n % 2}"))
    store.page_window = window
    page = store.page("default", parse_query("s1", clock.now()), 0, 1)
    assert [m.summary.subject for m in page.messages] == ["s1"] and page.more
