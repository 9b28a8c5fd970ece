"""aiosmtplib (pipelining, STARTTLS, concurrency) against a real listener."""

from __future__ import annotations

import asyncio
import ssl
from email.message import EmailMessage

import aiosmtplib

from .conftest import StartServer


def make_message(number: int, body: str = "hi\n") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = f"r{number}@example.org"
    message["Subject"] = f"message {number}"
    message.set_content(body)
    return message


async def test_send_with_pipelining(start_server: StartServer) -> None:
    running = await start_server()
    errors, response = await aiosmtplib.send(
        make_message(1),
        hostname="127.0.0.1",
        port=running.port,
        recipients=["x@example.org", "y@example.org"],
    )
    assert errors == {}
    assert response.startswith("2.0.0 Ok: queued as MSG1")
    [message] = running.recorder.messages
    assert message.envelope.recipients == ("x@example.org", "y@example.org")


async def test_starttls_and_login(start_server: StartServer, client_tls: ssl.SSLContext) -> None:
    running = await start_server(tls=True, auth_without_tls=False, auth_required=True)
    await aiosmtplib.send(
        make_message(2),
        hostname="localhost",
        port=running.port,
        start_tls=True,
        tls_context=client_tls,
        username="jöran",
        password="pässwörd",
    )
    [message] = running.recorder.messages
    assert message.session.auth_user == "jöran"
    assert message.session.tls is not None


async def test_refused_recipient_keeps_the_others(start_server: StartServer) -> None:
    running = await start_server(max_recipients=2)
    errors, _ = await aiosmtplib.send(
        make_message(3),
        hostname="127.0.0.1",
        port=running.port,
        recipients=["a@example.org", "b@example.org", "c@example.org"],
    )
    assert set(errors) == {"c@example.org"}
    assert errors["c@example.org"].code == 452
    [message] = running.recorder.messages
    assert message.envelope.recipients == ("a@example.org", "b@example.org")


async def test_large_message_arrives_intact(start_server: StartServer) -> None:
    running = await start_server()
    lines = [f"line {i:07d} " + "x" * 60 for i in range(20_000)]
    body = "\n".join(lines) + "\n.leading dot\n..two dots\n"
    await aiosmtplib.send(make_message(4, body), hostname="127.0.0.1", port=running.port)
    [message] = running.recorder.messages
    assert len(message.data) > 1_000_000
    assert b"\r\n.leading dot\r\n..two dots\r\n" in message.data
    assert b"line 0019999 " in message.data


async def test_many_concurrent_clients(start_server: StartServer) -> None:
    running = await start_server()

    async def one(number: int) -> None:
        await aiosmtplib.send(make_message(number), hostname="127.0.0.1", port=running.port)

    await asyncio.gather(*(one(n) for n in range(50)))
    subjects = sorted(
        m.data.split(b"Subject: ")[1].split(b"\r\n")[0] for m in running.recorder.messages
    )
    assert subjects == sorted(f"message {n}".encode() for n in range(50))
    summaries = await running.recorder.wait_sessions(50)
    assert all(s["messages"] == 1 and s["reason"] == "quit" for s in summaries)
