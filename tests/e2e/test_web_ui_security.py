"""Captured mail is hostile: script in its HTML, subject, headers, addresses, tags and attachment
names must never run in the UI's origin, call the API, or reach anything outside.

A recording HTTP server stands in for "anything outside": every payload that runs would call it
(fetch, image, stylesheet, form, navigation). The test proves it hears nothing while remote
content is blocked, and then (switch on) that it does hear remote images, so the silence means
something. It also listens for dialogs, console markers, title and window changes.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PageProblems, Shots, watch
from tests.e2e.mail import PNG, send
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium

ROWS = "#message-list a.row"


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                recorder.paths.append(self.path)
                body = PNG if "img" in self.path or "bg" in self.path else b"/* */"
                self.send_response(200)
                self.send_header("Content-Type", "image/png" if body is PNG else "text/css")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    try:
        yield rec
    finally:
        rec.close()


def hostile_message(r: str) -> tuple[EmailMessage, str]:
    js = (
        f"fetch('{r}/script-ran');new Image().src='{r}/script-img';"
        "try{top.document.title='PWNED'}catch(e){};try{window.top.__xss=1}catch(e){};"
        "try{fetch('/api/v1/messages',{method:'DELETE'})}catch(e){};"
        "console.log('XSS-RAN');alert('XSS')"
    )
    html = f"""<!doctype html><html><head>
<base href="{r}/base/">
<meta http-equiv="refresh" content="3;url=javascript:{js}">
<link rel="stylesheet" href="{r}/remote-css">
<style>@import url("{r}/import-css"); body {{ background: url("{r}/remote-bg"); }}</style>
<script>{js}</script>
</head><body onload="{js}">
<div id="marker">hostile body</div>
<img id="remote" src="{r}/remote-img" alt="remote">
<img src="x" onerror="{js}" alt="broken">
<svg onload="{js}"><circle r="5"/></svg>
<iframe src="javascript:{js}"></iframe>
<iframe srcdoc="<script>{js}</script>"></iframe>
<object data="{r}/object"></object>
<form action="{r}/form" method="post"><button id="submit" type="submit">go</button></form>
<a id="jslink" href="javascript:{js}">javascript link</a>
<a id="toplink" href="/api/v1/messages" target="_top">top link</a>
</body></html>"""
    subject = "<img src=x onerror=\"alert('subject')\"><script>alert('subject')</script> Hostile"
    msg = EmailMessage()
    msg["From"] = '"<script>alert(1)</script>" <evil@example.com>'
    msg["To"] = '"<img src=x onerror=alert(2)>" <victim@example.com>'
    msg["Subject"] = subject
    msg["X-Evil"] = "<script>alert('header')</script><img src=x onerror=alert(3)>"
    msg["X-Tags"] = "<b>bold</b>, <img src=x onerror=alert(5)>"
    msg.set_content("text with <script>alert('text')</script>")
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(
        f"<script>{js}</script>".encode(),
        maintype="text",
        subtype="html",
        filename="<img src=x onerror=alert(4)>.html",
    )
    return msg, subject


def assert_inert(page: Any, problems: PageProblems, recorder: Recorder, allowed: set[str]) -> None:
    ran = [p for p in recorder.paths if p not in allowed]
    assert ran == [], f"the message reached out: {ran}"
    assert problems.dialogs == [], problems.dialogs
    assert not [c for c in problems.console if "XSS-RAN" in c], problems.console
    assert problems.errors == [], problems.errors
    assert "PWNED" not in page.title()
    assert page.evaluate("window.__xss") is None


def test_hostile_message_is_inert(
    server: ServerThread, page: Any, recorder: Recorder, problems: PageProblems, shots: Shots
) -> None:
    from playwright.sync_api import expect

    msg, subject = hostile_message(recorder.url)
    send(server.smtp_port, msg)
    # Requests that completed (ones the CSP blocked are reported as failed, not finished).
    finished: list[str] = []
    page.context.on("requestfinished", lambda request: finished.append(request.url))

    page.goto(server.base_url + "/")
    row = page.locator(ROWS).first
    expect(row).to_contain_text("<script>alert('subject')</script> Hostile")
    expect(row).to_contain_text("<script>alert(1)</script>")  # sender name shown as text
    expect(row.locator(".tag")).to_have_count(2)
    row.click()
    view = page.locator("#message")
    expect(view.locator("h1")).to_have_text(subject)
    expect(view.locator(".msg-meta")).to_contain_text(
        "<img src=x onerror=alert(2)> <victim@example.com>"
    )
    frame = page.frame_locator("iframe.html-frame")
    expect(frame.locator("#marker")).to_have_text("hostile body")
    # Clicks inside the message: a javascript: link, a form, a link that targets the top window.
    for selector in ("#jslink", "#submit", "#toplink"):
        frame.locator(selector).click()
    expect(page).to_have_url(f"{server.base_url}/message/{row.get_attribute('data-id')}")
    shots.take(page, "40-hostile-html")
    expect(view.locator(".remote-note")).to_contain_text("Remote images and styles blocked")

    for tab in ("Text", "Headers", "Raw"):
        page.get_by_role("tab", name=tab, exact=True).click()
        expect(page.locator("#message-panel")).to_contain_text("alert(")
        if tab == "Headers":
            expect(page.locator("table.headers-table")).to_contain_text(
                "<script>alert('header')</script>"
            )
    page.get_by_role("tab", name="Attachments (1)").click()
    # The attachment's name, shown as text.
    expect(page.locator("li.attachment")).to_contain_text("src=x onerror=alert(4)")
    shots.take(page, "41-hostile-attachments")

    # The body and the attachment opened on their own, outside the UI, are inert as well.
    message_id = row.get_attribute("data-id")
    part = httpx.get(f"{server.base_url}/api/v1/message/{message_id}", timeout=10).json()[
        "Attachments"
    ][0]["PartID"]
    alone = watch(page.context.new_page(), problems)
    alone.goto(f"{server.base_url}/view/{message_id}.html")
    expect(alone.locator("#marker")).to_have_text("hostile body")
    # An HTML attachment is no page of ours: the browser only downloads it.
    part_url = f"{server.base_url}/api/v1/message/{message_id}/part/{part}"
    from playwright.sync_api import Error as PlaywrightError

    with alone.expect_download() as fetched, contextlib.suppress(PlaywrightError):
        alone.goto(part_url)  # raises "Download is starting"
    assert fetched.value.url == part_url
    alone.close()

    # Give anything that might still fire (meta refresh after 3 s, lazy loads) the chance to.
    page.wait_for_timeout(3500)
    assert_inert(page, problems, recorder, allowed=set())
    assert not [u for u in finished if u.startswith(recorder.url)], finished
    assert httpx.get(f"{server.base_url}/api/v1/messages", timeout=10).json()["total"] == 1

    # Control: with remote content switched on the recorder does hear the message's images,
    # so its silence above was real. Scripts still do not run.
    page.get_by_role("tab", name="HTML", exact=True).click()
    page.get_by_role("switch", name="Load remote content").check()
    expect(page.locator("iframe.html-frame")).to_have_attribute("src", re.compile(r"remote=1"))
    expect(page.frame_locator("iframe.html-frame").locator("#marker")).to_be_visible()
    for _ in range(150):  # the frame reloads with remote content allowed; wait for its images
        if "/remote-img" in recorder.paths:
            break
        page.wait_for_timeout(100)
    assert "/remote-img" in recorder.paths, recorder.paths
    page.wait_for_timeout(1000)
    assert_inert(
        page,
        problems,
        recorder,
        allowed={"/remote-img", "/remote-css", "/import-css", "/remote-bg"},
    )
    shots.take(page, "42-hostile-remote-on")
