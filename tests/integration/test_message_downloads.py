"""Downloads of a message's bodies (`/body.html`, `/body.txt`) and which parts open in the
browser, over real HTTP on a running server with mail captured over real SMTP: attachment
disposition with the subject as an RFC 6266 `filename*` name, the safe-type rule of the part
endpoint (png/jpeg/gif/webp, PDF, text inline; HTML, SVG and the rest downloads only, an
"image/png" holding HTML still served as image/png with nosniff and a sandbox CSP), and
another project's key getting the same 404 as for html-check."""

from __future__ import annotations

import re
import urllib.parse
from email.message import EmailMessage

import httpx

from tests.integration.test_message_checks import Setup, capture, latest_id, setup

__all__ = ["setup"]

HOSTILE = b"<html><body><script>document.title='pwned'</script>owned</body></html>"


def filename_of(disposition: str) -> tuple[str, str]:
    kind = disposition.split(";", 1)[0].strip().lower()
    extended = re.search(r";\s*filename\*=UTF-8''([^;]*)", disposition)
    if extended is not None:
        return kind, urllib.parse.unquote(extended.group(1), errors="strict")
    plain = re.search(r';\s*filename="([^"]*)"', disposition)
    assert plain is not None, disposition
    return kind, plain.group(1)


def both_bodies(subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "news@shop.example"
    msg["To"] = "ann@example.com"
    msg["Subject"] = subject
    msg.set_content("Plain words.\n")
    msg.add_alternative("<p>HTML <b>words</b></p>\n", subtype="html")
    return msg.as_bytes()


def with_parts() -> bytes:
    msg = EmailMessage()
    msg["From"] = "news@shop.example"
    msg["To"] = "ann@example.com"
    msg["Subject"] = "parts"
    msg.set_content("see the parts")
    for data, maintype, subtype, name in (
        (b"\x89PNG\r\n\x1a\n....", "image", "png", "real.png"),
        (HOSTILE, "image", "png", "fake.png"),
        (b"GIF89a", "image", "gif", "a.gif"),
        (b"RIFF....WEBP", "image", "webp", "a.webp"),
        (b"\xff\xd8\xff", "image", "jpeg", "a.jpg"),
        (b"%PDF-1.4\n", "application", "pdf", "a.pdf"),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "image",
            "svg+xml",
            "a.svg",
        ),
        (HOSTILE, "text", "html", "page.html"),
        (b"<x/>", "application", "xml", "a.xml"),
        (b"PK\x03\x04", "application", "zip", "a.zip"),
    ):
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    msg.add_attachment("plain text\n", filename="notes.txt", charset="iso-8859-1")
    return msg.as_bytes()


def test_body_downloads(setup: Setup) -> None:
    capture(setup.server, both_bodies("日本語 / report: Q1?"))
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        html = http.get(f"/api/v1/message/{message_id}/body.html")
        assert html.status_code == 200
        assert html.text.replace("\r\n", "\n") == "<p>HTML <b>words</b></p>\n"
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        assert "sandbox" in html.headers["content-security-policy"]
        assert html.headers["x-content-type-options"] == "nosniff"
        raw = next(v for k, v in html.headers.raw if k.lower() == b"content-disposition")
        assert raw.isascii(), raw
        # the subject, without what a file system refuses; an ASCII stand-in beside it
        assert filename_of(raw.decode()) == ("attachment", "日本語 _ report_ Q1_.html")
        assert 'filename="' in raw.decode()
        text = http.get(f"/api/v1/message/{message_id}/body.txt")
        assert text.status_code == 200 and text.text.strip() == "Plain words."
        assert text.headers["content-type"] == "text/plain; charset=utf-8"
        assert filename_of(text.headers["content-disposition"]) == (
            "attachment",
            "日本語 _ report_ Q1_.txt",
        )
        latest = http.get("/api/v1/message/latest/body.txt")
        assert latest.status_code == 200 and latest.text == text.text


def test_body_downloads_of_one_sided_messages(setup: Setup) -> None:
    only_html = (
        b"From: a@example.com\r\nTo: b@example.com\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Only <i>HTML</i> here</p>\r\n"
    )
    capture(setup.server, only_html)
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        text = http.get(f"/api/v1/message/{message_id}/body.txt")
        assert text.status_code == 200 and "Only HTML here" in text.text  # derived, like Text
        # no subject: named after the message
        assert filename_of(text.headers["content-disposition"]) == (
            "attachment",
            f"{message_id}.txt",
        )
    capture(setup.server, b"From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\n\r\nhi\r\n")
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        missing = http.get(f"/api/v1/message/{message_id}/body.html")
        assert missing.status_code == 404
        assert missing.json()["Error"] == "this message has no HTML part"
        assert http.get("/api/v1/message/NOSUCHID/body.txt").status_code == 404


def part_answers(http: httpx.Client, message_id: str, query: str = "") -> dict[str, httpx.Response]:
    message = http.get(f"/api/v1/message/{message_id}").json()
    return {
        a["FileName"]: http.get(f"/api/v1/message/{message_id}/part/{a['PartID']}{query}")
        for a in message["Attachments"]
    }


def test_only_safe_types_open_inline(setup: Setup) -> None:
    capture(setup.server, with_parts())
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        answers = part_answers(http, message_id)
        inline = {
            "real.png": "image/png",
            "fake.png": "image/png",
            "a.gif": "image/gif",
            "a.webp": "image/webp",
            "a.jpg": "image/jpeg",
            "a.pdf": "application/pdf",
            "notes.txt": "text/plain; charset=iso-8859-1",
        }
        for name, answer in answers.items():
            assert answer.status_code == 200, name
            assert answer.headers["x-content-type-options"] == "nosniff", name
            policy = answer.headers["content-security-policy"]
            assert "sandbox" in policy and "default-src 'none'" in policy, name
            kind, filename = filename_of(answer.headers["content-disposition"])
            assert filename == name
            if name in inline:
                assert kind == "inline", name
                assert answer.headers["content-type"] == inline[name], name
            else:
                assert kind == "attachment", name  # HTML, SVG, XML, zip: download only
        # the HTML claiming to be a PNG is served as what it claims, never as HTML
        assert answers["fake.png"].content == HOSTILE
        assert answers["fake.png"].headers["content-type"] == "image/png"
        # dl=1 downloads every type
        for name, answer in part_answers(http, message_id, "?dl=1").items():
            assert filename_of(answer.headers["content-disposition"])[0] == "attachment", name


def test_another_projects_key_gets_404(setup: Setup) -> None:
    capture(setup.server, both_bodies("mine"))
    with setup.client(setup.own) as http:
        message_id = latest_id(http)
        for suffix in ("body.html", "body.txt", "html-check"):
            assert http.get(f"/api/v1/message/{message_id}/{suffix}").status_code == 200
    with setup.client(setup.other) as http:
        for suffix in ("body.html", "body.txt", "html-check"):
            for ref in (message_id, "latest"):
                answer = http.get(f"/api/v1/message/{ref}/{suffix}")
                assert answer.status_code == 404, (ref, suffix)
                assert answer.json()["Error"]
