"""The web UI in a real headless Chromium against a real server: live list, message tabs, search,
actions, keyboard, narrow screens, dark mode, accessible names."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PageProblems, Shots
from tests.e2e.mail import rich, send, send_bare_lf, simple
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium

ROWS = "#message-list a.row"


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def api_messages(server: ServerThread, query: str = "") -> dict[str, Any]:
    if query:
        response = httpx.get(
            f"{server.base_url}/api/v1/search", params={"query": query}, timeout=10
        )
    else:
        response = httpx.get(f"{server.base_url}/api/v1/messages", timeout=10)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def wait_until(page: Any, condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Wait for a condition that only Playwright's callbacks (routes, events) make true: they run
    while the page is being waited on, so keep waiting on it, not on a clock. Generous bound."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        page.wait_for_timeout(25)


def no_page_errors(problems: PageProblems) -> None:
    assert problems.errors == [], problems.errors
    assert problems.dialogs == [], problems.dialogs
    failures = [
        line
        for line in problems.console
        if line.startswith("error:") and "Content Security Policy" not in line
    ]
    assert failures == [], failures


def test_empty_state_then_mail_arrives_and_leaves_live(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    page.goto(server.base_url + "/")
    state = page.locator("#list-state")
    check(state).to_contain_text("No messages yet")
    check(state).to_contain_text(f"127.0.0.1:{server.smtp_port}")
    check(state).to_contain_text(
        f"swaks --to test@example.com --server 127.0.0.1:{server.smtp_port}"
    )
    check(page.locator(".statusbar")).to_contain_text(f"127.0.0.1:{server.app.http_port}")
    check(page.locator("#live-status")).to_have_attribute("data-state", "live")
    check(page).to_have_title("Postroom")
    shots.take(page, "01-empty")

    page.evaluate("window.__sameDocument = true")
    send(server.smtp_port, rich())
    row = page.locator(ROWS).first
    check(row).to_be_visible()
    check(row).to_contain_text("Alice Example")
    check(row).to_contain_text("Your invoice #42")
    check(row).to_contain_text("Plain text body")  # snippet
    check(row.locator(".row-to")).to_contain_text("Bob, Carol")
    check(row.locator(".tag")).to_have_text(["billing", "monthly"])
    check(row.locator(".row-attach")).to_be_visible()
    check(row.locator(".row-size")).to_have_text(re.compile(r"^\d+(\.\d)? KB$"))
    check(row).to_have_class(re.compile(r"\bunread\b"))
    check(row.locator("time")).to_have_text("just now")
    check(row.locator("time")).to_have_attribute("title", re.compile(r"\d{4}"))  # exact, on hover
    check(page).to_have_title("(1) Postroom")

    send(server.smtp_port, simple("Second one", body="newer message"))
    check(page.locator(ROWS)).to_have_count(2)
    check(page.locator(ROWS).first).to_contain_text("Second one")  # newest first
    check(page).to_have_title("(2) Postroom")
    check(page.locator("#list-count")).to_contain_text("2 messages, 2 unread")
    shots.take(page, "02-list")

    # Deleted elsewhere (through the API): the row goes away without a reload.
    oldest = api_messages(server)["messages"][1]["ID"]
    httpx.request(
        "DELETE", f"{server.base_url}/api/v1/messages", json={"IDs": [oldest]}, timeout=10
    )
    check(page.locator(ROWS)).to_have_count(1)
    check(page.locator(ROWS).first).to_contain_text("Second one")
    check(page).to_have_title("(1) Postroom")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    no_page_errors(problems)


def test_mail_that_arrives_before_the_stream_opens_is_not_missed(
    server: ServerThread, page: Any, problems: PageProblems
) -> None:
    check = expect()
    send(server.smtp_port, simple("Already there"))
    held: list[Any] = []
    page.route("**/api/v1/events", lambda route: held.append(route))  # hold the stream back
    page.goto(server.base_url + "/")
    check(page.locator(ROWS)).to_have_count(1)
    # The browser holds the stream's request until the route continues it, whenever the route
    # callback runs: the stream cannot open before this message is stored.
    send(server.smtp_port, simple("Arrived in between"))  # no stream yet: no event for it
    # The rows showing says nothing about the callback: it runs when Playwright dispatches the
    # route's event, which may come after the rows' (the first page is preloaded, the stream
    # request goes through interception). Wait for it rather than assume it ran.
    wait_until(page, lambda: len(held) >= 1, "the event stream's request reaches the route")
    assert len(held) == 1
    held[0].continue_()
    # Stream open, then the one-row probe, the debounced reload and the render: several round
    # trips on a loaded machine, so a bound wider than the default 10 s.
    check(page.locator(ROWS)).to_have_count(2, timeout=30_000)
    check(page.locator(ROWS).first).to_contain_text("Arrived in between")
    check(page).to_have_title("(2) Postroom")
    no_page_errors(problems)


def test_message_view_tabs(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    send(server.smtp_port, rich())
    message_id = api_messages(server)["messages"][0]["ID"]
    page.goto(server.base_url + "/")
    with page.expect_response(lambda r: "/part/" in r.url and r.status == 200) as inline_image:
        page.locator(ROWS).first.click()
    check(page).to_have_url(f"{server.base_url}/message/{message_id}")
    assert inline_image.value.headers["content-type"].startswith("image/png")
    view = page.locator("#message")
    check(view.locator("h1")).to_have_text("Your invoice #42")
    meta = view.locator(".msg-meta")
    check(meta).to_contain_text("Alice Example <alice@example.com>")
    check(meta).to_contain_text("Bob <bob@example.com>")
    check(meta).to_contain_text("Carol <carol@example.com>")
    check(view.locator(".msg-tags .tag")).to_have_text(["billing", "monthly"])
    check(page.locator(ROWS).first).not_to_have_class(re.compile(r"\bunread\b"))
    check(page).to_have_title("Postroom")

    # HTML: sandboxed, no scripts, no same origin; cid: image served from the message's parts.
    frame_element = page.locator("iframe.html-frame")
    tokens = (frame_element.get_attribute("sandbox") or "").split()
    assert frame_element.get_attribute("sandbox") is not None
    assert "allow-scripts" not in tokens and "allow-same-origin" not in tokens
    frame = page.frame_locator("iframe.html-frame")
    check(frame.locator("#greeting")).to_have_text("Invoice 42")
    check(frame.locator("#logo")).to_have_attribute(
        "src", re.compile(rf"^/api/v1/message/{message_id}/part/")
    )
    check(frame.locator("#outside")).to_have_attribute("href", "https://example.com/pay")
    shots.take(page, "03-message-html")
    page.get_by_role("button", name="Phone").click()
    check(page.locator(".frame-stage")).to_have_attribute("data-width", "phone")
    box = frame_element.bounding_box()
    assert box is not None and 360 <= box["width"] <= 380, box
    shots.take(page, "04-message-html-phone")
    page.get_by_role("button", name="Desktop").click()

    page.get_by_role("tab", name="Text").click()
    panel = page.locator("#message-panel")
    check(panel.locator("pre.text-body")).to_contain_text(
        "Plain text body: invoice 42 is attached."
    )
    check(panel.locator("pre.text-body a")).to_have_attribute("href", "https://example.com/i/42")
    shots.take(page, "05-message-text")

    page.get_by_role("tab", name="Headers", exact=True).click()
    table = panel.locator("table.headers-table")
    check(table.locator("tr", has_text="Subject")).to_contain_text("Your invoice #42")
    page.get_by_label("Filter headers").fill("x-tags")
    check(table.locator("tbody tr")).to_have_count(1)
    check(table.locator("tbody tr")).to_contain_text("billing, monthly")
    shots.take(page, "06-message-headers")

    page.get_by_role("tab", name="Raw").click()
    check(panel.locator("pre.raw-body")).to_contain_text("Subject: Your invoice #42")
    check(panel.locator("pre.raw-body")).to_contain_text("Content-Type: multipart/mixed")
    with page.expect_download() as download:
        panel.get_by_role("link", name="Download .eml").click()
    assert download.value.suggested_filename == f"{message_id}.eml"
    shots.take(page, "07-message-raw")

    page.get_by_role("tab", name=re.compile(r"^Attachments \(\d+\)$")).click()
    items = panel.locator("li.attachment")
    csv = items.filter(has_text="invoice-42.csv")
    check(csv).to_contain_text("text/csv")
    check(csv.get_by_role("link", name="Download invoice-42.csv")).to_have_attribute(
        "href", re.compile(r"/part/[^?]+\?dl=1$")
    )
    photo = items.filter(has_text="photo.png")
    check(photo.locator("img.thumb")).to_be_visible()
    # Visible is not loaded: wait for the image itself (0 if it fails to load).
    loaded_width = """img => img.complete ? img.naturalWidth : new Promise((done) => {
        img.addEventListener('load', () => done(img.naturalWidth), { once: true });
        img.addEventListener('error', () => done(0), { once: true });
    })"""
    assert photo.locator("img.thumb").evaluate(loaded_width) == 8
    check(panel).to_contain_text("Inline parts")
    shots.take(page, "08-message-attachments")

    # Deep links survive a reload, in both spellings.
    page.reload()
    check(page.locator("#message h1")).to_have_text("Your invoice #42")
    page.goto(f"{server.base_url}/#/message/{message_id}")
    check(page.locator("#message h1")).to_have_text("Your invoice #42")
    check(page).to_have_url(f"{server.base_url}/message/{message_id}")
    page.goto(f"{server.base_url}/message/latest")
    check(page.locator("#message h1")).to_have_text("Your invoice #42")
    check(page).to_have_url(f"{server.base_url}/message/{message_id}")
    no_page_errors(problems)
    page.goto(f"{server.base_url}/message/NOSUCHMESSAGE")
    check(page.locator(".message-error")).to_contain_text("This message is gone")


def test_warnings_are_visible(server: ServerThread, page: Any, shots: Shots) -> None:
    check = expect()
    send_bare_lf(server.smtp_port, "Bare line endings")
    page.goto(server.base_url + "/")
    row = page.locator(ROWS).first
    check(row.locator(".tag")).to_have_text(["bare-line-endings"])
    check(row.locator(".row-warn")).to_be_visible()
    row.click()
    warnings = page.locator("#message .msg-warnings")
    check(warnings).to_contain_text("bare CR or LF")
    # No HTML part: the Text tab is the one shown.
    check(page.get_by_role("tab", name="Text")).to_have_attribute("aria-selected", "true")
    check(page.get_by_role("tab", name="HTML", exact=True)).to_have_count(0)
    shots.take(page, "09-warnings")


def test_search_narrows_is_bookmarkable_and_deletes_matching(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    send(server.smtp_port, simple("Welcome aboard", sender="signup@shop.example"))
    send(server.smtp_port, simple("Password reset", sender="security@shop.example"))
    send(server.smtp_port, simple("Weekly digest", sender="news@shop.example", tags="newsletter"))
    page.goto(server.base_url + "/")
    check(page.locator(ROWS)).to_have_count(3)

    search = page.get_by_role("searchbox", name="Search messages")
    search.press_sequentially("subject:password", delay=20)
    check(page.locator(ROWS)).to_have_count(1)
    check(page.locator(ROWS).first).to_contain_text("Password reset")
    check(page).to_have_url(f"{server.base_url}/?q=subject%3Apassword")
    check(page.locator("#list-count")).to_contain_text("1 match")
    shots.take(page, "10-search")

    searches: list[str] = []
    page.on("request", lambda r: "/api/v1/search" in r.url and searches.append(r.url))
    probe = f"{server.base_url}/api/v1/messages?start=0&limit=1&counts=skip"  # the check once live
    with page.expect_response(lambda r: r.url == probe):
        page.reload()
    check(search).to_have_value("subject:password")
    check(page.locator(ROWS)).to_have_count(1)
    # The count is asked for after the rows show, and the request callback runs when Playwright
    # dispatches it: wait for both requests, then leave room for a (wrong) third.
    wait_until(page, lambda: len(searches) >= 2, "the page's and the count's search requests")
    page.wait_for_timeout(500)
    # One request for the page: the script's call reuses the one the shell preloaded; then
    # one for the count of matches (counts=skip left it out of the page).
    assert searches == [
        f"{server.base_url}/api/v1/search?start=0&limit=50&counts=skip&query=subject%3Apassword",
        f"{server.base_url}/api/v1/search?limit=0&query=subject%3Apassword",
    ]

    search.fill("tag:newsletter")
    check(page.locator(ROWS)).to_have_count(1)
    check(page.locator(ROWS).first).to_contain_text("Weekly digest")

    search.fill("before:notadate")
    check(page.locator("#list-state")).to_contain_text("That search is not valid")
    check(page.locator("#list-state")).to_contain_text("cannot be read")
    problems.console.clear()  # the browser logs the expected 400

    search.fill("nothing-matches-this")
    check(page.locator("#list-state")).to_contain_text("No messages match")
    page.get_by_role("button", name="Clear search").click()
    check(page.locator(ROWS)).to_have_count(3)
    check(page).to_have_url(f"{server.base_url}/")

    page.get_by_role("button", name="Search syntax help").click()
    help_panel = page.locator("#search-help")
    check(help_panel).to_be_visible()
    check(help_panel).to_contain_text("is:unread")
    page.get_by_role("button", name="Search syntax help").click()
    check(help_panel).to_be_hidden()

    # Delete the messages matching a search, after confirming.
    search.fill("from:news@shop.example")
    check(page.locator(ROWS)).to_have_count(1)
    page.get_by_role("button", name=re.compile("Delete the 1 message matching")).click()
    dialog = page.locator("dialog#confirm")
    check(dialog).to_be_visible()
    check(dialog).to_contain_text("from:news@shop.example")
    shots.take(page, "11-confirm-delete-matching")
    dialog.get_by_role("button", name="Delete matching").click()
    check(page.locator("#list-state")).to_contain_text("No messages match")
    assert api_messages(server)["total"] == 2

    # Delete all: cancel first (nothing happens), then confirm.
    page.get_by_role("button", name="Clear search").click()
    check(page.locator(ROWS)).to_have_count(2)
    page.get_by_role("button", name="Delete all messages").click()
    dialog.get_by_role("button", name="Cancel").click()
    check(dialog).to_be_hidden()
    assert api_messages(server)["total"] == 2
    page.get_by_role("button", name="Delete all messages").click()
    dialog.get_by_role("button", name="Delete all").click()
    check(page.locator("#list-state")).to_contain_text("No messages yet")
    assert api_messages(server)["total"] == 0
    no_page_errors(problems)


def test_keyboard_and_message_actions(
    server: ServerThread, context: Any, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    for n in (1, 2, 3):
        send(server.smtp_port, simple(f"Message {n}", body=f"body {n}"))
    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(3)

    page.keyboard.press("j")
    check(rows.nth(0)).to_have_class(re.compile(r"\bcursor\b"))
    check(rows.nth(0)).to_be_focused()
    page.keyboard.press("j")
    check(rows.nth(1)).to_be_focused()
    page.keyboard.press("k")
    check(rows.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    check(rows.nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    view = page.locator("#message")
    check(view.locator("h1")).to_have_text("Message 2")
    check(rows.nth(1)).not_to_have_class(re.compile(r"\bunread\b"))
    check(page).to_have_title("(2) Postroom")

    # Mark unread, then read again.
    view.get_by_role("button", name="Mark as unread").click()
    check(rows.nth(1)).to_have_class(re.compile(r"\bunread\b"))
    check(page).to_have_title("(3) Postroom")
    view.get_by_role("button", name="Mark as read").click()
    check(page).to_have_title("(2) Postroom")

    # Tags: add and remove.
    opened = api_messages(server, 'subject:"Message 2"')["messages"][0]["ID"]
    tag_input = view.get_by_role("combobox", name="Add a tag")
    tag_input.fill("vip")
    tag_input.press("Enter")
    check(view.locator(".msg-tags .tag")).to_have_text(["vip"])
    check(rows.nth(1).locator(".tag")).to_have_text(["vip"])
    assert api_messages(server, "tag:vip")["messages"][0]["ID"] == opened
    shots.take(page, "12-tagged")
    view.get_by_role("button", name="Remove tag vip").click()
    check(view.locator(".msg-tags .tag")).to_have_count(0)
    assert api_messages(server, "tag:vip")["messages_count"] == 0

    # Copy link.
    view.get_by_role("button", name="Copy link to this message").click()
    check(page.locator("#toast")).to_have_text("Link copied")
    assert page.evaluate("navigator.clipboard.readText()") == f"{server.base_url}/message/{opened}"

    # Delete the open message with its button: the next one opens in its place.
    view.get_by_role("button", name="Delete message").click()
    check(rows).to_have_count(2)
    check(view.locator("h1")).to_have_text("Message 1")
    page.keyboard.press("Escape")
    check(view).to_be_hidden()
    check(page.locator("#toast")).to_be_hidden()  # the Undo window passed: the delete is sent
    assert [m["Subject"] for m in api_messages(server)["messages"]] == ["Message 3", "Message 1"]

    # Delete key on the row under the cursor; "/" goes to the search box; Escape leaves it.
    rows.nth(0).focus()
    page.keyboard.press("Delete")
    check(rows).to_have_count(1)
    check(rows.nth(0)).to_contain_text("Message 1")
    page.keyboard.press("/")
    check(page.get_by_role("searchbox", name="Search messages")).to_be_focused()
    page.keyboard.press("Escape")
    check(rows.nth(0)).to_be_focused()
    page.keyboard.press("Enter")
    check(view.locator("h1")).to_have_text("Message 1")
    page.keyboard.press("Escape")
    check(view).to_be_hidden()
    check(page).to_have_url(f"{server.base_url}/")
    no_page_errors(problems)


def test_paging_with_many_messages(server: ServerThread, page: Any, problems: PageProblems) -> None:
    check = expect()
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for n in range(57):
            response = client.post(
                "/api/v1/send",
                json={
                    "From": {"Email": "bulk@example.com"},
                    "To": [{"Email": "bob@example.com"}],
                    "Subject": f"Bulk {n:02d}",
                    "Text": "x",
                },
            )
            response.raise_for_status()
    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(50)
    check(page.locator("#list-count")).to_contain_text("1–50 of 57 messages")
    check(rows.first).to_contain_text("Bulk 56")
    page.get_by_role("button", name="Older messages").click()
    check(rows).to_have_count(7)
    check(page.locator("#list-count")).to_contain_text("51–57 of 57")
    check(page).to_have_url(f"{server.base_url}/?start=50")
    check(page.get_by_role("button", name="Older messages")).to_be_disabled()
    # k above the first row of a later page goes to the previous page.
    rows.first.focus()
    page.keyboard.press("k")
    check(page.locator("#list-count")).to_contain_text("1–50 of 57")
    check(rows.last).to_be_focused()
    page.go_back()
    check(page.locator("#list-count")).to_contain_text("51–57 of 57")
    no_page_errors(problems)


def test_server_gone_says_what_to_do(server: ServerThread, page: Any, shots: Shots) -> None:
    check = expect()
    send(server.smtp_port, simple("Before the outage"))
    page.goto(server.base_url + "/")
    check(page.locator(ROWS)).to_have_count(1)
    server.stop()
    check(page.locator("#live-status")).to_have_attribute("data-state", "offline")
    check(page.locator("#live-status")).to_contain_text("Reconnecting")
    page.get_by_role("searchbox", name="Search messages").fill("anything")
    state = page.locator("#list-state")
    check(state).to_contain_text("Postroom is not reachable")
    check(state).to_contain_text("Is postroom serve still running?")
    check(page.locator("#list-count")).to_have_text("")
    check(state.get_by_role("button", name="Try again")).to_be_visible()
    shots.take(page, "13-server-gone")


NAMELESS_CONTROLS = """() => {
  const text = (el) => (el ? el.textContent.replace(/\\s+/g, ' ').trim() : '');
  const name = (el) => {
    if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
    const by = el.getAttribute('aria-labelledby');
    if (by) return by.split(/\\s+/).map((id) => text(document.getElementById(id))).join(' ');
    if (el.labels && el.labels.length) return text(el.labels[0]);
    if (el.title) return el.title;
    if (el.tagName === 'IFRAME') return el.title;
    return text(el);
  };
  const controls = document.querySelectorAll('button, a[href], input, select, textarea, iframe, [role="tab"]');
  return [...controls]
    .filter((el) => el.getClientRects().length > 0)
    .filter((el) => !name(el).trim())
    .map((el) => el.outerHTML.slice(0, 160));
}"""


def test_every_control_has_an_accessible_name(server: ServerThread, page: Any) -> None:
    check = expect()
    send(server.smtp_port, rich())
    page.goto(server.base_url + "/")
    page.locator(ROWS).first.click()
    check(page.locator("iframe.html-frame")).to_be_visible()
    page.get_by_role("button", name="Search syntax help").click()
    assert page.evaluate(NAMELESS_CONTROLS) == []
    for tab in ("Text", "Headers", "Raw"):
        page.get_by_role("tab", name=tab, exact=True).click()
        assert page.evaluate(NAMELESS_CONTROLS) == [], tab
    page.get_by_role("tab", name=re.compile("^Attachments")).click()
    check(page.locator("li.attachment").first).to_be_visible()
    assert page.evaluate(NAMELESS_CONTROLS) == []


OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_usable_at_375px(
    server: ServerThread, browser: Any, shots: Shots, problems: PageProblems
) -> None:
    from tests.e2e.conftest import watch

    check = expect()
    long_word = "Supercalifragilistic" * 8
    send(
        server.smtp_port,
        simple(
            f"Very long subject {long_word}",
            to=f"someone.with.a.very.long.address.{long_word}@example.com",
            tags="one, two, three, four",
        ),
    )
    send(server.smtp_port, rich())
    ctx = browser.new_context(
        viewport={"width": 375, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        page = watch(ctx.new_page(), problems)
        page.goto(server.base_url + "/")
        rows = page.locator(ROWS)
        check(rows).to_have_count(2)
        check(page.locator("#message-pane")).to_be_hidden()
        check(page.get_by_role("searchbox", name="Search messages")).to_be_visible()
        assert page.evaluate(OVERFLOW) <= 0
        for index in range(2):
            box = rows.nth(index).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
        shots.take(page, "20-narrow-list")

        rows.first.click()  # the rich message is newest
        view = page.locator("#message")
        check(view.locator("h1")).to_have_text("Your invoice #42")
        check(page.locator("#list-pane")).to_be_hidden()
        check(view.get_by_role("button", name="Back to the list")).to_be_visible()
        check(page.frame_locator("iframe.html-frame").locator("#greeting")).to_be_visible()
        frame_box = page.locator("iframe.html-frame").bounding_box()
        assert frame_box is not None and frame_box["width"] <= 375
        assert page.evaluate(OVERFLOW) <= 0
        shots.take(page, "21-narrow-message")
        page.get_by_role("tab", name="Headers", exact=True).click()
        check(page.locator("table.headers-table")).to_be_visible()
        assert page.evaluate(OVERFLOW) <= 0
        shots.take(page, "22-narrow-headers")

        view.get_by_role("button", name="Back to the list").click()
        check(rows).to_have_count(2)
        rows.nth(1).click()
        check(view.locator("h1")).to_contain_text("Very long subject")
        assert page.evaluate(OVERFLOW) <= 0
        shots.take(page, "23-narrow-long")
    finally:
        ctx.close()
    no_page_errors(problems)


def test_dark_and_light_follow_the_system(server: ServerThread, browser: Any, shots: Shots) -> None:
    send(server.smtp_port, rich())
    backgrounds = {}
    for scheme in ("light", "dark"):
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
        try:
            page = ctx.new_page()
            page.goto(server.base_url + "/")
            page.locator(ROWS).first.click()
            expect()(page.frame_locator("iframe.html-frame").locator("#greeting")).to_be_visible()
            backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
            shots.take(page, f"30-{scheme}")
        finally:
            ctx.close()

    def brightness(css: str) -> int:
        return sum(int(v) for v in re.findall(r"\d+", css)[:3])

    assert brightness(backgrounds["light"]) > 600, backgrounds
    assert brightness(backgrounds["dark"]) < 150, backgrounds
