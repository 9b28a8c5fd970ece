"""The check tabs of the web inbox in headless Chromium: HTML check (features, scores, the
clients of one feature), Link check (pages served on loopback: 200, 404, a redirect followed),
and Spam against a real spamd, or how to set one up without --spamassassin. Screenshots:
checks-html, checks-links, checks-spam, checks-spam-not-set-up."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from postroom.config import HostPort
from tests.e2e.conftest import PageProblems, Shots, free_port
from tests.e2e.mail import send
from tests.harness import ServerThread, make_config
from tests.integration.test_message_checks import Pages
from tests.spamd import running_spamd

pytestmark = pytest.mark.chromium
ROWS = "#message-list a.row"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


@pytest.fixture
def pages() -> Iterator[str]:
    handler = type("Handler", (Pages,), {"hits": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def start(tmp_path: Path, **overrides: Any) -> ServerThread:
    config = make_config(
        tmp_path / "data",
        smtp=HostPort("127.0.0.1", free_port()),
        link_check_allow_private=True,
        **overrides,
    )
    return ServerThread(config).start()


def newsletter(base: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Shop <news@shop.example>"
    msg["To"] = "Ann <ann@example.com>"
    msg["Subject"] = "Spring sale"
    msg.set_content("Our sale: " + base + "/ok")
    msg.add_alternative(
        "<html><head><style>\n@media (max-width: 600px) { .c { width: 100% } }\n</style></head>"
        "<body>\n<div class='c' style='display: grid'>\n<svg width='4' height='4'></svg>\n"
        f"<video src='{base}/ok'></video>\n<a href='{base}/ok'>shop</a>\n"
        f"<a href='{base}/missing'>gone</a>\n<a href='{base}/moved'>moved</a>\n</div></body></html>",
        subtype="html",
    )
    return msg


def csp_violations(problems: PageProblems, remote: str = "") -> list[str]:
    """CSP reports of the UI itself; the message's remote content (`remote`), blocked in its
    sandboxed frame by design, is left out."""
    return [
        line
        for line in problems.console
        if "Content Security Policy" in line and not (remote and remote in line)
    ]


def test_html_check_and_link_check_tabs(
    tmp_path: Path, pages: str, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    server = start(tmp_path)
    try:
        send(server.smtp_port, newsletter(pages))
        page.goto(server.base_url + "/")
        page.locator(ROWS).first.click()
        check(page.get_by_role("tab", name="HTML check")).to_be_visible()
        check(page.get_by_role("tab", name="Link check")).to_be_visible()
        # No --spamassassin: the tab is there to say how to set it up (tested below).
        check(page.get_by_role("tab", name="Spam")).to_be_visible()

        page.get_by_role("tab", name="HTML check").click()
        check(page.locator("#html-check-score")).to_have_text(re.compile(r"^\d+%$"))
        video = page.locator("li.check-item[data-slug='html-video']")
        check(video).to_contain_text("<video> element")
        check(video).to_contain_text("line 6")
        check(page.locator("li.check-item[data-slug='css-display-grid']")).to_contain_text("line 4")
        video.locator("summary").click()
        check(video.locator("li.client.support-no").first).to_be_visible()
        check(video.locator("li.client.support-yes", has_text="Apple Mail (ios)")).to_be_visible()
        check(video.get_by_role("link", name="More on caniemail.com")).to_have_attribute(
            "href", "https://www.caniemail.com/features/html-video/"
        )
        shots.take(page, "checks-html", full_page=True)

        page.get_by_role("tab", name="Link check").click()
        status = page.locator("#message-panel [role='status']")
        check(status).to_contain_text("requests every link and image URL")
        page.get_by_role("switch", name="Follow redirects").check()
        page.get_by_role("button", name="Check links").click()
        check(status).to_have_text("3 links checked, 1 error.")
        rows = page.locator("#link-table tbody tr")
        check(rows).to_have_count(3)  # ok (in the HTML and the text: once), missing, moved
        missing = rows.filter(has_text=f"{pages}/missing")
        check(missing).to_contain_text("404 Not Found")
        check(missing).to_have_class("link-bad")
        moved = rows.filter(has_text=f"{pages}/moved")
        check(moved).to_contain_text("200 OK")
        check(moved).to_contain_text(f"via 302 {pages}/moved")
        check(page.locator("#message-panel")).not_to_contain_text("null")
        shots.take(page, "checks-links", full_page=True)

        # Keyboard: the new tabs are in the tab order of the arrow keys.
        page.get_by_role("tab", name="Link check").focus()
        page.keyboard.press("ArrowLeft")
        check(page.get_by_role("tab", name="HTML check")).to_have_attribute("aria-selected", "true")
        check(page.locator("#html-check-score")).to_be_visible()
        assert problems.errors == []
        assert csp_violations(problems, remote=pages) == []
    finally:
        server.stop()


def test_spam_tab_with_a_real_spamd(
    tmp_path: Path, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    work = tmp_path / "spamd"
    work.mkdir()
    with running_spamd(work) as spamd:
        server = start(tmp_path, spamassassin=spamd)
        try:
            msg = EmailMessage()
            msg["From"] = "a@example.com"
            msg["To"] = "b@example.com"
            msg["Subject"] = "GTUBE"
            msg.set_content(f"This is the GTUBE test.\n{GTUBE}\n")
            send(server.smtp_port, msg)
            page.goto(server.base_url + "/")
            page.locator(ROWS).first.click()
            page.get_by_role("tab", name="Spam").click()
            score = page.locator("#spam-score")
            check(score).to_have_text(re.compile(r"^\d{4}"))
            check(score).to_have_class(re.compile(r"\bbad\b"))
            check(page.locator("#message-panel")).to_contain_text(
                "SpamAssassin scores this message as spam."
            )
            check(page.locator("#spam-rules tbody tr", has_text="GTUBE")).to_be_visible()
            shots.take(page, "checks-spam", full_page=True)
            assert problems.errors == []
            assert csp_violations(problems) == []
        finally:
            server.stop()


def test_spam_tab_without_spamd_says_how_to_enable_it(
    tmp_path: Path, page: Any, shots: Shots, problems: PageProblems
) -> None:
    """Without --spamassassin the Spam tab is still there (issue 12: "the tab explains how to
    enable it when absent"), and asks the server nothing."""
    check = expect()
    server = start(tmp_path)
    try:
        msg = EmailMessage()
        msg["From"] = "a@example.com"
        msg["To"] = "b@example.com"
        msg["Subject"] = "No spamd here"
        msg.set_content("hello")
        send(server.smtp_port, msg)
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "sa-check" in r.url else None)
        page.goto(server.base_url + "/")
        page.locator(ROWS).first.click()
        page.get_by_role("tab", name="Spam").click()
        setup = page.locator("#spam-setup")
        check(setup).to_contain_text("spamd --listen=127.0.0.1:783 --local --nouser-config")
        check(setup).to_contain_text("--spamassassin 127.0.0.1:783")
        shots.take(page, "checks-spam-not-set-up")
        assert asked == []
        assert problems.errors == []
    finally:
        server.stop()
