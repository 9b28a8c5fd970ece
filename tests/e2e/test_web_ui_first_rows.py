"""The inbox's first rows come in the page itself (issue 12, first rows at a million): the
server renders them (web/rows.py) with the markup list.js draws, so they are on screen before
any script has run and the scripts take them over as they are. In headless Chromium: the rows
are shown while app.js is held back; they are, byte for byte, the rows list.js draws from the
same page (tags, "+N more" recipients, warnings, attachments, right-to-left text, markup in a
subject, every kind of relative time); the script adopts the same elements and asks for no
page; the shell carries the rows that fill a window (SHELL_ROWS) and the script draws the rest
of the page, which the keys move through like the others; without JavaScript the rows are there
and link to their messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from postroom.core.clock import FakeClock
from postroom.web.routes import SHELL_ROWS
from tests.e2e.conftest import PageProblems, Shots, watch
from tests.e2e.test_web_ui import wait_until
from tests.e2e.test_web_ui_moving import ROWS, clean, expect, fill
from tests.harness import ServerThread
from tests.integration.storage.factory import attachment, make_message

pytestmark = pytest.mark.chromium

# outerHTML of every row; the attributes the script adds later are left out (the signature it
# keeps, the exact time it puts in a time's title once the rows are on screen).
ROW_MARKUP = """() => [...document.querySelectorAll('#message-list > li')].map((li) => {
  const copy = li.cloneNode(true);
  copy.querySelector('a.row').removeAttribute('data-sig');
  copy.querySelectorAll('time[title]').forEach((t) => t.removeAttribute('title'));
  return copy.outerHTML;
})"""
RENDERED = "() => performance.getEntriesByName('postroom:list-rendered').length > 0"


def seed(server: ServerThread) -> list[str]:
    """Messages that take every path of a row, created from seconds to a year ago; the third
    newest is read. Their IDs, newest first."""
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    clock = FakeClock(now)
    many = [f"Person {n} <p{n}@example.com>" for n in range(5)]
    messages = [
        make_message(
            clock,
            created=now - timedelta(seconds=5),
            subject="<b>Bold</b> & \"quotes\" 'single' </script>",
            from_="Pat O'Brien <pat@example.com>",
            to=("דוד <david@example.com>", *many),
            cc=("Carol <carol@example.com>",),
            tags=("one", "two", "three", "four"),
            attachments=(attachment("a.pdf"), attachment("b.pdf"), attachment("i.png", True)),
            warnings=("Bare LF line endings <normalised>", "second warning"),
            body="snippet with <tags> & ampersands",
        ),
        make_message(
            clock,
            created=now - timedelta(minutes=7),
            subject="שלום עולם 42",
            from_=None,
            to=(),
            body="",
        ),
        make_message(clock, created=now - timedelta(hours=3), subject="", body="x" * 1300),
        make_message(clock, created=midnight - timedelta(hours=12), subject="Yesterday noon"),
        make_message(clock, created=now - timedelta(days=4), subject="Four days"),
        make_message(clock, created=now - timedelta(days=40), subject="Weeks ago"),
        make_message(clock, created=now - timedelta(days=400), subject="Last year"),
    ]
    store = server.app.store
    assert store is not None
    for message in messages:
        server.call(store.add(message))
    ids = [m.id for m in sorted(messages, key=lambda m: m.created, reverse=True)]
    httpx.put(
        server.base_url + "/api/v1/messages", json={"IDs": [ids[2]], "Read": True}, timeout=10
    ).raise_for_status()
    return ids


def hold_app_js(page: Any) -> list[Any]:
    """Hold the entry module back until released (the routes held are returned)."""
    held: list[Any] = []
    page.route("**/app.js", lambda route: held.append(route))
    return held


def release(page: Any, held: list[Any]) -> None:
    wait_until(page, lambda: len(held) >= 1, "the request for app.js reaches the route")
    for route in held:
        route.continue_()


@pytest.fixture
def utc_page(browser: Any, problems: PageProblems) -> Any:
    # The server says "3 h ago" in UTC; a browser elsewhere says it again in its own zone.
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="en-US", timezone_id="UTC"
    )
    try:
        yield watch(context.new_page(), problems)
    finally:
        context.close()


def test_the_shell_rows_are_the_rows_the_script_draws(
    server: ServerThread, utc_page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    page = utc_page
    ids = seed(server)
    held = hold_app_js(page)
    page.goto(server.base_url + "/", wait_until="commit")
    page.wait_for_selector("#first-page", state="attached")  # the whole page is parsed
    # On screen with no script run: the rows and the count.
    check(page.locator(ROWS)).to_have_count(len(ids))
    check(page.locator(ROWS).first).to_be_visible()
    check(page.locator("#list-count")).to_have_text("1–7 of 7 messages, 6 unread")
    assert page.evaluate("() => performance.getEntriesByName('postroom:boot').length") == 0
    server_rows: list[str] = page.evaluate(ROW_MARKUP)
    shots.take(page, "first-rows-01-before-scripts")
    assert [r.count(f'data-id="{i}"') for r, i in zip(server_rows, ids, strict=True)] == [2] * 7

    # The script draws its own rows from the same page: take the shell's away first.
    page.evaluate(
        "() => { document.getElementById('message-list').replaceChildren();"
        " document.getElementById('first-page').remove(); }"
    )
    release(page, held)
    page.wait_for_function(RENDERED)
    check(page.locator(ROWS)).to_have_count(len(ids))
    drawn: list[str] = page.evaluate(ROW_MARKUP)
    for shell_row, script_row in zip(server_rows, drawn, strict=True):
        assert shell_row == script_row
    # The paths the rows were meant to take were taken.
    joined = "".join(drawn)
    for piece in (
        "+4 more",  # six recipients and a Cc: three shown
        'class="tag tag-more"',  # four tags: three shown, then +1
        'class="row-warn" title="Bare LF line endings &lt;normalised&gt;\nsecond warning"',
        "2 attachments,",
        "(no sender)",
        "(no recipients)",
        "(no subject)",
        "just now",
        "7 min ago",
        "yesterday",
        "4 days ago",
        "1.4 KB",
        "&lt;b&gt;Bold&lt;/b&gt; &amp; \"quotes\" 'single' &lt;/script&gt;",
    ):
        assert piece in joined, piece
    assert '<a class="row" href' in drawn[2]  # the read one
    clean(problems)


def test_the_script_adopts_the_shell_rows_and_asks_for_no_page(
    server: ServerThread, utc_page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    page = utc_page
    ids = seed(server)
    listed: list[str] = []
    page.on("request", lambda r: listed.append(r.url) if "/api/v1/messages?" in r.url else None)
    held = hold_app_js(page)
    page.goto(server.base_url + "/", wait_until="commit")
    page.wait_for_selector("#first-page", state="attached")
    page.evaluate(
        "() => document.querySelectorAll('#message-list > li')"
        ".forEach((li) => { li.dataset.shell = '1'; })"
    )
    release(page, held)
    page.wait_for_function(RENDERED)
    # The same elements, taken as they are (each with its signature), the data block gone.
    adopted = page.evaluate(
        "() => [...document.querySelectorAll('#message-list > li')]"
        ".map((li) => [li.dataset.shell, li.querySelector('a.row').dataset.id,"
        " Boolean(li.querySelector('a.row').dataset.sig)])"
    )
    assert adopted == [["1", i, True] for i in ids]
    check(page.locator("#first-page")).to_have_count(0)
    # No request for the page; the live stream's one-row probe may come.
    assert [u for u in listed if "limit=1&" not in u] == [], listed
    # It works as ever: a row opens its message; a live message comes in on top.
    page.locator(ROWS).nth(3).click()
    check(page.locator("#message h1")).to_have_text("Yesterday noon")
    page.keyboard.press("Escape")
    shots.take(page, "first-rows-02-adopted")
    clean(problems)


def test_the_rows_are_there_without_javascript(
    server: ServerThread, browser: Any, shots: Shots
) -> None:
    check = expect()
    ids = seed(server)
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, java_script_enabled=False, timezone_id="UTC"
    )
    try:
        page = context.new_page()
        page.goto(server.base_url + "/")
        rows = page.locator(ROWS)
        check(rows).to_have_count(len(ids))
        check(rows.nth(3)).to_contain_text("Yesterday noon")
        check(page.locator("#list-count")).to_have_text("1–7 of 7 messages, 6 unread")
        shots.take(page, "first-rows-03-no-script")
        rows.nth(3).click()  # a plain link to the message's page
        check(page).to_have_url(f"{server.base_url}/message/{ids[3]}")
    finally:
        context.close()


def test_the_script_draws_the_rows_the_shell_leaves_out(
    server: ServerThread, utc_page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    page = utc_page
    ids = fill(server, SHELL_ROWS + 6)
    held = hold_app_js(page)
    page.goto(server.base_url + "/", wait_until="commit")
    page.wait_for_selector("#first-page", state="attached")
    # Before any script: the first rows of the page, its whole count.
    check(page.locator(ROWS)).to_have_count(SHELL_ROWS)
    check(page.locator("#list-count")).to_have_text(
        f"1–{SHELL_ROWS + 6} of {SHELL_ROWS + 6} messages, {SHELL_ROWS + 6} unread"
    )
    page.evaluate(
        "() => document.querySelectorAll('#message-list > li')"
        ".forEach((li) => { li.dataset.shell = '1'; })"
    )
    release(page, held)
    page.wait_for_function(RENDERED)
    # The shell's rows kept as they are, the rest of the page after them, in order.
    check(page.locator(ROWS)).to_have_count(len(ids))
    kept = page.evaluate(
        "() => [...document.querySelectorAll('#message-list > li')]"
        ".map((li) => [li.dataset.shell || '', li.querySelector('a.row').dataset.id])"
    )
    assert kept == [["1" if n < SHELL_ROWS else "", i] for n, i in enumerate(ids)]
    # The keys reach the rows the script added (drawn once scrolled to: content-visibility).
    for _ in range(SHELL_ROWS + 3):
        page.keyboard.press("j")
    cursor = page.locator(ROWS).nth(SHELL_ROWS + 2)
    check(cursor).to_have_class(re.compile(r"\bcursor\b"))
    check(cursor).to_be_in_viewport()
    check(cursor).to_contain_text("Message 03")
    page.keyboard.press("Enter")
    check(page.locator("#message h1")).to_have_text("Message 03")
    shots.take(page, "first-rows-04-drawn-by-the-script")
    clean(problems)
