"""Moving through many messages, part 2 (issue 12), in headless Chromium: ctrl-click (cmd-click)
ticks a row without opening it; the page size choice is remembered and drives the API calls;
compact rows; the list takes the width until a message opens, then its pane is resizable by
mouse and keyboard and remembered."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PageProblems, Shots
from tests.e2e.test_web_ui_moving import ROWS, api, clean, expect, fill
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium


def test_ctrl_click_selects_and_the_page_size_is_remembered(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    ids = fill(server, 60)
    asked: list[str] = []
    page.on(
        "request",
        lambda request: asked.append(request.url) if "/api/v1/messages?" in request.url else None,
    )
    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(50)  # the default
    # The shell carried that page (rendered, and as data): the script asked for none.
    assert [url for url in asked if "limit=1&" not in url] == [], asked
    view = page.locator("#message")
    count = page.locator("#bulk-count")

    # Ctrl-click ticks a row and opens nothing; again unticks it; cmd-click (Meta) the same.
    rows.nth(2).click(modifiers=["Control"])
    check(count).to_have_text("1 selected")
    check(page.locator(f'{ROWS}[data-id="{ids[2]}"] + input.row-check')).to_be_checked()
    check(view).to_be_hidden()
    check(page).to_have_url(server.base_url + "/")
    rows.nth(5).click(modifiers=["Control"])
    check(count).to_have_text("2 selected")
    rows.nth(2).click(modifiers=["Control"])
    check(count).to_have_text("1 selected")
    rows.nth(7).click(modifiers=["Meta"])
    check(count).to_have_text("2 selected")
    # Shift-click on a row extends from the last ticked one: 7, 8, 9 (and 5).
    rows.nth(9).click(modifiers=["Shift"])
    check(count).to_have_text("4 selected")
    ticked: list[str] = page.evaluate(
        "() => [...document.querySelectorAll('#message-list input.row-check:checked')]"
        ".map((box) => box.dataset.id)"
    )
    assert ticked == [ids[5], ids[7], ids[8], ids[9]]
    assert len(page.context.pages) == 1  # no tab was opened
    check(view).to_be_hidden()
    shots.take(page, "density-01-ctrl-click")
    # A plain click still opens the row.
    rows.nth(1).click()
    check(view.locator("h1")).to_have_text("Message 58")
    page.keyboard.press("Escape")

    # Page size: 25 a page, the next page, and the choice (and the page) after a reload.
    size = page.get_by_label("Messages per page")
    check(size).to_have_value("50")
    size.select_option("25")
    check(rows).to_have_count(25)
    assert any("limit=25" in url for url in asked), asked
    check(page.locator("#list-count")).to_contain_text("1–25 of 60 messages")
    page.get_by_role("button", name="Older messages").click()
    check(page).to_have_url(server.base_url + "/?start=25")
    check(page.locator("#list-count")).to_contain_text("26–50 of 60 messages")
    check(rows.first).to_have_attribute("data-id", ids[25])
    page.reload()
    check(rows).to_have_count(25)
    check(rows.first).to_have_attribute("data-id", ids[25])
    check(page.get_by_label("Messages per page")).to_have_value("25")
    # The shell carries the page of the remembered size (start 25, 25 rows): no request for
    # it (the live stream's one-row probe aside), and no preload. The new document's own
    # requests are its resource entries: the old one's late work (the "update" event for the
    # message read above, arriving just as the reload starts on a loaded machine, re-reads
    # its page) is not counted.
    fetched: list[str] = page.evaluate(
        "() => performance.getEntriesByType('resource').map((entry) => entry.name)"
        ".filter((url) => url.includes('/api/v1/messages?'))"
    )
    assert [url for url in fetched if "limit=1&" not in url] == [], fetched
    check(page.locator('link[rel="preload"]')).to_have_count(0)
    shots.take(page, "density-02-page-size-25")

    # 100 a page: the page that held row 26 starts at 0 now; every message shows.
    page.get_by_label("Messages per page").select_option("100")
    check(rows).to_have_count(60)
    check(page).to_have_url(server.base_url + "/")
    check(page.get_by_role("button", name="Older messages")).to_be_disabled()
    assert api(server, "/api/v1/messages?limit=200")["messages_count"] == 60
    clean(problems)


def row_boxes(page: Any, index: int) -> dict[str, Any]:
    boxes: dict[str, Any] = page.evaluate(
        """(index) => {
            const row = document.querySelectorAll('#message-list a.row')[index];
            const box = (sel) => {
                const el = row.querySelector(sel);
                if (!el || !el.getClientRects().length) return null;
                const r = el.getBoundingClientRect();
                return { top: r.top, bottom: r.bottom, height: r.height };
            };
            return { row: box(':scope'), from: box('.row-from'), line: box('.row-line'),
                     time: box('.row-time'), to: box('.row-to'), meta: box('.row-meta') };
        }""",
        index,
    )
    boxes["row"] = page.locator(ROWS).nth(index).bounding_box()
    return boxes


def width(page: Any, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return float(box["width"])


def test_compact_rows_full_width_list_and_a_resizable_remembered_pane(
    server: ServerThread, browser: Any, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    ids = fill(server, 6)
    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(6)

    # Nothing open: no placeholder pane, the list takes the width (the tag sidebar aside).
    check(page.locator("#message-pane")).to_be_hidden()
    check(page.locator("#pane-resizer")).to_be_hidden()
    check(page.locator("#tag-side")).to_be_visible()  # the messages have tags
    beside = width(page, "#tag-side")
    assert width(page, "#list-pane") + beside >= width(page, "#panes") - 2
    # Wide list: the toolbar's buttons carry their labels, not only icons.
    check(page.locator("#delete-all .button-label")).to_be_visible()
    check(page.locator("#delete-all .button-label")).to_have_text("Delete all")
    shots.take(page, "density-03-full-width-list")

    # Comfortable rows are three lines; compact rows one (and remembered).
    comfy = row_boxes(page, 0)
    assert comfy["to"] is not None and comfy["line"]["top"] > comfy["from"]["bottom"] - 1
    toggle = page.get_by_role("button", name="Compact rows")
    check(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    check(page.locator("html")).to_have_attribute("data-density", "compact")
    check(toggle).to_have_attribute("aria-pressed", "true")
    tight = row_boxes(page, 0)
    assert tight["to"] is None  # the recipients line is gone
    for part in ("from", "line", "time", "meta"):  # one line: every part on the same band
        assert tight[part]["top"] < tight["from"]["bottom"], (part, tight)
        assert tight[part]["bottom"] > tight["from"]["top"], (part, tight)
    assert tight["row"]["height"] < comfy["row"]["height"] * 0.7, (tight, comfy)
    page.reload()
    check(page.locator("html")).to_have_attribute("data-density", "compact")
    check(page.get_by_role("button", name="Compact rows")).to_have_attribute("aria-pressed", "true")
    check(rows).to_have_count(6)
    shots.take(page, "density-04-compact")

    # A message open: the list narrows to its pane, the separator resizes it by mouse...
    rows.nth(1).click()
    check(page.locator("#message h1")).to_have_text("Message 04")
    resizer = page.locator("#pane-resizer")
    check(resizer).to_be_visible()
    # The tag sidebar comes back with the list's tag counts: measure once it is there.
    check(page.locator("#panes")).to_have_class(re.compile(r"\bwith-tags\b"))
    check(page.locator("#tag-side")).to_be_visible()
    before = width(page, "#list-pane")
    assert before < width(page, "#panes") * 0.6
    box = resizer.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y, steps=4)
    page.mouse.move(x + 120, y, steps=4)
    page.mouse.up()
    dragged = width(page, "#list-pane")
    assert abs(dragged - (before + 120)) <= 2, (before, dragged)
    # ...and by keyboard (16 px a step, Shift 64), saying its value.
    resizer.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowRight")
    moved = width(page, "#list-pane")
    assert abs(moved - (dragged + 32)) <= 2, (dragged, moved)
    check(resizer).to_have_attribute("aria-valuenow", str(round(moved)))
    page.keyboard.press("Home")
    assert abs(width(page, "#list-pane") - 240) <= 2
    # At its narrowest the list's toolbar wraps inside the pane: no control under the message.
    spill = page.evaluate(
        """() => { const pane = document.getElementById('list-pane').getBoundingClientRect();
            return [...document.querySelectorAll('.list-toolbar button, .list-toolbar select,'
                + ' .list-toolbar input')]
                .filter((el) => el.getClientRects().length)
                .filter((el) => el.getBoundingClientRect().right > pane.right + 0.5)
                .map((el) => el.id || el.className); }"""
    )
    assert spill == [], spill
    shots.take(page, "density-05-narrowest-list")
    # At its narrowest, compact rows still show the subject beside the sender.
    line = page.locator(f'{ROWS}[data-id="{ids[1]}"] .row-line').bounding_box()
    assert line is not None and line["width"] >= 50, line
    page.keyboard.press("End")
    assert width(page, "#message-pane") >= 320 - 2
    # Labels on the toolbar's buttons only where they leave the count its room.
    count = page.locator("#list-count")
    assert count.evaluate("(el) => el.scrollWidth <= el.clientWidth"), count.inner_text()
    shots.take(page, "density-05b-widest-list-beside-message")
    for _ in range(3):
        page.keyboard.press("Shift+ArrowLeft")
    chosen = width(page, "#list-pane")
    shots.take(page, "density-05-resized")

    # Remembered: a reload of the message (and the next message opened) keeps the width.
    page.reload()
    check(page.locator("#message h1")).to_have_text("Message 04")
    assert abs(width(page, "#list-pane") - chosen) <= 2, chosen
    page.keyboard.press("j")
    check(page.locator("#message h1")).to_have_text("Message 03")
    assert abs(width(page, "#list-pane") - chosen) <= 2
    # The server renders that layout: without any script the page is already laid out so
    # (no flash of another width while the scripts load).
    remembered = {c["name"]: c["value"] for c in page.context.cookies()}
    assert remembered["postroom_list_width"] == str(round(chosen))
    assert remembered["postroom_density"] == "compact"
    bare = browser.new_context(viewport={"width": 1280, "height": 800}, java_script_enabled=False)
    try:
        bare.add_cookies(page.context.cookies())
        still = bare.new_page()
        still.goto(f"{server.base_url}/message/{ids[2]}")
        check(still.locator("html")).to_have_attribute("data-density", "compact")
        check(still.locator("#message-pane")).to_be_visible()
        assert abs(width(still, "#list-pane") - chosen) <= 2
        shots.take(still, "density-05b-no-script-layout")
    finally:
        bare.close()
    css = httpx.get(f"{server.base_url}/ui/list-width/{round(chosen)}.css", timeout=10)
    assert css.headers["content-type"].startswith("text/css")
    assert css.text.strip() == f".panes {{ --list-width: {round(chosen)}px; }}"
    assert httpx.get(f"{server.base_url}/ui/list-width/10.css", timeout=10).status_code == 404
    # Closed again: the list takes the width back.
    page.keyboard.press("Escape")
    check(page.locator("#message-pane")).to_be_hidden()
    assert width(page, "#list-pane") + beside >= width(page, "#panes") - 2
    assert ids
    clean(problems)


# The first and last words of a subject, where they land on screen.
WORD_X = """([selector, first, last]) => {
    const el = document.querySelector(selector);
    const text = el.firstChild;
    const box = (word) => {
        const start = text.data.indexOf(word);
        const range = document.createRange();
        range.setStart(text, start);
        range.setEnd(text, start + word.length);
        return range.getBoundingClientRect().left;
    };
    const style = getComputedStyle(el);
    return { first: box(first), last: box(last), direction: style.direction,
             bidi: style.unicodeBidi, dir: el.getAttribute('dir') };
}"""


def test_rtl_subjects_read_right_to_left_and_long_recipient_lists_collapse(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    subject = "שלום עולם 42 ABC סוף"  # Hebrew with digits and a Latin word
    snippet = "مرحبا بالعالم 2026 test نهاية"  # Arabic
    recipients = [
        {"Email": f"person{n:02d}@example.com", "Name": f"Person {n:02d}"} for n in range(30)
    ]
    recipients[1] = {"Email": "dana@example.com", "Name": "דנה כהן"}  # a right-to-left name
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        client.post(
            "/api/v1/send",
            json={
                "From": {"Email": "app@example.com", "Name": "מערכת"},
                "To": recipients,
                "Subject": subject,
                "Text": snippet,
            },
        ).raise_for_status()
        client.post(
            "/api/v1/send",
            json={
                "From": {"Email": "app@example.com"},
                "To": [{"Email": "bob@example.com"}],
                "Subject": "Hello world 42 ABC end",
                "Text": "left to right",
            },
        ).raise_for_status()
    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(2)
    rtl = rows.nth(1)

    # In the list: the subject is its own right-to-left isolate, its first word on the right.
    found = page.evaluate(
        WORD_X, [f'{ROWS}[data-id="{rtl.get_attribute("data-id")}"] .row-subject', "שלום", "סוף"]
    )
    assert found["dir"] == "auto" and found["direction"] == "rtl", found
    assert found["bidi"] == "isolate", found
    assert found["first"] > found["last"], found
    latin = page.evaluate(WORD_X, [f"{ROWS} .row-subject", "Hello", "end"])
    assert latin["direction"] == "ltr" and latin["first"] < latin["last"], latin
    snip = page.evaluate(
        WORD_X, [f'{ROWS}[data-id="{rtl.get_attribute("data-id")}"] .row-snippet', "مرحبا", "نهاية"]
    )
    assert snip["direction"] == "rtl" and snip["first"] > snip["last"], snip
    sender = rtl.locator(".row-from .addr")
    check(sender).to_have_attribute("dir", "auto")
    assert sender.evaluate("(el) => getComputedStyle(el).direction") == "rtl"

    # 30 recipients: three names and "+27 more"; a click shows them all, opening nothing.
    to = rtl.locator(".row-to")
    more = to.locator(".row-more")
    check(more).to_have_text("+27 more", use_inner_text=True)
    check(to.locator(".row-to-rest")).to_be_hidden()
    assert "person29@example.com" in (to.get_attribute("title") or "")
    shots.take(page, "density-06-rtl-and-more")
    more.click()
    check(to.locator(".row-to-rest")).to_be_visible()
    check(to).to_contain_text("Person 29")
    check(more).to_have_text("fewer", use_inner_text=True)
    check(page.locator("#message")).to_be_hidden()
    # A live update redraws the row: it stays open, and says so.
    httpx.put(
        server.base_url + "/api/v1/messages",
        json={"Read": True, "IDs": [rtl.get_attribute("data-id")]},
        timeout=10,
    ).raise_for_status()
    check(rtl).not_to_have_class(re.compile(r"\bunread\b"))
    check(to.locator(".row-to-rest")).to_be_visible()
    check(more).to_have_text("fewer", use_inner_text=True)
    more.click()
    check(to.locator(".row-to-rest")).to_be_hidden()
    check(more).to_have_text("+27 more", use_inner_text=True)

    # The message header: eight addresses and "+22 more", which expands and collapses.
    rtl.click()
    view = page.locator("#message")
    check(view.locator("h1")).to_have_text(subject)
    # Beside the open message, dragged to its narrowest, the list cuts the addresses short,
    # never the "+27 more" after them.
    page.locator("[role=separator]").focus()
    page.keyboard.press("Home")
    page.wait_for_function("document.getElementById('list-pane').clientWidth <= 260")
    shots.take(page, "density-07-more-beside-message")
    assert more.is_visible()
    cut = to.evaluate(
        """(el) => { const box = el.getBoundingClientRect();
            const more = el.querySelector('.row-more').getBoundingClientRect();
            return {shown: more.width > 0 && more.right <= box.right + 0.5,
                    cut: el.scrollWidth > el.clientWidth
                        || el.querySelector('.row-to-list').scrollWidth
                           > el.querySelector('.row-to-list').clientWidth}; }"""
    )
    assert cut == {"shown": True, "cut": True}, cut
    head = page.evaluate(WORD_X, ["#message h1", "שלום", "סוף"])
    assert head["direction"] == "rtl" and head["first"] > head["last"], head
    line = view.locator("dd.msg-to")
    button = line.get_by_role("button", name="+22 more")
    check(button).to_have_attribute("aria-expanded", "false")
    visible = line.locator(".addr:visible")
    check(visible).to_have_count(8)
    name = line.locator(".addr-name", has_text="דנה כהן")
    check(name).to_have_attribute("dir", "auto")
    assert name.evaluate("(el) => getComputedStyle(el).direction") == "rtl"
    check(line).to_contain_text("דנה כהן <dana@example.com>")
    # Wide enough: the toolbar's buttons carry short labels beside their icons.
    check(view.locator("#delete-message .button-label")).to_be_visible()
    check(view.locator("#delete-message .button-label")).to_have_text("Delete")
    check(view.get_by_role("button", name="Delete message")).to_be_visible()
    shots.take(page, "density-07-header-collapsed")
    button.click()
    check(visible).to_have_count(30)
    check(line).to_contain_text("Person 29 <person29@example.com>")
    collapse = line.get_by_role("button", name="Show fewer")
    check(collapse).to_have_attribute("aria-expanded", "true")
    shots.take(page, "density-08-header-expanded")
    collapse.click()
    check(visible).to_have_count(8)
    clean(problems)
