"""The capture door as `postroom serve` configures it: TLS switches, bare line endings, retention."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import httpx
import pytest

from tests.harness import ServerThread, make_config


def _client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the capture door's development pair is self-signed
    return context


def test_starttls_is_not_offered_by_default(tmp_path: Path) -> None:
    server = ServerThread(make_config(tmp_path)).start()
    try:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.ehlo()
            assert not client.has_extn("starttls")
            assert client.has_extn("auth")
    finally:
        server.stop()


def test_smtp_tls_offers_starttls_with_a_generated_pair(tmp_path: Path) -> None:
    server = ServerThread(make_config(tmp_path, smtp_tls=True)).start()
    try:
        assert (tmp_path / "tls" / "cert.pem").exists() and (tmp_path / "tls" / "key.pem").exists()
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=_client_context())
            client.login("app-user", "any password")
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: over tls\r\n\r\nhi\r\n")
        with httpx.Client(base_url=server.base_url) as http:
            message = http.get("/api/v1/message/latest").json()
            assert message["Username"] == "app-user"
            raw = http.get(f"/api/v1/message/{message['ID']}/raw").text
            assert "with ESMTPSA" in raw and "using TLSv1." in raw
    finally:
        server.stop()


def test_smtp_require_tls_refuses_mail_in_clear(tmp_path: Path) -> None:
    server = ServerThread(make_config(tmp_path, smtp_require_tls=True)).start()
    try:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.ehlo()
            code, text = client.mail("a@example.com")
            assert code == 530 and text.startswith(b"5.7.0 Must issue a STARTTLS command first")
            client.starttls(context=_client_context())
            client.ehlo()
            assert client.mail("a@example.com")[0] == 250
    finally:
        server.stop()


@pytest.mark.parametrize("policy", ["accept", "reject"])
def test_bare_line_endings_switch(tmp_path: Path, policy: str) -> None:
    server = ServerThread(make_config(tmp_path, smtp_bare_line_endings=policy)).start()
    try:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.ehlo()
            client.mail("a@example.com")
            client.rcpt("b@example.com")
            # smtplib would fix the line endings in data(); send DATA by hand.
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.send(b"Subject: bare\nX: y\r\n\r\nline one\nline two\r\n.\r\n")
            code, text = client.getreply()
        with httpx.Client(base_url=server.base_url) as http:
            listing = http.get("/api/v1/messages").json()
        if policy == "reject":
            assert code == 550 and text.startswith(b"5.6.11")
            assert listing["total"] == 0
        else:
            assert code == 250
            summary = listing["messages"][0]
            assert "bare-line-endings" in summary["Tags"]
            assert summary["Warnings"] and "bare CR or LF" in summary["Warnings"][0]
    finally:
        server.stop()


def test_retention_keeps_the_newest_messages(tmp_path: Path) -> None:
    server = ServerThread(make_config(tmp_path, max_messages=3, prune_interval=3600.0)).start()
    try:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            for i in range(5):
                client.sendmail("a@example.com", ["b@example.com"], f"Subject: m{i}\r\n\r\nx\r\n")
        deleted = server.call(server.app.prune_once())
        assert len(deleted) == 2
        with httpx.Client(base_url=server.base_url) as http:
            subjects = [m["Subject"] for m in http.get("/api/v1/messages").json()["messages"]]
        assert subjects == ["m4", "m3", "m2"]
    finally:
        server.stop()


@pytest.mark.parametrize("writer_process", [True, False], ids=["writer-process", "writer-thread"])
def test_big_and_small_messages_are_parsed_with_tags(tmp_path: Path, writer_process: bool) -> None:
    """Small messages are parsed on the event loop, big ones (over 64 KiB) by the store's
    writer: both come out with the same summary and tags, and bare line endings are tagged."""
    server = ServerThread(make_config(tmp_path, writer_process=writer_process)).start()
    body = {"small": "short body\r\n", "big": "0123456789abcdef\r\n" * 5000}
    try:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            for name, text in body.items():
                raw = (
                    f"From: Ann <ann@example.com>\r\nTo: bob+{name}@example.org\r\n"
                    f"Subject: {name} message\r\nX-Tags: parsed\r\n\r\n{text}"
                ).encode()
                client.sendmail("ann@example.com", [f"bob+{name}@example.org"], raw)
            # Bare LF in a big message: normalised and tagged, next to the derived tags.
            client.sendmail(
                "ann@example.com",
                ["carol@example.org"],
                b"Subject: big bare\r\nX-Tags: parsed\r\n\r\n" + b"line\n" * 20000,
            )
        with httpx.Client(base_url=server.base_url) as http:
            listed = http.get("/api/v1/messages").json()["messages"]
            by_subject = {m["Subject"]: m for m in listed}
            assert sorted(by_subject) == ["big bare", "big message", "small message"]
            for name in body:
                message = by_subject[f"{name} message"]
                assert message["From"]["Address"] == "ann@example.com"
                assert message["Tags"] == sorted(["parsed", name])
                assert message["Snippet"].startswith(body[name].split()[0])
            assert by_subject["big bare"]["Tags"] == ["bare-line-endings", "parsed"]
    finally:
        server.stop()
