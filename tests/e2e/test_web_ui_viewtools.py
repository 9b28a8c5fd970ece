"""The message view's tools in headless Chromium: downloads of the HTML and text bodies (named
after the subject, any characters), "Open" of an attachment in a new tab for safe types only
(an "image/png" holding HTML opens as an image and runs nothing; SVG and HTML are downloads).
Also the HTML source tab (highlighting, the HTML check's line links), the Release dialog
against a relay on loopback, and the Screenshot button (a PNG drawn on the server, nothing
fetched). Screenshots: viewtools-attachments, viewtools-open-png, viewtools-open-pdf,
viewtools-release-refused, viewtools-release-done, viewtools-source, viewtools-source-line,
viewtools-screenshot-button and the PNGs the button saved (shot-1024, shot-375)."""

from __future__ import annotations

import os
import re
import shutil
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PageProblems, Shots
from tests.e2e.mail import PNG, png, send
from tests.e2e.test_web_ui_checks import csp_violations, expect, newsletter, start

pytestmark = pytest.mark.chromium
ROWS = "#message-list a.row"
HOSTILE = (
    b"<html><head><title>pwned</title></head><body>"
    b"<script>document.title='ran'; fetch('/api/v1/messages', {method: 'DELETE'})</script>"
    b"<h1>owned</h1></body></html>"
)
SVG = (
    b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10' onload='alert(1)'>"
    b"<script>alert(2)</script></svg>"
)


def tiny_pdf() -> bytes:
    """A one-page PDF (cross-reference offsets computed)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def tools_message(subject: str = "Rapport d'été: 日本語") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Shop <news@shop.example>"
    msg["To"] = "ann@example.com"
    msg["Subject"] = subject
    msg.set_content("Plain body with words.\n")
    msg.add_alternative(
        "<html><body><h1>Sale</h1>\n<p>HTML body</p></body></html>\n", subtype="html"
    )
    msg.add_attachment(
        png(40, 20, (30, 120, 220)), maintype="image", subtype="png", filename="real.png"
    )
    msg.add_attachment(HOSTILE, maintype="image", subtype="png", filename="fake.png")
    msg.add_attachment(SVG, maintype="image", subtype="svg+xml", filename="drawing.svg")
    msg.add_attachment(HOSTILE, maintype="text", subtype="html", filename="page.html")
    msg.add_attachment(tiny_pdf(), maintype="application", subtype="pdf", filename="doc.pdf")
    msg.add_attachment("just text\n", filename="notes.txt")
    assert PNG
    return msg


def test_body_downloads_and_open_attachment(
    tmp_path: Path, page: Any, context: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    server = start(tmp_path)
    try:
        send(server.smtp_port, tools_message())
        with page.expect_response(lambda r: r.url.endswith("/api/v1/webui")) as webui:
            page.goto(server.base_url + "/")
        assert webui.value.json()["MessageRelay"]["Enabled"] is False
        page.locator(ROWS).first.click()
        check(page.locator("#copy-link")).to_be_visible()
        # No relay configured (and the UI knows it by now): no Release button.
        check(page.locator("#release-message")).to_have_count(0)
        page.get_by_role("tab", name="HTML", exact=True).click()
        with page.expect_download() as html_download:
            page.get_by_role("link", name="Download HTML").click()
        download = html_download.value
        assert download.suggested_filename == "Rapport d'été_ 日本語.html"
        saved = Path(download.path()).read_bytes().replace(b"\r\n", b"\n")
        assert saved == b"<html><body><h1>Sale</h1>\n<p>HTML body</p></body></html>\n"

        page.get_by_role("tab", name="Text", exact=True).click()
        with page.expect_download() as text_download:
            page.get_by_role("link", name="Download text").click()
        download = text_download.value
        assert download.suggested_filename == "Rapport d'été_ 日本語.txt"
        assert Path(download.path()).read_text().strip() == "Plain body with words."

        page.get_by_role("tab", name="Attachments (6)").click()
        for name in ("real.png", "fake.png", "doc.pdf", "notes.txt"):
            check(page.get_by_role("link", name=f"Open {name} in a new tab")).to_be_visible()
        for name in ("drawing.svg", "page.html"):
            check(page.get_by_role("link", name=f"Open {name} in a new tab")).to_have_count(0)
            check(page.get_by_role("link", name=f"Download {name}")).to_be_visible()
        shots.take(page, "viewtools-attachments", full_page=True)

        # A real PNG opens as an image in a tab of its own.
        with context.expect_page() as opened:
            page.get_by_role("link", name="Open real.png in a new tab").click()
        tab = opened.value
        tab.wait_for_load_state()
        assert tab.evaluate("document.contentType") == "image/png"
        assert tab.evaluate("document.images[0].naturalWidth") == 40
        shots.take(tab, "viewtools-open-png")
        tab.close()

        # HTML declared as image/png: the browser shows a (broken) image, runs nothing.
        with context.expect_page() as opened:
            page.get_by_role("link", name="Open fake.png in a new tab").click()
        tab = opened.value
        tab.wait_for_load_state()
        assert tab.evaluate("document.contentType") == "image/png"
        assert tab.evaluate("document.querySelector('script, h1')") is None
        assert tab.title() != "ran"
        tab.close()

        # PDF opens in Chromium's own viewer, under the sandbox CSP all the same.
        with context.expect_page() as opened:
            page.get_by_role("link", name="Open doc.pdf in a new tab").click()
        tab = opened.value
        tab.wait_for_load_state()
        assert tab.evaluate("document.contentType") == "application/pdf"
        tab.wait_for_timeout(2000)  # the viewer draws after load; only for the picture
        shots.take(tab, "viewtools-open-pdf")
        tab.close()

        # Plain text opens as text.
        with context.expect_page() as opened:
            page.get_by_role("link", name="Open notes.txt in a new tab").click()
        tab = opened.value
        tab.wait_for_load_state()
        assert tab.evaluate("document.contentType") == "text/plain"
        assert tab.evaluate("document.body.innerText").strip() == "just text"
        tab.close()

        # SVG and HTML, asked for without dl=1 all the same, come as downloads.
        message = page.request.get(server.base_url + "/api/v1/message/latest").json()
        parts = {a["FileName"]: a["PartID"] for a in message["Attachments"]}
        for name in ("drawing.svg", "page.html"):
            url = f"{server.base_url}/api/v1/message/{message['ID']}/part/{parts[name]}"
            answer = page.request.get(url)
            assert answer.headers["content-disposition"].startswith("attachment"), name
            with page.expect_download() as forced:
                page.evaluate(
                    "url => { const a = document.createElement('a'); a.href = url; "
                    "document.body.append(a); a.click(); a.remove(); }",
                    url,
                )
            assert forced.value.suggested_filename == name
        # Nothing ran: the message is still there.
        assert page.request.get(server.base_url + "/api/v1/messages").json()["total"] == 1
        assert problems.dialogs == []
        assert problems.errors == []
        assert csp_violations(problems) == []
    finally:
        server.stop()


def test_release_through_a_relay_on_loopback(
    tmp_path: Path, page: Any, shots: Shots, problems: PageProblems
) -> None:
    from tests.integration.test_mailpit_release import RefusingReceiver

    check = expect()
    relay = RefusingReceiver()
    server = start(
        tmp_path,
        relay=f"smtp+plain://127.0.0.1:{relay.port}",
        release_allowed_recipients=r"@example\.(net|org)$",
    )
    try:
        send(server.smtp_port, tools_message("Release me"))
        page.goto(server.base_url + "/")
        page.locator(ROWS).first.click()
        button = page.get_by_role("button", name="Release: send this message to real recipients")
        button.click()
        dialog = page.get_by_role("dialog", name="Release message")
        check(dialog).to_be_visible()
        check(dialog).to_contain_text(f"Through the relay 127.0.0.1:{relay.port}.")
        check(dialog).to_contain_text(r"Recipients must match @example\.(net|org)$")
        recipients = dialog.get_by_role("textbox", name="Recipients")
        status = dialog.locator("#release-status")

        # Typing slips are caught before any request.
        recipients.fill("ann@example.net, not an address")
        dialog.get_by_role("button", name="Release").click()
        check(status).to_have_text("Not an address: not, an, address")
        check(recipients).to_have_attribute("aria-invalid", "true")
        # The server's refusals are shown as it words them: not allowed, refused by the relay.
        recipients.fill("ann@example.com")
        dialog.get_by_role("button", name="Release").click()
        check(status).to_contain_text("Not released: To: ann@example.com is not allowed")
        recipients.fill("nobody@example.net")
        dialog.get_by_role("button", name="Release").click()
        check(status).to_contain_text("Not released: the relay refused nobody@example.net: 550")
        assert relay.messages == []
        shots.take(page, "viewtools-release-refused")

        recipients.fill("ann@example.net; <cy@example.org>\nann@example.net")
        dialog.get_by_role("button", name="Release").click()
        check(status).to_have_text("Released to ann@example.net, cy@example.org.")
        check(dialog.get_by_role("button", name="Release")).to_be_hidden()
        shots.take(page, "viewtools-release-done")
        (got,) = relay.messages
        assert got.envelope.recipients == ("ann@example.net", "cy@example.org")
        raw = page.request.get(server.base_url + "/api/v1/message/latest/raw").body()
        assert got.data == raw
        dialog.get_by_role("button", name="Close").click()
        check(dialog).to_have_count(0)
        assert problems.errors == []
        assert csp_violations(problems) == []
    finally:
        server.stop()
        relay.stop()


def test_html_source_tab(tmp_path: Path, page: Any, shots: Shots, problems: PageProblems) -> None:
    check = expect()
    server = start(tmp_path)
    try:
        msg = newsletter("http://127.0.0.1:9")
        html = msg.get_body(("html",))
        assert html is not None
        html.set_content(
            html.get_content().replace(
                "</div>",
                "<script>alert('x')</script><!-- note &amp; -->\n<p title=\"a > b\">Tom &amp; Jerry</p></div>",
            ),
            subtype="html",
        )
        send(server.smtp_port, msg)
        page.goto(server.base_url + "/")
        page.locator(ROWS).first.click()
        page.get_by_role("tab", name="HTML source").click()
        source = page.get_by_role("list", name="HTML source")
        check(source).to_be_visible()
        lines = source.locator("> li")
        check(page.locator("#source-count")).to_have_text("11 lines")
        check(lines).to_have_count(11)
        # Tokens: tag names, attributes, values, entities, comments; the script is text.
        line6 = page.locator("#source-L6")
        check(line6).to_have_text(re.compile(r"^<video src='http://127.0.0.1:9/ok'></video>\s*$"))
        check(line6.locator(".hl-tag").first).to_have_text("video")
        check(line6.locator(".hl-attr")).to_have_text("src")
        check(line6.locator(".hl-value")).to_have_text("'http://127.0.0.1:9/ok'")
        check(source.locator(".hl-comment")).to_have_text("<!-- note &amp; -->")
        check(source.locator(".hl-raw", has_text="alert")).to_have_text("alert('x')")
        check(source.locator(".hl-raw", has_text="@media")).to_be_visible()  # <style>'s inside
        check(source.locator(".hl-value", has_text="a > b")).to_have_count(1)
        check(source.locator(".hl-entity")).to_have_text("&amp;")
        # What the message wrote is text here: no element of it exists in the page.
        assert page.locator("#message-panel script, #message-panel p[title]").count() == 0
        check(page.get_by_role("link", name="Download HTML")).to_be_visible()
        shots.take(page, "viewtools-source", full_page=True)

        # The HTML check's line numbers open the source at that line.
        page.get_by_role("tab", name="HTML check").click()
        video = page.locator("li.check-item[data-slug='html-video']")
        check(video).to_contain_text("line 6")
        video.locator("summary").click()
        check(video).to_contain_text("In the HTML source on line 6")
        video.get_by_role("link", name="6", exact=True).click()
        check(page.get_by_role("tab", name="HTML source")).to_have_attribute(
            "aria-selected", "true"
        )
        check(page.locator("#source-L6")).to_have_class("source-target")
        check(page.locator("#source-L6")).to_be_in_viewport()
        shots.take(page, "viewtools-source-line")
        assert problems.dialogs == []
        assert problems.errors == []
        assert csp_violations(problems, remote="http://127.0.0.1:9") == []
    finally:
        server.stop()


def test_screenshot_of_the_html(
    tmp_path: Path, page: Any, shots: Shots, problems: PageProblems
) -> None:
    import threading
    from http.server import ThreadingHTTPServer

    from PIL import Image

    from tests.integration.test_message_checks import capture
    from tests.integration.test_message_screenshot import Counting, hostile

    check = expect()
    handler = type("Handler", (Counting,), {"hits": []})
    bait = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=bait.serve_forever, daemon=True).start()
    server = start(tmp_path)
    try:
        capture(server, hostile(f"http://127.0.0.1:{bait.server_address[1]}"))
        page.goto(server.base_url + "/")
        page.locator(ROWS).first.click()
        page.get_by_role("tab", name="HTML", exact=True).click()
        button = page.get_by_role("button", name="Screenshot")
        check(button).to_be_visible()
        sizes = {}
        for width, pixels in (("Desktop", 1024), ("Phone", 375)):
            page.get_by_role("button", name=width, exact=True).click()
            with page.expect_download(timeout=60_000) as taken:
                button.click()
            download = taken.value
            assert download.suggested_filename == "look.png"
            saved = tmp_path / f"shot-{pixels}.png"
            download.save_as(saved)
            shots.taken.append(saved)
            extra = os.environ.get("POSTROOM_SCREENSHOTS")
            if extra:
                shutil.copy(saved, Path(extra) / f"viewtools-{saved.name}")
            image = Image.open(saved).convert("RGB")
            sizes[pixels] = image.size
            assert image.width == pixels
            assert image.getpixel((10, 10)) == (200, 20, 20)  # the message's inline image
            check(page.locator("#screenshot-status")).to_have_text("Saved.")
        assert sizes[375][1] >= sizes[1024][1]  # narrower: as tall or taller
        shots.take(page, "viewtools-screenshot-button")
        assert handler.hits == []  # the hostile HTML reached nothing, in the frame or the shot
        assert problems.errors == []
    finally:
        server.stop()
        bait.shutdown()
        bait.server_close()


def test_no_screenshot_button_without_chromium(tmp_path: Path, page: Any) -> None:
    check = expect()
    server = start(tmp_path, chromium="off")
    try:
        send(server.smtp_port, tools_message("No camera"))
        with page.expect_response(lambda r: r.url.endswith("/api/v1/webui")) as webui:
            page.goto(server.base_url + "/")
        assert webui.value.json()["Screenshots"] is False
        page.locator(ROWS).first.click()
        page.get_by_role("tab", name="HTML", exact=True).click()
        check(page.get_by_role("link", name="Download HTML")).to_be_visible()
        check(page.get_by_role("button", name="Screenshot")).to_have_count(0)
    finally:
        server.stop()
