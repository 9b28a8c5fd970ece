"""The standard library client against a real listener."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

import pytest

from postroom.core.errors import Refusal, RefusalKind
from postroom.core.types import IncomingMessage

from .conftest import StartServer


def simple_message(subject: str = "hello", body: str = "Hello there.\n") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Sender <sender@example.com>"
    message["To"] = "Recipient <rcpt@example.org>"
    message["Subject"] = subject
    message.set_content(body)
    return message


async def test_send_message_is_delivered_with_session_facts(start_server: StartServer) -> None:
    running = await start_server()

    def client() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP(
            "127.0.0.1", running.port, local_hostname="client.test", timeout=10
        ) as smtp:
            return smtp.send_message(
                simple_message(), to_addrs=["rcpt@example.org", "cc@example.org"]
            )

    assert await asyncio.to_thread(client) == {}
    [message] = running.recorder.messages
    assert message.envelope.mail_from == "sender@example.com"
    assert message.envelope.recipients == ("rcpt@example.org", "cc@example.org")
    assert b"Subject: hello\r\n" in message.data
    assert message.data.endswith(b"Hello there.\r\n")
    assert message.bare_line_endings is False
    session = message.session
    assert session.door == "capture"
    assert session.peer_host == "127.0.0.1"
    assert session.peer_port > 0
    assert session.server_name == "mx.test"
    assert session.helo == "client.test"
    assert session.esmtp is True
    assert session.tls is None
    assert session.auth_user is None
    assert len(session.session_id) == 26


async def test_eight_bit_and_smtputf8(start_server: StartServer) -> None:
    running = await start_server()
    message = EmailMessage()
    message["From"] = "Jöran <jöran@exämple.com>"
    message["To"] = "Zoë <zoë@example.org>"
    message["Subject"] = "Grüße"
    message.set_content("Ünïcödé body — 日本語\n", cte="8bit")

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as smtp:
            smtp.send_message(message)

    await asyncio.to_thread(client)
    [stored] = running.recorder.messages
    assert stored.envelope.mail_from == "jöran@exämple.com"
    assert stored.envelope.recipients == ("zoë@example.org",)
    assert stored.envelope.mail_params["SMTPUTF8"] == ""
    assert stored.envelope.mail_params["BODY"] == "8BITMIME"
    assert "日本語".encode() in stored.data


async def test_eight_bit_body_without_smtputf8(start_server: StartServer) -> None:
    running = await start_server()
    raw = b"From: a@example.com\r\nSubject: x\r\n\r\nCaf\xc3\xa9 cr\xc3\xa8me\r\n"

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.sendmail("a@example.com", ["b@example.org"], raw, mail_options=["BODY=8BITMIME"])

    await asyncio.to_thread(client)
    [stored] = running.recorder.messages
    assert stored.data == raw
    assert stored.envelope.mail_params == {"SIZE": str(len(raw)), "BODY": "8BITMIME"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_starttls_then_auth(
    start_server: StartServer, client_tls: ssl.SSLContext, mechanism: str
) -> None:
    running = await start_server(tls=True, auth_required=True, auth_without_tls=False)

    def client() -> tuple[list[str], list[str]]:
        with smtplib.SMTP("localhost", running.port, timeout=10) as smtp:
            smtp.ehlo()
            before = sorted(smtp.esmtp_features)
            smtp.starttls(context=client_tls)
            smtp.ehlo()
            after = sorted(smtp.esmtp_features)
            smtp.user, smtp.password = "bob", "s3cret"
            code, _ = smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
            assert code == 235
            smtp.send_message(simple_message())
            return before, after

    before, after = await asyncio.to_thread(client)
    assert "starttls" in before and "auth" not in before
    assert "starttls" not in after and "auth" in after
    [message] = running.recorder.messages
    assert message.session.auth_user == "bob"
    assert message.session.tls is not None
    assert message.session.tls.version in ("TLSv1.2", "TLSv1.3")
    assert [(m, u) for m, u, _ in running.recorder.auth_calls] == [(mechanism, "bob")]


async def test_wrong_password_is_535(start_server: StartServer) -> None:
    running = await start_server()

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as smtp:
            smtp.login("bob", "wrong")

    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        await asyncio.to_thread(client)
    assert caught.value.smtp_code == 535
    error = caught.value.smtp_error
    assert isinstance(error, bytes) and error.startswith(b"5.7.8")


async def test_mail_without_tls_when_required(start_server: StartServer) -> None:
    running = await start_server(tls=True, tls_required=True)

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as smtp:
            smtp.sendmail("a@example.com", ["b@example.org"], b"x\r\n")

    with pytest.raises(smtplib.SMTPSenderRefused) as caught:
        await asyncio.to_thread(client)
    assert caught.value.smtp_code == 530
    assert running.recorder.messages == []


async def test_pipeline_refusal_and_failure_are_reported(start_server: StartServer) -> None:
    running = await start_server()
    outcomes: list[BaseException | None] = [
        Refusal(RefusalKind.RELAY_DENIED, "Sender not verified"),
        RuntimeError("db down"),
        None,
    ]

    async def hook(message: IncomingMessage) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    running.recorder.deliver_hook = hook

    def client() -> list[tuple[int, bytes | str]]:
        results: list[tuple[int, bytes | str]] = []
        with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as smtp:
            for _ in range(3):
                try:
                    smtp.sendmail("a@example.com", ["b@example.org"], b"Subject: x\r\n\r\ny\r\n")
                    results.append((250, b""))
                except smtplib.SMTPDataError as exc:
                    results.append((exc.smtp_code, exc.smtp_error))
        return results

    results = await asyncio.to_thread(client)
    assert results == [
        (550, b"5.7.1 Sender not verified"),
        (451, b"4.3.0 Temporary failure, please try again later"),
        (250, b""),
    ]
    assert len(running.recorder.messages) == 1


async def test_implicit_tls(start_server: StartServer, client_tls: ssl.SSLContext) -> None:
    running = await start_server(implicit_tls=True)

    def client() -> None:
        with smtplib.SMTP_SSL("localhost", running.port, context=client_tls, timeout=10) as smtp:
            smtp.login("bob", "s3cret")
            smtp.send_message(simple_message())

    await asyncio.to_thread(client)
    [message] = running.recorder.messages
    assert message.session.tls is not None
    assert message.session.auth_user == "bob"


async def test_several_messages_in_one_session(start_server: StartServer) -> None:
    running = await start_server()

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as smtp:
            for number in range(5):
                smtp.send_message(simple_message(subject=f"n{number}"))

    await asyncio.to_thread(client)
    assert [
        m.data.count(f"Subject: n{i}".encode()) for i, m in enumerate(running.recorder.messages)
    ] == [1] * 5
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["messages"] == 5
    assert summary["reason"] == "quit"
