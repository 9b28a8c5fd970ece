"""`GET /api/v1/message/{ID}/screenshot.png` on a running server with the real headless
Chromium: the PNG has the asked width and shows the message's own inline image; a hostile
message (remote image, stylesheet, frame, meta refresh, script, a file: URL) makes no request
at all (a loopback server counts them); width bounds are a 400 naming the field; without
Chromium a 503 naming `chromium`; another project's key gets 404 as for html-check."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from PIL import Image

from tests.e2e.mail import png
from tests.harness import ServerThread, make_config
from tests.integration.auth.conftest import create_admin, create_key
from tests.integration.test_message_checks import capture, latest_id
from tests.services import require_executable


class Counting(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"you should not see this")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bait() -> Iterator[tuple[str, list[str]]]:
    handler = type("Handler", (Counting,), {"hits": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def hostile(base: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "news@shop.example"
    msg["To"] = "ann@example.com"
    msg["Subject"] = "look"
    msg.set_content("text")
    msg.add_alternative(
        "<html><head>"
        f"<meta http-equiv='refresh' content='0;url={base}/refresh'>"
        f"<link rel='stylesheet' href='{base}/style.css'>"
        f"<style>@import url('{base}/import.css'); body {{ margin: 0; background: #fff }}</style>"
        "</head><body>"
        "<img id='logo' style='display:block' width='120' height='60' src='cid:logo@shot'>"
        f"<img src='{base}/remote.png'><img src='//127.0.0.1{base[16:]}/proto.png'>"
        f"<iframe src='{base}/frame'></iframe><object data='{base}/object'></object>"
        f"<script>fetch('{base}/script'); location = '{base}/location'</script>"
        f"<img src='x' onerror=\"new Image().src='{base}/onerror'\">"
        "<img src='file:///etc/hostname'>"
        f"<form action='{base}/form'><input autofocus></form>"
        "<h1>Hello screenshot</h1></body></html>",
        subtype="html",
    )
    html = msg.get_payload()[1]  # type: ignore[index]
    html.add_related(
        png(120, 60, (200, 20, 20)), maintype="image", subtype="png", cid="<logo@shot>"
    )
    return msg.as_bytes()


@pytest.fixture
def chromium() -> str:
    return require_executable("chromium", "/usr/bin/chromium")


def start(tmp_path: Path, **overrides: Any) -> ServerThread:
    return ServerThread(make_config(tmp_path / "data", **overrides)).start()


def test_screenshot_draws_the_message_and_fetches_nothing(
    tmp_path: Path, chromium: str, bait: tuple[str, list[str]]
) -> None:
    base, hits = bait
    config = make_config(tmp_path / "data", chromium=chromium)
    create_admin(config)
    own = create_key(config, "default", "read")
    other = create_key(config, "other-team", "read")
    server = ServerThread(config).start()
    try:
        capture(server, hostile(base))
        headers = {"Authorization": f"Bearer {own.token}"}
        with httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as http:
            assert http.get("/api/v1/webui").json()["Screenshots"] is True
            message_id = latest_id(http)
            answer = http.get(f"/api/v1/message/{message_id}/screenshot.png?width=600")
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "image/png"
            image = Image.open(io.BytesIO(answer.content)).convert("RGB")
            assert image.width == 600 and 60 < image.height <= 8000
            # the inline cid: image, top left (body margin 0): drawn from the message itself
            assert image.getpixel((10, 10)) == (200, 20, 20)
            assert image.getpixel((300, 10)) == (255, 255, 255)
            for bad in ("319", "1921", "wide"):
                refused = http.get(f"/api/v1/message/{message_id}/screenshot.png?width={bad}")
                assert refused.status_code == 400 and refused.json()["Field"] == "width", bad
            assert http.get("/api/v1/message/NOSUCH/screenshot.png").status_code == 404
        with httpx.Client(
            base_url=server.base_url,
            timeout=60,
            headers={"Authorization": f"Bearer {other.token}"},
        ) as http:
            for ref in (message_id, "latest"):
                answer = http.get(f"/api/v1/message/{ref}/screenshot.png")
                assert answer.status_code == 404 and answer.json()["Error"], ref
    finally:
        server.stop()
    assert hits == []  # not one request reached the loopback server


def test_without_chromium_a_503_says_why(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"] = "x"
    msg.set_content("<p>x</p>", subtype="html")
    for option, words in (
        ("off", "screenshots are off (--chromium off)"),
        (str(tmp_path / "no-such-chromium"), "no Chromium found"),
    ):
        server = start(tmp_path / option.strip("/").replace("/", "_"), chromium=option)
        try:
            capture(server, msg.as_bytes())
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                assert http.get("/api/v1/webui").json()["Screenshots"] is False
                answer = http.get("/api/v1/message/latest/screenshot.png")
                assert answer.status_code == 503
                assert answer.json()["Field"] == "chromium"
                assert words in answer.json()["Error"]
        finally:
            server.stop()


def test_a_message_without_html_is_a_404(tmp_path: Path, chromium: str) -> None:
    server = start(tmp_path, chromium=chromium)
    try:
        capture(server, b"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\n\r\nhi\r\n")
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            answer = http.get("/api/v1/message/latest/screenshot.png")
            assert answer.status_code == 404
            assert answer.json()["Error"] == "this message has no HTML part"
    finally:
        server.stop()


def test_a_browser_that_hangs_or_dies_is_a_failure_not_a_wait(tmp_path: Path) -> None:
    """The time bound and the pipe's end, with stand-ins for Chromium: one that never answers
    (killed at the deadline, with the child it started) and one that exits at once."""
    import os
    import time

    from postroom.checks.screenshot import ScreenshotFailed, screenshot

    pid_file = tmp_path / "child.pid"
    hang = tmp_path / "hang"
    hang.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pid_file}\nwait\n")
    die = tmp_path / "die"
    die.write_text("#!/bin/sh\nexit 3\n")
    for script in (hang, die):
        script.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(ScreenshotFailed, match="took too long"):
        screenshot(str(hang), "<p>x</p>", timeout=1.0)
    assert time.monotonic() - started < 30  # a bound, not a timing figure
    child = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the helper it started dies with it (its process group)
            os.kill(child, 0)
            time.sleep(0.1)
    with pytest.raises(ScreenshotFailed, match="closed its DevTools pipe"):
        screenshot(str(die), "<p>x</p>", timeout=10.0)
