"""The asyncio edge: limits, timeouts, isolation between sessions, TLS upgrade, shutdown."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable
from pathlib import Path

import pytest

from postroom.core.errors import Refusal, RefusalKind
from postroom.core.types import IncomingMessage
from postroom.smtp.server import PAUSE_THRESHOLD

from .conftest import LineClient, Recorder, StartServer

MESSAGE = b"Subject: edge\r\n\r\nbody\r\n.\r\n"


async def send_one(client: LineClient, rcpt: str = "b@example.org") -> str:
    """A whole non-pipelined transaction; returns the final reply."""
    assert (await client.command("MAIL FROM:<a@example.com>")).startswith("250 ")
    assert (await client.command(f"RCPT TO:<{rcpt}>")).startswith("250 ")
    assert (await client.command("DATA")).startswith("354 ")
    await client.send(MESSAGE)
    return await client.reply()


async def greeted(port: int, *, local_host: str | None = None) -> LineClient:
    client = await LineClient.connect(port, local_host=local_host)
    assert (await client.reply()) == "220 mx.test ESMTP Postroom ready"
    return client


async def until(condition: object) -> None:
    """Yield to the loop until `condition()` holds (bounded by pytest's own timeout)."""
    assert callable(condition)
    while not condition():
        await asyncio.sleep(0.005)


async def test_total_connection_limit(start_server: StartServer) -> None:
    running = await start_server(max_connections=2)
    first = await greeted(running.port)
    second = await greeted(running.port)
    third = await LineClient.connect(running.port)
    assert await third.reply() == "421 4.7.0 mx.test Too many connections, try again later"
    assert await third.at_eof()
    assert ("capture", "too_many_connections") in running.recorder.rejects
    await first.command("QUIT")
    await first.close()
    await until(lambda: running.server.connections == 1)
    fourth = await greeted(running.port)
    assert (await fourth.command("EHLO c.test")).startswith("250-mx.test")
    for client in (second, third, fourth):
        await client.close()


async def test_per_ip_connection_limit(start_server: StartServer) -> None:
    running = await start_server(max_per_ip=1)
    first = await greeted(running.port)
    second = await LineClient.connect(running.port)
    assert (await second.reply()).startswith("421 4.7.0 ")
    # another client address is not affected
    other = await greeted(running.port, local_host="127.0.0.2")
    assert await send_one_with_ehlo(other) == "250 2.0.0 Ok: queued as MSG1"
    for client in (first, second, other):
        await client.close()


async def send_one_with_ehlo(client: LineClient) -> str:
    assert (await client.command("EHLO c.test")).startswith("250")
    return await send_one(client)


async def test_command_timeout(start_server: StartServer) -> None:
    running = await start_server(command_timeout=0.2)
    client = await greeted(running.port)
    assert await client.reply() == "421 4.4.2 mx.test Timeout, closing connection"
    assert await client.at_eof()
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["reason"] == "timeout"


async def test_data_timeout(start_server: StartServer) -> None:
    running = await start_server(command_timeout=60, data_timeout=0.2)
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    await client.command("MAIL FROM:<a@example.com>")
    await client.command("RCPT TO:<b@example.org>")
    assert (await client.command("DATA")).startswith("354")
    await client.send(b"Subject: never finished\r\n")
    assert await client.reply() == "421 4.4.2 mx.test Timeout, closing connection"
    assert running.recorder.messages == []


async def test_too_many_errors(start_server: StartServer) -> None:
    running = await start_server(max_errors=3)
    client = await greeted(running.port)
    assert (await client.command("FOO")).startswith("500 5.5.2")
    assert (await client.command("BAR")).startswith("500 5.5.2")
    assert (await client.command("BAZ")).startswith("500 5.5.2")
    assert await client.reply() == "421 4.7.0 mx.test Too many errors, closing connection"
    assert await client.at_eof()
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["reason"] == "too_many_errors"
    assert summary["errors"] == 3
    assert running.recorder.rejects.count(("capture", "unknown_command")) == 3


async def test_bad_sessions_do_not_harm_a_good_one(start_server: StartServer) -> None:
    running = await start_server(command_timeout=0.5, max_errors=5)

    async def garbage() -> None:
        client = await greeted(running.port)
        await client.send(b"\x00\xff\r\n" * 3 + b"X" * 100_000 + b"\r\nGET / HTTP/1.1\r\n")
        while await client.reply():
            pass

    async def smuggler() -> None:
        client = await greeted(running.port)
        await client.command("EHLO evil.test")
        await client.command("MAIL FROM:<a@example.com>")
        await client.command("RCPT TO:<b@example.org>")
        await client.command("DATA")
        await client.send(b"x\n.\nMAIL FROM:<admin@victim.example>\r\n.\r\n")
        assert (await client.reply()).startswith("550 5.6.11")
        await client.close()

    async def idle() -> None:
        client = await greeted(running.port)
        assert (await client.reply()).startswith("421 4.4.2")

    async def half_message() -> None:
        client = await greeted(running.port)
        await client.command("EHLO c.test")
        await client.command("MAIL FROM:<a@example.com>")
        await client.command("RCPT TO:<b@example.org>")
        await client.command("DATA")
        await client.send(b"Subject: cut\r\n\r\nhalf")
        client.writer.transport.abort()

    async def good() -> str:
        client = await greeted(running.port)
        result = await send_one_with_ehlo(client)
        await client.command("QUIT")
        return result

    results = await asyncio.gather(garbage(), smuggler(), idle(), half_message(), good())
    assert results[-1] == "250 2.0.0 Ok: queued as MSG1"
    [message] = running.recorder.messages
    assert message.data == b"Subject: edge\r\n\r\nbody\r\n"


async def test_pipeline_exception_is_451_and_session_goes_on(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    failures = [RuntimeError("database is down")]

    async def hook(message: IncomingMessage) -> None:
        if failures:
            raise failures.pop()

    running = await start_server(recorder=Recorder(deliver_hook=hook))
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    assert await send_one(client) == "451 4.3.0 Temporary failure, please try again later"
    assert await send_one(client) == "250 2.0.0 Ok: queued as MSG1"
    assert "database is down" in caplog.text
    assert running.recorder.rejects == [("capture", "message_deferred")]


async def test_bdat_over_a_socket(start_server: StartServer) -> None:
    running = await start_server()
    client = await greeted(running.port)
    await client.send(
        b"EHLO c.test\r\nMAIL FROM:<a@example.com> BODY=BINARYMIME\r\nRCPT TO:<b@example.org>\r\n"
        b"BDAT 8\r\n\x00\x01\x02\r\n.\r\nBDAT 3 LAST\r\nend"
    )
    replies = [await client.reply() for _ in range(5)]
    assert [r[:9] for r in replies[1:]] == ["250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0"]
    assert replies[-1] == "250 2.0.0 Ok: queued as MSG1"
    assert running.recorder.messages[0].data == b"\x00\x01\x02\r\n.\r\nend"


async def test_slow_pipeline_with_heavy_pipelining(start_server: StartServer) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def hook(message: IncomingMessage) -> None:
        entered.set()
        await gate.wait()

    running = await start_server(recorder=Recorder(deliver_hook=hook))
    client = await greeted(running.port)
    transaction = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
    # The client should wait for 354, but floods everything at once; the session holds the
    # input while the first delivery is outstanding, and the edge stops reading once that
    # backlog passes its threshold.
    count = 400
    payload = b"EHLO c.test\r\n" + (transaction + (b"x" * 98 + b"\r\n") * 20 + b".\r\n") * count
    assert len(payload) > 2 * PAUSE_THRESHOLD
    sender = asyncio.ensure_future(client.send(payload))
    await entered.wait()
    [connection] = running.server._connections
    await until(lambda: connection._paused)
    gate.set()
    await sender
    replies = [await client.reply() for _ in range(1 + 4 * count)]
    queued = [r for r in replies if r.startswith("250 2.0.0 Ok: queued")]
    assert len(queued) == count
    assert len(running.recorder.messages) == count
    assert not connection._paused


async def test_plaintext_after_starttls_is_not_executed(
    start_server: StartServer, client_tls: ssl.SSLContext
) -> None:
    running = await start_server(tls=True)
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    await client.send(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
    assert await client.reply() == "220 2.0.0 Ready to start TLS"
    await client.writer.start_tls(client_tls, server_hostname="localhost")
    assert (await client.command("EHLO c.test")).startswith("250-mx.test")
    # the injected MAIL never ran: this MAIL is the first of the session
    assert (await client.command("MAIL FROM:<a@example.com>")).startswith("250 2.1.0")
    assert (await client.command("RCPT TO:<b@example.org>")).startswith("250 2.1.5")


async def test_failed_handshake_ends_the_session(start_server: StartServer) -> None:
    running = await start_server(tls=True)
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    assert (await client.command("STARTTLS")).startswith("220")
    await client.send(b"this is not a TLS ClientHello\r\n")
    assert await client.at_eof()
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["reason"] == "tls_failed"
    assert running.server.connections == 0


async def test_session_summary_and_rejects(start_server: StartServer) -> None:
    running = await start_server(door="submission", max_recipients=1)
    client = await greeted(running.port)
    await client.command("EHLO summary.test")
    assert (await client.command("AUTH PLAIN AGJvYgBzM2NyZXQ=")).startswith("235")
    await client.command("MAIL FROM:<a@example.com>")
    await client.command("RCPT TO:<b@example.org>")
    assert (await client.command("RCPT TO:<c@example.org>")).startswith("452 4.5.3")
    await client.command("DATA")
    await client.send(MESSAGE)
    await client.reply()
    await client.command("QUIT")
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["door"] == "submission"
    assert summary["helo"] == "summary.test"
    assert summary["auth_user"] == "bob"
    assert summary["tls"] is None
    assert summary["messages"] == 1
    assert summary["rejects"] == 1
    assert summary["reason"] == "quit"
    assert summary["peer"].startswith("127.0.0.1:")
    assert summary["duration"] >= 0
    assert running.recorder.rejects == [("submission", "too_many_recipients")]


async def test_stop_says_421_to_open_sessions(start_server: StartServer) -> None:
    running = await start_server()
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    await running.server.stop()
    assert await client.reply() == "421 4.3.2 mx.test Service shutting down"
    assert await client.at_eof()
    with pytest.raises(OSError):
        await LineClient.connect(running.port)


async def test_stop_lets_an_outstanding_delivery_finish(start_server: StartServer) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def hook(message: IncomingMessage) -> None:
        entered.set()
        await gate.wait()

    running = await start_server(recorder=Recorder(deliver_hook=hook))
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    sending = asyncio.ensure_future(send_one(client))
    await entered.wait()
    stopping = asyncio.ensure_future(running.server.stop())
    await asyncio.sleep(0)
    gate.set()
    assert await sending == "250 2.0.0 Ok: queued as MSG1"
    assert await client.reply() == "421 4.3.2 mx.test Service shutting down"
    await stopping


def test_edge_under_uvloop(tls_files: tuple[Path, Path]) -> None:
    uvloop = pytest.importorskip("uvloop")
    from postroom.core.clock import SystemClock
    from postroom.smtp.protocol import SessionPolicy
    from postroom.smtp.server import Listener, SmtpServer
    from postroom.smtp.tls import server_context

    async def scenario() -> list[IncomingMessage]:
        recorder = Recorder()
        server = SmtpServer(
            Listener(
                "capture",
                "127.0.0.1",
                0,
                SessionPolicy("mx.test", starttls_available=True),
                ssl_context=server_context(*tls_files),
            ),
            recorder,
            clock=SystemClock(),
        )
        await server.start()
        client = await greeted(server.port)
        await client.command("EHLO c.test")
        assert (await client.command("STARTTLS")).startswith("220")
        await client.writer.start_tls(
            ssl.create_default_context(cafile=str(tls_files[0])), server_hostname="localhost"
        )
        await client.command("EHLO c.test")
        assert await send_one(client) == "250 2.0.0 Ok: queued as MSG1"
        await client.command("QUIT")
        await server.stop()
        return recorder.messages

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        messages = runner.run(scenario())
    assert len(messages) == 1
    assert messages[0].session.tls is not None


async def test_stop_cuts_a_connection_stuck_in_the_tls_handshake(start_server: StartServer) -> None:
    running = await start_server(tls=True)
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    assert (await client.command("STARTTLS")).startswith("220")
    # no ClientHello: the server waits in the handshake until stop() cuts it
    await until(lambda: running.server.connections == 1)
    await running.server.stop()
    assert await client.at_eof()
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["reason"] == "shutdown"


async def test_a_session_bug_closes_only_that_session(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from postroom.smtp import protocol
    from postroom.smtp.protocol import SmtpSession

    original = SmtpSession._vrfy

    def broken_vrfy(self: SmtpSession, arg: str) -> None:
        if arg == "crash":
            raise ZeroDivisionError("bug")
        original(self, arg)

    monkeypatch.setitem(protocol._COMMANDS, "VRFY", broken_vrfy)
    running = await start_server()
    good = await greeted(running.port)
    await good.command("EHLO c.test")
    bad = await greeted(running.port)
    assert await bad.command("VRFY crash") == "421 4.3.0 mx.test Internal error, closing connection"
    assert await bad.at_eof()
    assert "internal error" in caplog.text
    assert (await good.command("VRFY someone")).startswith("252 2.5.0")
    assert await send_one(good) == "250 2.0.0 Ok: queued as MSG1"


async def test_an_awaited_sender_check_holds_pipelined_input_in_order(
    start_server: StartServer,
) -> None:
    gate = asyncio.Event()

    async def judge(address: str) -> Refusal | None:
        await gate.wait()
        return Refusal(RefusalKind.RELAY_DENIED, "Not you") if address.startswith("bad@") else None

    running = await start_server(recorder=Recorder(sender_check=judge))
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    await client.send(
        b"MAIL FROM:<bad@example.com>\r\nRCPT TO:<b@example.org>\r\n"
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + MESSAGE
    )
    await until(lambda: len(running.recorder.checked) == 1)
    await asyncio.sleep(0.05)
    assert running.recorder.checked[0][:2] == ("sender", "bad@example.com")
    assert running.recorder.checked[0][2].peer_host == "127.0.0.1"
    gate.set()
    replies = [await client.reply() for _ in range(6)]
    assert [r[:9] for r in replies] == [
        "550 5.7.1",
        "503 5.5.1",
        "250 2.1.0",
        "250 2.1.5",
        "354 End d",
        "250 2.0.0",
    ]
    assert [c[1] for c in running.recorder.checked] == ["bad@example.com", "a@example.com"]
    [message] = running.recorder.messages
    assert message.envelope.mail_from == "a@example.com"
    assert running.recorder.rejects == [("capture", "sender_rejected"), ("capture", "bad_sequence")]


async def test_recipient_checks_answered_at_once_with_heavy_pipelining(
    start_server: StartServer,
) -> None:
    def judge(address: str) -> Refusal | None:
        return (
            Refusal(RefusalKind.UNKNOWN_RECIPIENT, "No such user")
            if address.startswith("x")
            else None
        )

    running = await start_server(recorder=Recorder(recipient_check=judge), max_recipients=1000)
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    rcpts = [f"{'x' if i % 3 == 0 else 'r'}{i}@example.org" for i in range(900)]
    await client.send(
        b"MAIL FROM:<a@example.com>\r\n"
        + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts)
        + b"DATA\r\n"
        + MESSAGE
    )
    replies = [await client.reply() for _ in range(len(rcpts) + 3)]
    expected = ["550 5.1.1" if r.startswith("x") else "250 2.1.5" for r in rcpts]
    assert [r[:9] for r in replies[1:-2]] == expected
    assert replies[-1] == "250 2.0.0 Ok: queued as MSG1"
    [message] = running.recorder.messages
    assert message.envelope.recipients == tuple(r for r in rcpts if not r.startswith("x"))


async def test_a_failing_check_is_a_temporary_failure(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def broken_later(address: str) -> Refusal | None:
        raise LookupError("domain table unavailable")

    def judge(address: str) -> Refusal | Awaitable[Refusal | None] | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise LookupError("domain table unavailable")
        if calls == 2:
            return broken_later(address)
        if calls == 3:
            raise Refusal(RefusalKind.UNKNOWN_RECIPIENT, "No such user here")
        return None

    running = await start_server(recorder=Recorder(recipient_check=judge))
    client = await greeted(running.port)
    await client.command("EHLO c.test")
    await client.command("MAIL FROM:<a@example.com>")
    temporary = "451 4.3.0 Temporary failure, please try again later"
    assert await client.command("RCPT TO:<b@example.org>") == temporary
    assert await client.command("RCPT TO:<b@example.org>") == temporary
    assert await client.command("RCPT TO:<b@example.org>") == "550 5.1.1 No such user here"
    assert (await client.command("RCPT TO:<b@example.org>")).startswith("250 2.1.5")
    assert "domain table unavailable" in caplog.text
