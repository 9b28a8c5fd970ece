"""Message data spooled to a file while it arrives, and the memory budget (issue 9, item 3),
against the real asyncio edge with real clients (aiosmtplib, raw sockets)."""

from __future__ import annotations

import asyncio
import itertools
import os
import stat
from pathlib import Path

import aiosmtplib
import pytest

from postroom.core.spooled import read_spooled
from postroom.core.types import IncomingMessage
from postroom.smtp.spool import MemoryBudget, Spool

from .conftest import LineClient, Recorder, Running, StartServer

BUSY = "452 4.3.1 Too much mail is being received at once"


def message(size: int, subject: str = "big") -> bytes:
    head = f"From: a@example.com\r\nTo: b@example.org\r\nSubject: {subject}\r\n\r\n".encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyz.0123456789abcdefghijklmnopqrstuvwxyz\r\n"
    body = (line * (size // len(line) + 1))[: max(size - len(head) - 2, 0)]
    return head + body.rstrip(b"\r\n") + b"\r\n"


class Kept(Recorder):
    """Records each message's bytes as the door sees them (read from the spool file while
    it exists) and whether it came spooled."""

    def __init__(self) -> None:
        super().__init__()
        self.contents: list[bytes] = []
        self.spooled: list[bool] = []

        async def keep(incoming: IncomingMessage) -> None:
            if incoming.spooled is not None:
                assert incoming.data == b""
                assert stat.S_IMODE(os.stat(incoming.spooled.path).st_mode) == 0o600
                self.contents.append(read_spooled(incoming.spooled))
            else:
                self.contents.append(incoming.data)
            self.spooled.append(incoming.spooled is not None)

        self.deliver_hook = keep


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*")) if directory.exists() else []


async def until(condition: object, what: str) -> None:
    """Yield until `condition()` holds (bounded: 10 s, then the test fails saying what)."""
    assert callable(condition)
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"still waiting for {what}")


async def in_transaction(port: int) -> LineClient:
    client = await LineClient.connect(port)
    assert (await client.reply()).startswith("220 ")
    assert (await client.command("EHLO c.test")).startswith("250")
    assert (await client.command("MAIL FROM:<a@example.com>")).startswith("250 ")
    assert (await client.command("RCPT TO:<b@example.org>")).startswith("250 ")
    return client


async def serve(start_server: StartServer, tmp_path: Path, **spool: int) -> tuple[Running, Kept]:
    recorder = Kept()
    budget = MemoryBudget(spool.pop("budget", 1 << 30))
    running = await start_server(
        recorder=recorder,
        spool=Spool(tmp_path / "spool", budget=budget, **spool),
        max_message_size=50 * 1024 * 1024,
    )
    return running, recorder


async def test_a_message_above_the_threshold_goes_to_a_0600_file_and_arrives_intact(
    start_server: StartServer, tmp_path: Path
) -> None:
    running, recorder = await serve(start_server, tmp_path, threshold=100_000)
    data = message(3 * 1024 * 1024) + b".starts with a dot\r\n..two dots\r\nend\r\n"
    client = await in_transaction(running.port)
    assert (await client.command("DATA")).startswith("354 ")
    half = len(data) // 2
    await client.send(data[:half].replace(b"\r\n.", b"\r\n.."))
    # While it arrives, the message is in one private file of the spool directory.
    await until(lambda: len(files(tmp_path / "spool")) == 1, "the spool file")
    [spool_file] = files(tmp_path / "spool")
    assert stat.S_IMODE(os.stat(tmp_path / "spool").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(spool_file).st_mode) == 0o600
    assert running.server.spool.budget.held <= 256 * 1024  # not the message: a piece of it
    await client.send(data[half:].replace(b"\r\n.", b"\r\n..") + b".\r\n")
    assert (await client.reply()).startswith("250 2.0.0 Ok: queued as MSG1")
    assert recorder.contents == [data] and recorder.spooled == [True]
    assert files(tmp_path / "spool") == []  # deleted once the door answered
    assert running.server.spool.budget.held == 0
    await client.close()


async def test_a_small_message_stays_in_memory(start_server: StartServer, tmp_path: Path) -> None:
    running, recorder = await serve(start_server, tmp_path, threshold=1024 * 1024)
    small, middle = message(2000), message(500_000)  # under the piece size, over it
    for data in (small, middle):
        await aiosmtplib.send(
            data, sender="a@example.com", recipients=["b@example.org"], port=running.port
        )
    assert recorder.contents == [small, middle] and recorder.spooled == [False, False]
    assert files(tmp_path / "spool") == []


async def test_bdat_chunks_above_the_threshold_arrive_intact(
    start_server: StartServer, tmp_path: Path
) -> None:
    running, recorder = await serve(start_server, tmp_path, threshold=64 * 1024)
    data = message(1024 * 1024)
    client = await in_transaction(running.port)
    cuts = [0, 1, 100_001, 300_000, 700_000, len(data)]
    for start, end in itertools.pairwise(cuts):
        last = " LAST" if end == len(data) else ""
        await client.send(f"BDAT {end - start}{last}\r\n".encode() + data[start:end])
        expected = "250 2.0.0 Ok: queued" if last else f"250 2.0.0 {end - start} octets"
        assert (await client.reply()).startswith(expected)
    assert recorder.contents == [data] and recorder.spooled == [True]
    assert files(tmp_path / "spool") == []
    await client.close()


async def test_a_client_that_disconnects_mid_data_leaves_no_file_and_no_charge(
    start_server: StartServer, tmp_path: Path
) -> None:
    running, recorder = await serve(start_server, tmp_path, threshold=64 * 1024)
    budget = running.server.spool.budget
    for verb in ("DATA", "BDAT"):
        client = await in_transaction(running.port)
        if verb == "DATA":
            assert (await client.command("DATA")).startswith("354 ")
            await client.send(message(1024 * 1024)[:-2])
        else:
            await client.send(b"BDAT 2000000 LAST\r\n" + message(1024 * 1024))
        await until(lambda: files(tmp_path / "spool") != [], "the spool file")
        client.writer.transport.abort()  # gone mid-message
        await until(lambda: files(tmp_path / "spool") == [] and budget.held == 0, "the release")
    assert recorder.messages == []


async def test_data_beyond_the_budget_gets_452_and_other_sessions_go_on(
    start_server: StartServer, tmp_path: Path
) -> None:
    # A tiny budget: one session holding an unfinished 40 KB (below the 64 KB piece size, so
    # it stays in the session's memory) spends it.
    running, recorder = await serve(start_server, tmp_path, budget=16 * 1024, threshold=1 << 20)
    budget = running.server.spool.budget
    # A session whose transfer started before the budget was spent ...
    early = await in_transaction(running.port)
    assert (await early.command("DATA")).startswith("354 ")
    holder = await in_transaction(running.port)
    assert (await holder.command("DATA")).startswith("354 ")
    await holder.send(message(40 * 1024)[:-2])
    await until(budget.spent, "the budget to be spent")

    # ... new transfers are refused, DATA and BDAT alike, with 452 4.3.1, concurrently.
    async def big(n: int) -> aiosmtplib.SMTPResponseException:
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await aiosmtplib.send(
                message(300_000, f"big {n}"),
                sender="a@example.com",
                recipients=["b@example.org"],
                port=running.port,
            )
        return refused.value

    refusals = await asyncio.gather(*(big(n) for n in range(5)))
    assert {(r.code, r.message.split(";")[0]) for r in refusals} == {
        (452, "4.3.1 Too much mail is being received at once")
    }
    bdat = await in_transaction(running.port)
    await bdat.send(b"BDAT 70000 LAST\r\n" + b"x" * 70000 + b"NOOP\r\n")
    assert (await bdat.reply()).startswith(BUSY)
    assert (await bdat.reply()) == "250 2.0.0 Ok"  # the chunk's octets were dropped
    # The refused session goes on: a new transaction is possible in it.
    assert (await bdat.command("MAIL FROM:<a@example.com>")).startswith("250 ")

    # The early session's message still passes; the holder finishes too.
    small = message(1000, "small")
    await early.send(small + b".\r\n")
    assert (await early.reply()).startswith("250 2.0.0 Ok: queued")
    await holder.send(b"\r\n.\r\n")
    assert (await holder.reply()).startswith("250 2.0.0 Ok: queued")
    assert budget.held == 0
    # Once released, the refused session sends its message.
    assert (await bdat.command("RCPT TO:<b@example.org>")).startswith("250 ")
    await bdat.send(b"BDAT 5 LAST\r\nabc\r\n")
    assert (await bdat.reply()).startswith("250 2.0.0 Ok: queued")
    assert recorder.contents == [small, message(40 * 1024), b"abc\r\n"]
    assert ("capture", "memory_budget") in recorder.rejects
    for client in (early, holder, bdat):
        await client.close()


async def test_the_budget_is_released_when_a_holding_client_disconnects(
    start_server: StartServer, tmp_path: Path
) -> None:
    running, _ = await serve(start_server, tmp_path, budget=16 * 1024, threshold=1 << 20)
    budget = running.server.spool.budget
    holder = await in_transaction(running.port)
    assert (await holder.command("DATA")).startswith("354 ")
    await holder.send(message(40 * 1024)[:-2])
    await until(budget.spent, "the budget to be spent")
    other = await in_transaction(running.port)
    assert (await other.command("DATA")).startswith(BUSY)
    holder.writer.transport.abort()
    await until(lambda: budget.held == 0, "the holder's memory to be released")
    assert (await other.command("MAIL FROM:<a@example.com>")).startswith("250 ")
    assert (await other.command("RCPT TO:<b@example.org>")).startswith("250 ")
    assert (await other.command("DATA")).startswith("354 ")
    await other.close()


async def test_a_spent_budget_sends_a_transfer_in_progress_to_its_file_before_the_threshold(
    start_server: StartServer, tmp_path: Path
) -> None:
    # Threshold 1 MB, budget 100 KB: a 600 KB message spends the budget while it arrives,
    # so it goes to a file (and gives its memory back) instead of waiting for the threshold.
    data = message(600 * 1024)
    for budget_size, spooled in ((100 * 1024, True), (1 << 30, False)):
        running, recorder = await serve(
            start_server, tmp_path, budget=budget_size, threshold=1 << 20
        )
        client = await in_transaction(running.port)
        assert (await client.command("DATA")).startswith("354 ")
        await client.send(data + b".\r\n")
        assert (await client.reply()).startswith("250 2.0.0 Ok: queued")
        assert recorder.contents == [data] and recorder.spooled == [spooled]
        assert files(tmp_path / "spool") == [] and running.server.spool.budget.held == 0
        await client.close()


async def test_a_message_that_cannot_be_spooled_gets_451_and_the_session_goes_on(
    start_server: StartServer, tmp_path: Path
) -> None:
    running, recorder = await serve(start_server, tmp_path, threshold=64 * 1024)
    spool = tmp_path / "spool"
    spool.rmdir()
    spool.write_text("the spool directory is gone: a file took its place")
    client = await in_transaction(running.port)
    assert (await client.command("DATA")).startswith("354 ")
    await client.send(message(300_000) + b".\r\n")
    assert (await client.reply()) == (
        "451 4.3.0 The message could not be kept while it arrived (no room on the server); "
        "please try again later"
    )
    assert running.server.spool.budget.held == 0
    # The session goes on, and a small message (kept in memory) still passes.
    assert (await client.command("MAIL FROM:<a@example.com>")).startswith("250 ")
    assert (await client.command("RCPT TO:<b@example.org>")).startswith("250 ")
    assert (await client.command("DATA")).startswith("354 ")
    await client.send(message(1000) + b".\r\n")
    assert (await client.reply()).startswith("250 2.0.0 Ok: queued as MSG1")
    assert recorder.contents == [message(1000)]
    await client.close()


async def test_stalled_transfers_in_memory_go_to_their_files_before_anyone_gets_452(
    start_server: StartServer, tmp_path: Path
) -> None:
    # Budget 250 KB, threshold 1 MB: a client sends 200 KB and stalls (kept in memory), a
    # second sends 60 KB (held by its session, which cannot go to a file) and stalls: the
    # budget is spent. A third client's DATA makes the first one's data go to its file, and
    # is accepted; the stalled messages still arrive intact.
    running, recorder = await serve(start_server, tmp_path, budget=250_000, threshold=1 << 20)
    budget = running.server.spool.budget
    first, second = await in_transaction(running.port), await in_transaction(running.port)
    assert (await first.command("DATA")).startswith("354 ")
    assert (await second.command("DATA")).startswith("354 ")
    big, small = message(200_000, "first"), message(60_000, "second")
    await first.send(big)
    await until(lambda: budget.held >= 190_000, "the first client's data")
    await second.send(small)
    await until(budget.spent, "the budget to be spent")
    assert files(tmp_path / "spool") == []
    third = await in_transaction(running.port)
    assert (await third.command("DATA")).startswith("354 ")
    assert len(files(tmp_path / "spool")) == 1 and not budget.spent()
    for client in (third, first, second):
        await client.send(b".\r\n")
        assert (await client.reply()).startswith("250 2.0.0 Ok: queued")
    assert recorder.contents == [b"", big, small]
    assert recorder.spooled == [False, True, False]
    assert files(tmp_path / "spool") == [] and budget.held == 0
    for client in (first, second, third):
        await client.close()
