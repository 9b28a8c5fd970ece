"""swaks (Debian's SMTP test tool) against a real listener."""

from __future__ import annotations

import asyncio

from tests.services import require_executable

from .conftest import StartServer


async def swaks(*args: str) -> tuple[int, str]:
    binary = require_executable("swaks", "/usr/bin/swaks")
    process = await asyncio.create_subprocess_exec(
        binary,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", "replace")


async def test_swaks_plain(start_server: StartServer) -> None:
    running = await start_server()
    code, output = await swaks(
        "--server",
        f"127.0.0.1:{running.port}",
        "--from",
        "sender@example.com",
        "--to",
        "rcpt@example.org",
        "--helo",
        "swaks.test",
        "--header",
        "Subject: from swaks",
    )
    assert code == 0, output
    [message] = running.recorder.messages
    assert message.session.helo == "swaks.test"
    assert b"Subject: from swaks" in message.data


async def test_swaks_pipelining(start_server: StartServer) -> None:
    running = await start_server()
    code, output = await swaks(
        "--server",
        f"127.0.0.1:{running.port}",
        "--from",
        "sender@example.com",
        "--to",
        "a@example.org,b@example.org",
        "--pipeline",
    )
    assert code == 0, output
    [message] = running.recorder.messages
    assert message.envelope.recipients == ("a@example.org", "b@example.org")


async def test_swaks_starttls_and_auth(start_server: StartServer) -> None:
    running = await start_server(tls=True, auth_without_tls=False, auth_required=True)
    for mechanism in ("PLAIN", "LOGIN"):
        code, output = await swaks(
            "--server",
            f"127.0.0.1:{running.port}",
            "--from",
            "sender@example.com",
            "--to",
            "rcpt@example.org",
            "--tls",
            "--auth",
            mechanism,
            "--auth-user",
            "bob",
            "--auth-password",
            "s3cret",
        )
        assert code == 0, output
    assert [m.session.auth_user for m in running.recorder.messages] == ["bob", "bob"]
    assert all(m.session.tls is not None for m in running.recorder.messages)


async def test_swaks_bad_password(start_server: StartServer) -> None:
    running = await start_server(tls=True, auth_without_tls=False)
    code, output = await swaks(
        "--server",
        f"127.0.0.1:{running.port}",
        "--from",
        "sender@example.com",
        "--to",
        "rcpt@example.org",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "bob",
        "--auth-password",
        "nope",
    )
    assert code != 0
    assert "535 5.7.8" in output
    assert running.recorder.messages == []
