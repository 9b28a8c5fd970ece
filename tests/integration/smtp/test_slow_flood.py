"""Issue 9, item 4: 1,000 slow connections from 10 loopback addresses (100 each: the default
per-client limit, and together the default total) hold every slot, dripping a byte every few
seconds, half of them waiting in a command and half inside DATA. A well-behaved client
(smtplib) must still complete a transaction while they are held. How fast it is served is
measured by bench/slow_clients.py, never asserted here."""

from __future__ import annotations

import asyncio
import resource
import smtplib
import time
from email.message import EmailMessage

import pytest

from postroom.smtp.server import EVICT_AFTER

from .conftest import LineClient, StartServer

ADDRESSES = [f"127.0.0.{i}" for i in range(2, 12)]
PER_ADDRESS = 100
SLOW = len(ADDRESSES) * PER_ADDRESS
FDS_NEEDED = 2 * SLOW + 200  # both ends of every connection live in this process


def _enough_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < FDS_NEEDED:
        if hard != resource.RLIM_INFINITY and hard < FDS_NEEDED:
            pytest.fail(f"this test needs {FDS_NEEDED} file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (FDS_NEEDED, hard))


async def _slow_client(port: int, address: str, in_data: bool) -> LineClient:
    client = await LineClient.connect(port, local_host=address)
    assert (await client.reply()).startswith("220 ")
    if in_data:
        for line, code in (
            ("EHLO slow.test", "250"),
            ("MAIL FROM:<slow@example.com>", "250"),
            ("RCPT TO:<victim@example.org>", "250"),
            ("DATA", "354"),
        ):
            assert (await client.command(line)).startswith(code)
    return client


async def _drip(clients: list[LineClient], interval: float) -> None:
    """One octet to every slow client each `interval` seconds (never a line end)."""
    while True:
        for client in clients:
            if not client.writer.is_closing():
                client.writer.write(b"x")
        await asyncio.sleep(interval)


def _send_one(port: int) -> float:
    message = EmailMessage()
    message["From"] = "good@example.com"
    message["To"] = "someone@example.org"
    message["Subject"] = "served while the slow ones wait"
    message.set_content("hello")
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.send_message(message)
    return time.perf_counter() - started


@pytest.mark.timeout(300)
async def test_a_good_client_is_served_while_1000_slow_ones_hold_every_slot(
    start_server: StartServer,
) -> None:
    _enough_descriptors()
    running = await start_server(
        max_connections=SLOW, max_per_ip=PER_ADDRESS, evict_after=EVICT_AFTER
    )
    port = running.port
    slow: list[LineClient] = []
    dripping: asyncio.Task[None] | None = None
    try:
        for address in ADDRESSES:
            batch = await asyncio.gather(
                *(_slow_client(port, address, in_data=i % 2 == 1) for i in range(PER_ADDRESS))
            )
            slow.extend(batch)
        assert running.server.connections == SLOW  # every slot is held
        dripping = asyncio.create_task(_drip(slow, 3.0))
        await asyncio.sleep(EVICT_AFTER * 1.5)  # the slow ones have now made no progress

        latency = await asyncio.to_thread(_send_one, port)
        print(f"\nwell-behaved client served in {latency * 1000:.1f} ms with {SLOW} slow held")

        [message] = running.recorder.messages
        assert message.envelope.recipients == ("someone@example.org",)
        # The slow ones are still held, less the one that made room.
        await asyncio.sleep(0)
        assert running.recorder.rejects.count(("capture", "evicted")) == 1
        assert running.server.connections == SLOW - 1
    finally:
        if dripping is not None:
            dripping.cancel()
        for client in slow:
            client.writer.transport.abort()
