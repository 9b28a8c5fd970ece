"""The checks of a message over real HTTP on a running server, with mail captured over real
SMTP: html-check (Mailpit's shape, the fixture's known features), link-check against pages
served on loopback (200, 404, redirect, timeout; loopback refused unless allowed), the errors
as JSON naming the problem, and another project's API key getting 404 for the same message."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.platform import IssuedApiKey
from tests.dnszone import DnsZone, dns_zone
from tests.harness import ServerThread, make_config
from tests.integration.auth.conftest import create_admin, create_key

__all__ = ["dns_zone"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PLAIN = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: plain\r\n\r\nno HTML here\r\n"


@dataclass
class Setup:
    server: ServerThread
    own: IssuedApiKey  # a read key of the default project, where captured mail goes
    other: IssuedApiKey  # a read key of another project

    def client(self, key: IssuedApiKey) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url,
            headers={"Authorization": f"Bearer {key.token}"},
            timeout=30,
        )


@pytest.fixture
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    config = make_config(tmp_path / "data", **overrides)
    create_admin(config)
    own = create_key(config, "default", "read")
    other = create_key(config, "other-team", "read")
    server = ServerThread(config).start()
    try:
        yield Setup(server, own, other)
    finally:
        server.stop()


def capture(server: ServerThread, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        smtp.sendmail("news@shop.example", ["ann@example.com"], data)


def latest_id(http: httpx.Client) -> str:
    return str(http.get("/api/v1/messages", params={"limit": 1}).json()["messages"][0]["ID"])


def test_html_check_of_a_captured_message(setup: Setup) -> None:
    capture(setup.server, (FIXTURES / "html-check.eml").read_bytes())
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        answer = http.get(f"/api/v1/message/{message_id}/html-check")
        assert answer.status_code == 200, answer.text
        result = answer.json()
        slugs = {w["Slug"] for w in result["Warnings"]}
        assert {"html-video", "html-svg", "css-display-grid", "css-at-font-face"} <= slugs
        assert next(w for w in result["Warnings"] if w["Slug"] == "html-video")["Lines"] == [10]
        assert result["Total"]["Nodes"] == 9
        # "latest" works as for every message endpoint
        assert http.get("/api/v1/message/latest/html-check").json() == result


def test_html_check_errors_name_the_problem(setup: Setup) -> None:
    capture(setup.server, PLAIN)
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        no_html = http.get(f"/api/v1/message/{message_id}/html-check")
        assert no_html.status_code == 400
        assert no_html.json() == {"Error": "the message has no HTML body to check", "Field": "ID"}
        unknown = http.get("/api/v1/message/NOSUCHID/html-check")
        assert unknown.status_code == 404
        assert "Error" in unknown.json()


def test_another_projects_key_gets_404(setup: Setup) -> None:
    capture(setup.server, (FIXTURES / "html-check.eml").read_bytes())
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        assert http.get(f"/api/v1/message/{message_id}/html-check").status_code == 200
    with setup.client(setup.other) as http:
        for path in (
            f"/api/v1/message/{message_id}/html-check",
            "/api/v1/message/latest/html-check",
        ):
            answer = http.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["Error"]


class Pages(BaseHTTPRequestHandler):
    hits: list[tuple[str, str]]

    def _answer(self) -> None:
        self.hits.append((self.command, self.path))
        if self.path == "/ok":
            self.send_response(200)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/ok")
        elif self.path == "/slow":
            time.sleep(1.5)
            self.send_response(200)
        elif self.path == "/no-head" and self.command == "HEAD":
            self.send_response(405)
        elif self.path == "/no-head":
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")
            return
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pages() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    hits: list[tuple[str, str]] = []
    handler = type("Handler", (Pages,), {"hits": hits})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def linked_message(base: str) -> bytes:
    return (
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: links\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\nSee {base}/ok and {base}/no-head\r\n"
        f'--b\r\nContent-Type: text/html\r\n\r\n<a href="{base}/ok">ok</a>'
        f'<a href="{base}/missing">gone</a><a href="{base}/moved">moved</a>'
        f'<img src="{base}/slow"><a href="mailto:x@example.com">mail</a>\r\n--b--\r\n'
    ).encode()


ALLOW = {"link_check_allow_private": True, "link_check_timeout": 0.5}


@pytest.mark.parametrize("setup", [ALLOW], indirect=True)
def test_link_check_against_pages_on_loopback(
    setup: Setup, pages: tuple[str, list[tuple[str, str]]]
) -> None:
    base, hits = pages
    capture(setup.server, linked_message(base))
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        answer = http.get(f"/api/v1/message/{message_id}/link-check")
        assert answer.status_code == 200, answer.text
        links = {link["URL"]: link for link in answer.json()["Links"]}
        assert list(links) == [f"{base}/{p}" for p in ("ok", "missing", "moved", "slow", "no-head")]
        status = {url.rsplit("/", 1)[1]: (v["StatusCode"], v["Status"]) for url, v in links.items()}
        assert status == {
            "ok": (200, "OK"),
            "missing": (404, "Not Found"),
            "moved": (302, "Found"),
            "slow": (0, "timed out after 0.5 s"),
            "no-head": (200, "OK"),
        }
        assert answer.json()["Errors"] == 2
        assert ("HEAD", "/no-head") in hits and ("GET", "/no-head") in hits

        followed = http.get(f"/api/v1/message/{message_id}/link-check", params={"follow": "true"})
        moved = next(link for link in followed.json()["Links"] if link["URL"].endswith("/moved"))
        assert (moved["StatusCode"], moved["Status"]) == (200, "OK")
        assert moved["Redirects"] == [{"URL": f"{base}/moved", "StatusCode": 302}]

        bad = http.get(f"/api/v1/message/{message_id}/link-check", params={"follow": "maybe"})
        assert bad.status_code == 400
        assert bad.json() == {
            "Error": "follow must be true or false, got 'maybe'",
            "Field": "follow",
        }
    with setup.client(setup.other) as http:
        assert http.get(f"/api/v1/message/{message_id}/link-check").status_code == 404


def test_link_check_refuses_loopback_by_default(
    setup: Setup, pages: tuple[str, list[tuple[str, str]]]
) -> None:
    base, hits = pages
    capture(setup.server, linked_message(base))
    with setup.client(setup.own) as http:
        result = http.get("/api/v1/message/latest/link-check", params={"follow": "1"}).json()
    assert result["Errors"] == 5
    for link in result["Links"]:
        assert link["StatusCode"] == 0
        assert link["Status"] == (
            "refused: 127.0.0.1 is at 127.0.0.1, not a public address "
            "(--link-check-allow-private allows it)"
        )
    assert hits == []  # not one request reached the loopback server


def image_message(png: bytes) -> bytes:
    import base64

    encoded = base64.encodebytes(png).decode().replace("\n", "\r\n")
    return (
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: pictures\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        '--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="p.png"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}"
        '--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename="r.csv"\r\n'
        "\r\na,b\r\n--b--\r\n"
    ).encode()


def png(width: int, height: int, noise: bool = False) -> bytes:
    import io
    import os

    from PIL import Image

    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), (255, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def thumb_size(answer: httpx.Response) -> tuple[int, int]:
    import io

    from PIL import Image

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(answer.content))
    assert image.format == "JPEG"
    return image.size


@pytest.mark.parametrize("noise", [False, True], ids=["small-message", "big-message"])
def test_thumbnails(setup: Setup, noise: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # noise: a message over 1 MiB, whose part is read as a stream (api/big_reads.py)
    data = png(700, 600, noise=noise)
    assert (len(data) > 1024 * 1024) is noise
    capture(setup.server, image_message(data))
    with setup.client(setup.own) as http:
        message = http.get("/api/v1/message/latest").json()
        image, csv = (a["PartID"] for a in message["Attachments"])
        base = f"/api/v1/message/{message['ID']}/part"
        assert thumb_size(http.get(f"{base}/{image}/thumb")) == (180, 120)
        assert thumb_size(http.get(f"{base}/{csv}/thumb")) == (180, 120)  # blank
        missing = http.get(f"{base}/9/thumb")
        assert missing.status_code == 404 and missing.json()["Error"]
        monkeypatch.setattr("postroom.api.checks.MAX_INPUT", 1000)
        too_big = http.get(f"{base}/{image}/thumb")
        assert too_big.status_code == 400
        assert too_big.json() == {
            "Error": f"part {image} holds more than 1000 bytes, the most a thumbnail is made from",
            "Field": "PartID",
        }
    with setup.client(setup.other) as http:
        assert http.get(f"{base}/{image}/thumb").status_code == 404


@pytest.mark.parametrize("allow", [False, True], ids=["refused", "allowed"])
def test_link_check_resolves_through_the_configured_resolver(
    tmp_path: Path, dns_zone: DnsZone, pages: tuple[str, list[tuple[str, str]]], allow: bool
) -> None:
    """A name whose A record is loopback (a message's way to aim at the server's own network)
    is refused by its address, found through --resolver (a real DNS server on loopback)."""
    base, hits = pages
    port = base.rsplit(":", 1)[1]
    dns_zone.add_a("pages.test", "127.0.0.1")
    config = make_config(
        tmp_path / "data", resolver=dns_zone.nameserver, link_check_allow_private=allow
    )
    server = ServerThread(config).start()
    try:
        capture(server, linked_message(f"http://pages.test:{port}"))
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            result = http.get("/api/v1/message/latest/link-check").json()
        ok = next(link for link in result["Links"] if link["URL"].endswith("/ok"))
        if allow:
            assert (ok["StatusCode"], ok["Status"]) == (200, "OK")
            assert ("HEAD", "/ok") in hits
        else:
            assert ok["StatusCode"] == 0
            assert ok["Status"] == (
                "refused: pages.test is at 127.0.0.1, not a public address "
                "(--link-check-allow-private allows it)"
            )
            assert hits == []
        assert any(q.name == "pages.test" for q in dns_zone.queries)
    finally:
        server.stop()
