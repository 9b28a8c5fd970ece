"""Slow and greedy clients against the real asyncio edge (issue 9, item 4)."""

from __future__ import annotations

import asyncio

from postroom.core.types import IncomingMessage

from .conftest import LineClient, Recorder, StartServer


async def greeted(port: int, *, local_host: str | None = None) -> LineClient:
    client = await LineClient.connect(port, local_host=local_host)
    assert (await client.reply()).startswith("220 ")
    return client


async def until(condition: object) -> None:
    """Yield to the loop until `condition()` holds (bounded by pytest's own timeout)."""
    assert callable(condition)
    while not condition():
        await asyncio.sleep(0.005)


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


async def drip(client: LineClient, data: bytes, interval: float) -> None:
    """Send `data` one octet at a time (a slow client); stops quietly when the server closes."""
    try:
        for octet in data:
            client.writer.write(bytes([octet]))
            await client.writer.drain()
            await asyncio.sleep(interval)
    except (ConnectionError, asyncio.CancelledError):
        pass


async def test_a_byte_at_a_time_does_not_keep_a_command_open(start_server: StartServer) -> None:
    running = await start_server(command_timeout=0.5)
    client = await greeted(running.port)
    # 400 octets 50 ms apart, never a line end: 20 s of activity, each octet well within the
    # timeout (before, each reset it and the session stayed open as long as the drip went on).
    dripping = asyncio.create_task(drip(client, b"NOOP" * 100, 0.05))
    reply = await asyncio.wait_for(client.reply(), 10)
    assert reply == "421 4.4.2 mx.test Timeout, closing connection"
    dripping.cancel()
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["reason"] == "timeout"
    await client.close()


async def test_data_below_the_minimum_rate_is_cut_after_the_grace(
    start_server: StartServer,
) -> None:
    running = await start_server(command_timeout=60, data_timeout=1.0, data_min_rate=1000)
    client = await in_transaction(running.port)
    assert (await client.command("DATA")).startswith("354")
    # About 20 octets/s, far below the 1,000 asked for, though never a second of silence:
    # cut once the block is a second old.
    dripping = asyncio.create_task(drip(client, b"Subject: slow\r\n" * 30, 0.05))
    reply = await asyncio.wait_for(client.reply(), 10)
    assert reply == "421 4.4.2 mx.test Data arriving too slowly, closing connection"
    dripping.cancel()
    await client.close()
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["reason"] == "too_slow"
    assert ("capture", "too_slow") in running.recorder.rejects
    assert running.recorder.messages == []


async def test_data_at_the_minimum_rate_is_accepted(start_server: StartServer) -> None:
    running = await start_server(command_timeout=60, data_timeout=1.0, data_min_rate=50)
    client = await in_transaction(running.port)
    assert (await client.command("DATA")).startswith("354")
    for _ in range(20):  # 20 octets every 0.1 s for 2 s: about 200 octets/s, past the grace
        await client.send(b"X-Filler: 12345678\r\n")
        await asyncio.sleep(0.1)
    await client.send(b"\r\nbody\r\n.\r\n")
    assert await client.reply() == "250 2.0.0 Ok: queued as MSG1"


async def test_the_session_lifetime_ends_a_busy_looking_session(
    start_server: StartServer,
) -> None:
    running = await start_server(session_lifetime=0.5)
    client = await greeted(running.port)

    async def noops() -> str:
        while True:
            reply = await client.command("NOOP")
            if not reply.startswith("250"):
                return reply
            await asyncio.sleep(0.05)

    reply = await asyncio.wait_for(noops(), 10)
    assert reply == "421 4.4.2 mx.test Session time limit reached, closing connection"
    await client.close()
    [summary] = await running.recorder.wait_sessions(1)
    assert summary["reason"] == "session_lifetime"


async def test_a_full_server_closes_its_least_active_session_for_a_newcomer(
    start_server: StartServer,
) -> None:
    running = await start_server(max_connections=3, evict_after=0.0)
    slow = [await greeted(running.port, local_host=f"127.0.0.{i}") for i in (2, 3, 4)]
    for client in slow:
        await client.send(b"NO")  # a command begun, never finished
    newcomer = await greeted(running.port)
    assert (await newcomer.command("EHLO c.test")).startswith("250")
    assert (await newcomer.command("MAIL FROM:<a@example.com>")).startswith("250 ")
    assert (await newcomer.command("RCPT TO:<b@example.org>")).startswith("250 ")
    assert (await newcomer.command("DATA")).startswith("354")
    await newcomer.send(b"Subject: served\r\n\r\nbody\r\n.\r\n")
    assert await newcomer.reply() == "250 2.0.0 Ok: queued as MSG1"
    # the one waiting longest for its command made room
    assert await slow[0].reply() == (
        "421 4.7.0 mx.test Too many connections; closing this least active one"
    )
    assert running.recorder.rejects.count(("capture", "evicted")) == 1
    assert running.server.connections == 3
    await slow[0].close()
    summaries = await running.recorder.wait_sessions(1)
    assert summaries[0]["reason"] == "evicted"
    for client in [*slow, newcomer]:
        await client.close()


async def test_a_session_whose_message_is_being_stored_is_never_evicted(
    start_server: StartServer,
) -> None:
    storing, release = asyncio.Event(), asyncio.Event()

    async def slow_store(message: IncomingMessage) -> None:
        storing.set()
        await release.wait()

    recorder = Recorder(deliver_hook=slow_store)
    running = await start_server(max_connections=1, evict_after=0.0, recorder=recorder)
    client = await in_transaction(running.port)
    assert (await client.command("DATA")).startswith("354")
    await client.send(b"Subject: stored slowly\r\n\r\nbody\r\n.\r\n")
    await storing.wait()
    newcomer = await LineClient.connect(running.port)
    assert (await newcomer.reply()).startswith("421 4.7.0 mx.test Too many connections")
    release.set()
    assert await client.reply() == "250 2.0.0 Ok: queued as MSG1"
    for c in (client, newcomer):
        await c.close()


async def test_a_noop_every_few_milliseconds_does_not_count_as_activity(
    start_server: StartServer,
) -> None:
    running = await start_server(max_connections=2, evict_after=0.3)
    keepalive = await greeted(running.port, local_host="127.0.0.2")
    assert (await keepalive.command("EHLO idle.test")).startswith("250")
    working = await in_transaction(running.port)
    stop = asyncio.Event()

    async def noops() -> str:
        while True:
            reply = await keepalive.command("NOOP")
            if not reply.startswith("250") or stop.is_set():
                return reply
            await asyncio.sleep(0.02)

    async def recipients() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            assert (await working.command(f"RCPT TO:<r{n}@example.org>")).startswith("250 ")
            await asyncio.sleep(0.02)

    pinging = asyncio.create_task(noops())
    adding = asyncio.create_task(recipients())
    await asyncio.sleep(0.6)  # both sessions have sent commands all along
    newcomer = await greeted(running.port)  # room was made: the NOOP loop went
    assert await asyncio.wait_for(pinging, 10) == (
        "421 4.7.0 mx.test Too many connections; closing this least active one"
    )
    stop.set()
    await adding
    assert (await working.command("DATA")).startswith("354")
    for client in (keepalive, working, newcomer):
        await client.close()
