"""Slow and greedy clients against the real asyncio edge (issue 9, item 4)."""

from __future__ import annotations

import asyncio

from .conftest import LineClient, StartServer


async def greeted(port: int, *, local_host: str | None = None) -> LineClient:
    client = await LineClient.connect(port, local_host=local_host)
    assert (await client.reply()).startswith("220 ")
    return client


async def command_with(client: LineClient, data: bytes) -> str:
    await client.send(data)
    return await client.reply()


async def in_transaction(port: int) -> LineClient:
    client = await greeted(port)
    assert (await client.command("EHLO c.test")).startswith("250")
    assert (await client.command("MAIL FROM:<a@example.com>")).startswith("250 ")
    assert (await client.command("RCPT TO:<b@example.org>")).startswith("250 ")
    return client


async def test_a_terabyte_bdat_is_refused_at_once_and_the_replies_survive_the_close(
    start_server: StartServer,
) -> None:
    running = await start_server(max_message_size=1000)
    client = await in_transaction(running.port)
    # The client streams its chunk without waiting, as BDAT allows: the server refuses it on
    # the announced size and closes without a reset that would eat the replies.
    client.writer.write(b"BDAT 1000000000000 LAST\r\n" + b"x" * (1 << 20))
    assert (
        await asyncio.wait_for(client.reply(), 10)
        == "552 5.3.4 Message size exceeds the maximum of 1000 octets"
    )
    assert (await client.reply()).startswith("421 4.3.4 mx.test The rest of that ")
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["reason"] == "chunk_too_large"
    assert running.recorder.messages == []
    await client.close()


async def test_a_bdat_chunk_past_the_total_is_refused_before_its_octets(
    start_server: StartServer,
) -> None:
    running = await start_server(max_message_size=1000)
    client = await in_transaction(running.port)
    assert (
        await command_with(client, b"BDAT 600\r\n" + b"a" * 600) == "250 2.0.0 600 octets received"
    )
    # The reply comes before any octet of the chunk (it used to wait for all 600 of them).
    reply = await asyncio.wait_for(client.command("BDAT 600"), 10)
    assert reply == "552 5.3.4 Message size exceeds the maximum of 1000 octets"
    # The octets that follow are dropped, never run as commands; the session goes on.
    smuggled = b"MAIL FROM:<x@example.com>\r\n"
    assert await command_with(client, smuggled + b"b" * (600 - len(smuggled)) + b"NOOP\r\n") == (
        "250 2.0.0 Ok"
    )
    assert (await client.command("QUIT")).startswith("221 ")
    assert running.recorder.messages == []
