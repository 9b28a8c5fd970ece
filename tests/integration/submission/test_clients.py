"""Real clients on the submission doors: smtplib, aiosmtplib and swaks, STARTTLS and implicit
TLS, AUTH PLAIN and LOGIN. What they submit for the live project is stored queued, fixed up
and DKIM-signed (verified by dkimpy through the test DNS server), with its queue entries."""

from __future__ import annotations

import asyncio
import smtplib

import aiosmtplib
import pytest

from tests.dnszone import dkimpy_verify
from tests.services import require_executable

from .conftest import PASSWORD, SANDBOX_PASSWORD, Env

MESSAGE = (
    b"From: App <app@example.com>\r\n"
    b"To: Ann <ann@example.net>\r\n"
    b"Bcc: hidden@example.org\r\n"
    b"Subject: Welcome\r\n"
    b"\r\n"
    b"Hello Ann.\r\n"
)


@pytest.mark.parametrize(
    "env", [True, False], indirect=True, ids=["writer-process", "writer-thread"]
)
def test_smtplib_starttls_login(env: Env) -> None:
    """A live message, signed, with one queue entry per recipient, committed by the writer
    child process and by the in-process writer alike."""
    with env.smtp() as client:
        refused = client.sendmail(
            "app@example.com",
            ["ann@example.net", "hidden@example.org", "ann@example.net"],
            MESSAGE,
        )
    assert refused == {}
    [record] = env.messages()
    assert record.status == "queued"
    assert record.username == "app"
    raw = env.raw(record)
    head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert b"Bcc:" not in head and b"hidden@example.org" not in head.split(b"Received:", 1)[1]
    assert f"Message-ID: <{record.id.lower()}@example.com>".encode() in head
    assert b"\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n" in head
    assert b"with ESMTPSA id" in head and b"(authenticated as app)" in head
    assert dkimpy_verify(raw, env.zone)
    assert not dkimpy_verify(raw.replace(b"Hello Ann", b"Hello Bob"), env.zone)
    entries = env.queue(record.id)
    assert [(e.recipient, e.status, e.project, e.attempts) for e in entries] == [
        ("ann@example.net", "queued", "acme", 0),
        ("hidden@example.org", "queued", "acme", 0),
    ]
    assert all(e.next_attempt == record.created for e in entries)
    assert env.messages("default") == []  # not in the capture inbox


def test_smtplib_login_mechanism_on_implicit_tls(env: Env) -> None:
    with smtplib.SMTP_SSL(
        "127.0.0.1", env.submissions_port, context=env.client_context(), timeout=30
    ) as client:
        client.ehlo()
        client.user, client.password = "app", PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235
        client.sendmail("app@example.com", ["ann@example.net"], MESSAGE)
    [record] = env.messages()
    assert record.status == "queued"


def test_capture_project_stores_captured_without_queue_or_signature(env: Env) -> None:
    with env.smtp("sandbox", SANDBOX_PASSWORD) as client:
        client.sendmail(
            "dev@sandbox.example",
            ["ann@example.net"],
            MESSAGE.replace(b"app@example.com", b"dev@sandbox.example"),
        )
    [record] = env.messages("sandbox")
    assert record.status == "captured"
    assert b"DKIM-Signature" not in env.raw(record)
    assert env.queue() == []
    assert env.messages("acme") == []


async def test_aiosmtplib_starttls_and_implicit_tls(env: Env) -> None:
    async def send(port: int, **tls: object) -> None:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=port, tls_context=env.client_context(), timeout=30, **tls
        )
        await client.connect()
        await client.login("app", PASSWORD)
        for n in range(3):
            await client.sendmail("app@example.com", [f"r{n}@example.net"], MESSAGE)
        await client.quit()

    await asyncio.gather(
        send(env.submission_port, start_tls=True), send(env.submissions_port, use_tls=True)
    )
    records = env.messages()
    assert len(records) == 6
    assert all(r.status == "queued" for r in records)
    for record in records:
        raw = env.raw(record)
        assert await asyncio.to_thread(dkimpy_verify, raw, env.zone)
    assert len(env.queue()) == 6


async def swaks(*args: str) -> tuple[int, str]:
    binary = require_executable("swaks", "/usr/bin/swaks")
    process = await asyncio.create_subprocess_exec(
        binary, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", "replace")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_swaks_starttls_auth(env: Env, mechanism: str) -> None:
    code, output = await swaks(
        "--server", f"127.0.0.1:{env.submission_port}",
        "--from", "app@example.com",
        "--to", "ann@example.net",
        "--header", "From: App <app@example.com>",
        "--header", "Subject: from swaks",
        "--tls", "--tls-verify", "--tls-ca-path", str(env.ca_file),
        "--auth", mechanism, "--auth-user", "app", "--auth-password", PASSWORD,
    )  # fmt: skip
    assert code == 0, output
    [record] = env.messages()
    assert record.summary.subject == "from swaks"
    raw = env.raw(record)
    assert await asyncio.to_thread(dkimpy_verify, raw, env.zone)


async def test_swaks_implicit_tls(env: Env) -> None:
    code, output = await swaks(
        "--server", f"127.0.0.1:{env.submissions_port}",
        "--from", "app@example.com",
        "--to", "ann@example.net",
        "--header", "From: app@example.com",
        "--tlsc", "--tls-verify", "--tls-ca-path", str(env.ca_file),
        "--auth", "PLAIN", "--auth-user", "app", "--auth-password", PASSWORD,
    )  # fmt: skip
    assert code == 0, output
    assert len(env.messages()) == 1


async def test_swaks_sees_the_refusals(env: Env) -> None:
    code, output = await swaks(
        "--server", f"127.0.0.1:{env.submission_port}",
        "--from", "app@example.com", "--to", "ann@example.net",
        "--tls", "--auth", "PLAIN", "--auth-user", "app", "--auth-password", "wrong",
    )  # fmt: skip
    assert code != 0
    assert "535 5.7.8 Authentication credentials invalid" in output
    code, output = await swaks(
        "--server", f"127.0.0.1:{env.submission_port}",
        "--from", "app@example.com", "--to", "ann@example.net",
        "--header", "From: intruder@other.example",
        "--tls", "--auth", "PLAIN", "--auth-user", "app", "--auth-password", PASSWORD,
    )  # fmt: skip
    assert code != 0
    assert (
        "554 5.7.1 Message rejected: Email address is not verified. The following identities "
        "failed the check: intruder@other.example"
    ) in output


def test_live_mail_is_visible_as_queued_to_the_projects_read_key(env: Env) -> None:
    import httpx

    from postroom.core.platform import ApiKey
    from postroom.core.secrets import new_api_key

    issued = new_api_key()
    env.platform.add_api_key(
        ApiKey(issued.key_id, "acme", "reader", ("read",), issued.digest, env.clock.now())
    )
    with env.smtp() as client:
        client.sendmail("app@example.com", ["ann@example.net"], MESSAGE)
    headers = {"Authorization": f"Bearer {issued.token}"}
    with httpx.Client(base_url=env.server.base_url, headers=headers, timeout=30) as http:
        listing = http.get("/api/v1/messages").json()
        assert [(m["Subject"], m["Status"]) for m in listing["messages"]] == [("Welcome", "queued")]
        message = http.get(f"/api/v1/message/{listing['messages'][0]['ID']}").json()
        assert message["Status"] == "queued"
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        assert http.get("/api/v1/messages").json()["total"] == 0  # not in the capture inbox
