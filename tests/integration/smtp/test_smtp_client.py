"""The SMTP client edge against real servers on loopback: Postroom's own SMTP server (STARTTLS,
implicit TLS, AUTH, PIPELINING, CHUNKING) and Postfix's smtp-sink."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator

import pytest

from postroom.smtp.client import SmtpClientError, connect
from postroom.smtp.client_protocol import ClientPolicy, OutboundMessage, OutboundRecipient
from tests.services import require_executable

from .conftest import StartServer

DATA = b"From: a@example.com\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n"


def outbound(*recipients: str, data: bytes = DATA) -> OutboundMessage:
    return OutboundMessage("a@example.com", tuple(OutboundRecipient(r) for r in recipients), data)


async def test_starttls_auth_and_two_messages_on_one_connection(
    start_server: StartServer, client_tls: ssl.SSLContext
) -> None:
    running = await start_server(tls=True, auth_without_tls=False)
    policy = ClientPolicy("client.test", tls="required", username="bob", password="s3cret")
    client = await connect(
        "127.0.0.1", running.port, policy, ssl_context=client_tls, server_hostname="localhost"
    )
    try:
        assert client.facts.tls is not None and client.facts.tls.version.startswith("TLSv1.")
        assert client.facts.local_host == "127.0.0.1" and client.facts.peer_port == running.port
        assert "PIPELINING" in client.session.extensions
        first = await client.send(outbound("b@example.net", "c@example.net"))
        second = await client.send(outbound("d@example.net", data=b"Subject: 2\r\n\r\nx\r\n"))
    finally:
        await client.quit()
    assert first.delivered == ("b@example.net", "c@example.net")
    assert second.delivered == ("d@example.net",)
    assert first.data is not None and first.data.enhanced == "2.0.0"
    got = running.recorder.messages
    assert [m.envelope.recipients for m in got] == [
        ("b@example.net", "c@example.net"),
        ("d@example.net",),
    ]
    assert got[0].data == DATA  # dot-stuffed on the way, unstuffed by the server: byte-exact
    assert got[0].session.auth_user == "bob" and got[0].session.tls is not None


async def test_implicit_tls_and_binary_message_by_bdat(
    start_server: StartServer, client_tls: ssl.SSLContext
) -> None:
    running = await start_server(implicit_tls=True)
    client = await connect(
        "127.0.0.1",
        running.port,
        ClientPolicy("client.test", tls="none"),
        ssl_context=client_tls,
        server_hostname="localhost",
        implicit_tls=True,
    )
    binary = b"Subject: bin\r\n\r\n\x00\xff\r\n.\r\n"
    try:
        assert {"CHUNKING", "BINARYMIME"} <= client.session.extensions.keys()
        result = await client.send(
            OutboundMessage("a@x.test", (OutboundRecipient("b@y.test"),), binary, binary=True)
        )
    finally:
        await client.quit()
    assert result.delivered == ("b@y.test",)
    assert running.recorder.messages[0].data == binary


async def test_certificate_not_trusted_fails_before_any_message(start_server: StartServer) -> None:
    running = await start_server(tls=True)
    with pytest.raises(SmtpClientError) as caught:
        await connect(
            "127.0.0.1",
            running.port,
            ClientPolicy("client.test", tls="required"),
            ssl_context=ssl.create_default_context(),
            server_hostname="localhost",
        )
    assert caught.value.stage == "starttls" and caught.value.reply.enhanced == "4.7.5"
    assert running.recorder.messages == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_a_temporary_reply() -> None:
    with pytest.raises(SmtpClientError) as caught:
        await connect("127.0.0.1", _free_port(), ClientPolicy("c.test"), connect_timeout=5)
    assert caught.value.reply.code == 451 and caught.value.reply.enhanced == "4.4.1"


async def test_greeting_refusal_and_silent_server() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"554 5.7.1 You are not welcome\r\n")
        await writer.drain()
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    for handler, code, stage in ((refuse, 554, "greeting"), (silent, 451, "greeting")):
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        policy = ClientPolicy("c.test", greeting_timeout=0.5)
        try:
            with pytest.raises(SmtpClientError) as caught:
                await connect("127.0.0.1", port, policy)
        finally:
            server.close()
        assert (caught.value.reply.code, caught.value.stage) == (code, stage)


@contextlib.contextmanager
def smtp_sink(*options: str) -> Iterator[int]:
    binary = require_executable("smtp-sink", "/usr/sbin/smtp-sink")
    port = _free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [binary, *user, *options, f"127.0.0.1:{port}", "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None:
                pytest.fail(
                    f"smtp-sink exited: {process.stderr.read() if process.stderr else ''!r}"
                )
            time.sleep(0.05)
        yield port
    finally:
        process.kill()
        process.wait(5)


async def test_against_postfix_smtp_sink() -> None:
    with smtp_sink() as port:
        client = await connect("127.0.0.1", port, ClientPolicy("c.test", tls="none"))
        try:
            assert "PIPELINING" in client.session.extensions
            results = [await client.send(outbound(f"r{i}@example.net")) for i in range(3)]
        finally:
            await client.quit()
    assert all(r.delivered == (f"r{i}@example.net",) for i, r in enumerate(results))


async def test_smtp_sink_refusing_recipients_and_without_pipelining() -> None:
    with smtp_sink("-P", "-r", "RCPT") as port:
        client = await connect("127.0.0.1", port, ClientPolicy("c.test", tls="none"))
        try:
            assert "PIPELINING" not in client.session.extensions
            soft = await client.send(outbound("a@example.net", "b@example.net"))
            again = await client.send(outbound("c@example.net"))
        finally:
            await client.quit()
    assert soft.delivered == () and again.delivered == ()
    assert all(r.reply.temporary for r in soft.recipients + again.recipients)
    with smtp_sink("-f", "MAIL") as port:
        client = await connect("127.0.0.1", port, ClientPolicy("c.test", tls="none"))
        try:
            hard = await client.send(outbound("a@example.net"))
        finally:
            await client.quit()
    assert hard.mail is not None and hard.mail.permanent
    assert hard.recipients[0].reply.permanent
