"""Messages accepted for a live project carry a DKIM signature that dkimpy verifies, fetching
the key from the test DNS server: RSA and Ed25519, 7-bit, 8-bit and SMTPUTF8 messages."""

from __future__ import annotations

import asyncio

import pytest

from tests.dnszone import dkimpy_verify

from .client import Client
from .conftest import PASSWORD, Env


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


CASES = {
    "ascii": (
        "app@example.com",
        crlf(
            "From: App <app@example.com>\nTo: a@example.net\nSubject: plain\n\nHello  there \n\n\n"
        ),
        "",
    ),
    "8bit": (
        "app@example.com",
        crlf(
            "From: App <app@example.com>\nTo: a@example.net\nSubject: =?utf-8?q?F=C3=BCr?=\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit\n\nGrüße aus Köln – 東京\n"
        ),
        " BODY=8BITMIME",
    ),
    "smtputf8": (
        "jörg@bücher.example",
        crlf(
            "From: Jörg Müller <jörg@bücher.example>\nTo: Zoë <zoë@exämple.net>\n"
            "Subject: Grüße\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit\n\nNaïve café\n"
        ),
        " BODY=8BITMIME SMTPUTF8",
    ),
    "ed25519": (
        "app@ed.example",
        crlf("From: <app@ed.example>\nTo: a@example.net\nSubject: edwards\n\nHello\n"),
        "",
    ),
    "ed25519-8bit": (
        "app@ed.example",
        crlf("From: Ärger <app@ed.example>\nTo: a@example.net\nSubject: ünïcödé\n\nÄÖÜ\n"),
        " BODY=8BITMIME SMTPUTF8",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_live_messages_are_signed_and_verify(env: Env, case: str) -> None:
    sender, data, params = CASES[case]
    client = await Client.connect(env.submissions_port, tls=env.client_context())
    await client.ehlo()
    assert (await client.login("app", PASSWORD)).startswith("235 ")
    assert (await client.command(f"MAIL FROM:<{sender}>{params}")).startswith("250 ")
    assert (await client.command("RCPT TO:<a@example.net>")).startswith("250 ")
    assert (await client.command("DATA")).startswith("354")
    await client.send(data + b".\r\n")
    reply = await client.reply()
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    await client.close()
    [record] = env.messages()
    raw = env.raw(record)
    algorithm = b"ed25519-sha256" if "ed25519" in case else b"rsa-sha256"
    assert b"a=" + algorithm in raw
    assert raw.endswith(data.split(b"\r\n\r\n", 1)[1])  # the body is stored as sent
    assert await asyncio.to_thread(dkimpy_verify, raw, env.zone)
    tampered = raw.replace(b"Subject:", b"Subject: Re:", 1)
    assert not await asyncio.to_thread(dkimpy_verify, tampered, env.zone)


def big_body() -> bytes:
    """About 2 MB (over the 1 MiB spool threshold): WSP runs, trailing WSP, a last line of
    spaces and trailing empty lines, which the relaxed body hash must see through."""
    lines = [
        f"line {n:07d}  with\t\truns of   whitespace and trailing  ".encode() for n in range(40_000)
    ]
    return b"\r\n".join([*lines, b"   ", b"", b""]) + b"\r\n"


@pytest.mark.parametrize("env", [False, True], indirect=True, ids=["thread", "writer-process"])
@pytest.mark.parametrize("sender", ["app@example.com", "app@ed.example"])
async def test_big_live_messages_are_signed_from_their_spool_file(env: Env, sender: str) -> None:
    body = big_body()
    data = crlf(f"From: <{sender}>\nTo: a@example.net\nSubject: big\n\n") + body
    client = await Client.connect(env.submissions_port, tls=env.client_context())
    await client.ehlo()
    assert (await client.login("app", PASSWORD)).startswith("235 ")
    assert (await client.command(f"MAIL FROM:<{sender}>")).startswith("250 ")
    assert (await client.command("RCPT TO:<a@example.net>")).startswith("250 ")
    assert (await client.command("DATA")).startswith("354")
    await client.send(data + b".\r\n")
    reply = await client.reply()
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    # A body line over 998 octets in a big message is refused like in a small one.
    assert (await client.command(f"MAIL FROM:<{sender}>")).startswith("250 ")
    assert (await client.command("RCPT TO:<a@example.net>")).startswith("250 ")
    assert (await client.command("DATA")).startswith("354")
    await client.send(data + b"x" * 999 + b"\r\n.\r\n")
    assert (await client.reply()).startswith("550 5.6.0 ")
    await client.close()
    [record] = env.messages()
    raw = env.raw(record)
    assert raw.endswith(b"\r\n\r\n" + body)  # the body is stored as sent
    assert b"Message-ID: <" in raw.split(b"\r\n\r\n", 1)[0]  # the head was fixed up
    assert await asyncio.to_thread(dkimpy_verify, raw, env.zone)
    tampered = raw.replace(b"line 0012345", b"line 0012346", 1)
    assert not await asyncio.to_thread(dkimpy_verify, tampered, env.zone)
    spool = env.server.app.spool.directory
    assert spool is not None and list(spool.iterdir()) == []
