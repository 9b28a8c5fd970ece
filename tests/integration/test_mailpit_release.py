"""Mailpit's release (`POST /api/v1/message/{ID}/release`) on the real server: a message
captured over SMTP goes byte for byte, from its envelope sender, to the given recipients
through the configured relay (a receiving SMTP server on loopback); bad input and a missing
relay are 4xx JSON naming the field; the relay's refusals come back; a read key may not
release."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.core.errors import Refusal, RefusalKind
from tests.harness import ServerThread, make_config
from tests.integration.submission.test_delivery_e2e import Receiver

MESSAGE = (
    b"From: Alice <alice@example.com>\r\nTo: Bob <bob@example.com>\r\nSubject: Release me\r\n"
    b"\r\n.a line starting with a dot\r\nHello.\r\n"
)


class RefusingReceiver(Receiver):
    checks_recipient = True

    def check_recipient(self, *args: Any) -> Refusal | None:
        address = args[2]
        if address.startswith("nobody@"):
            return Refusal(RefusalKind.UNKNOWN_RECIPIENT, "No such user here")
        return None


@pytest.fixture
def relay() -> Iterator[RefusingReceiver]:
    started = RefusingReceiver()
    try:
        yield started
    finally:
        started.stop()


def start(tmp_path: Path, **overrides: Any) -> ServerThread:
    return ServerThread(make_config(tmp_path, **overrides)).start()


def capture(server: ServerThread) -> str:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.sendmail("sender@example.com", ["bob@example.com"], MESSAGE)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        return str(http.get("/api/v1/messages").json()["messages"][0]["ID"])


def test_release_through_the_relay(tmp_path: Path, relay: RefusingReceiver) -> None:
    server = start(
        tmp_path / "data",
        relay=f"smtp+plain://127.0.0.1:{relay.port}",
        release_allowed_recipients=r"@example\.(net|org)$",
    )
    try:
        message_id = capture(server)
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            stored = http.get(f"/api/v1/message/{message_id}/raw").content
            path = f"/api/v1/message/{message_id}/release"
            done = http.post(path, json={"To": ["ann@example.net", "<cy@example.org>"]})
            assert done.status_code == 200 and done.text == "ok"
            (got,) = relay.messages
            assert got.envelope.mail_from == "sender@example.com"
            assert got.envelope.recipients == ("ann@example.net", "cy@example.org")
            assert got.data == stored  # byte for byte as captured
            latest = http.post("/api/v1/message/latest/release", json={"To": ["d@example.net"]})
            assert latest.status_code == 200 and len(relay.messages) == 2
            refused = http.post(path, json={"To": ["nobody@example.net"]})
            assert refused.status_code == 400 and refused.json()["Field"] == "To"
            assert "550 5.1.1" in refused.json()["Refused"]["nobody@example.net"]
            for body, field in (
                ({}, "To"),
                ({"To": []}, "To"),
                ({"To": "ann@example.net"}, "To"),
                ({"To": ["not an address"]}, "To"),
                ({"To": ["ann@example.com"]}, "To"),  # not allowed by the expression
                ({"To": ["ann@example.net"], "From": "x@y.z"}, "From"),
            ):
                response = http.post(path, json=body)
                assert response.status_code == 400, body
                assert response.json()["Field"] == field, body
            missing = http.post(
                "/api/v1/message/01NOSUCHMESSAGE00000000000/release",
                json={"To": ["ann@example.net"]},
            )
            assert missing.status_code == 404 and missing.json()["Error"]
            text = http.post(
                path, content=b'{"To": ["ann@example.net"]}', headers={"Content-Type": "text/plain"}
            )
            assert text.status_code == 415
        service = server.app.platform_service
        assert service is not None
        reader = service.create_api_key("default", "reader", ["read"])
        sender = service.create_api_key("default", "sender", ["send"])
        body = {"To": ["e@example.net"]}
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            bearer = {"Authorization": f"Bearer {reader.token}"}
            assert http.post(path, json=body, headers=bearer).status_code == 403
            bearer = {"Authorization": f"Bearer {sender.token}"}
            assert http.post(path, json=body, headers=bearer).status_code == 200
        assert len(relay.messages) == 3
    finally:
        server.stop()


def test_release_without_a_relay_is_a_400(tmp_path: Path) -> None:
    server = start(tmp_path / "data")
    try:
        message_id = capture(server)
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            response = http.post(
                f"/api/v1/message/{message_id}/release", json={"To": ["ann@example.net"]}
            )
        assert response.status_code == 400 and response.json()["Field"] == "relay"
    finally:
        server.stop()


def test_an_unreachable_relay_is_a_502(tmp_path: Path) -> None:
    server = start(tmp_path / "data", relay="smtp+plain://127.0.0.9:9")
    try:
        message_id = capture(server)
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            response = http.post(
                f"/api/v1/message/{message_id}/release", json={"To": ["ann@example.net"]}
            )
        assert response.status_code == 502 and "4.4.1" in response.json()["Error"]
    finally:
        server.stop()
