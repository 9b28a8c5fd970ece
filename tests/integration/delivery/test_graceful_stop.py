"""Stopping delivery (SIGTERM) in the middle of a transaction: the transaction finishes and is
recorded (never delivered twice), or, past --delivery-stop-timeout, is cut and its entry given
back untried (due again at once, not after the lease), as after a crash but without the wait.

The receiving server is scripted: it holds its reply to the end of the message data until the
test lets it go, so the stop lands exactly while a transaction is open."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postroom.core.clock import FakeClock
from postroom.core.platform import Project
from postroom.core.types import DELIVERED, QUEUED, Envelope
from postroom.delivery.worker import DeliverySettings, DeliveryWorker, Relay
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage import SqlMessageStore, open_store
from postroom.storage.store import SqlMessageStore as Store
from tests.harness import ServerThread, make_config
from tests.integration.delivery.test_worker import RAW
from tests.integration.storage.factory import make_message

HOLD_LIMIT = 60.0  # the longest the server holds a reply if a test forgets to let it go


class HoldingServer:
    """An SMTP server on 127.0.0.1 in a thread of its own: 250 to everything, but its reply to
    the end of each message's data waits until `release` is set (when `hold` is on)."""

    def __init__(self) -> None:
        self.hold = True
        self.release = threading.Event()
        self.data_seen = threading.Event()  # a message's data has arrived (reply held)
        self.accepted: list[list[str]] = []  # recipients of each transaction answered 250
        self.port = 0
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = int(server.sockets[0].getsockname()[1])
        ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        self.release.set()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        recipients: list[str] = []
        try:
            writer.write(b"220 hold.test ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-hold.test\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    recipients = []
                    writer.write(b"250 2.1.0 ok\r\n")
                elif verb == b"RCPT":
                    recipients.append(line.decode().split("<", 1)[1].split(">", 1)[0])
                    writer.write(b"250 2.1.5 ok\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go on\r\n")
                    await writer.drain()
                    while await reader.readline() not in (b".\r\n", b""):
                        pass
                    self.data_seen.set()
                    if self.hold:
                        await asyncio.to_thread(self.release.wait, HOLD_LIMIT)
                    self.accepted.append(recipients)
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"250 2.0.0 ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
def holding() -> Iterator[HoldingServer]:
    server = HoldingServer()
    yield server
    server.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> Iterator[SqlMessageStore]:
    opened = open_store(
        str(tmp_path / "data"), clock, writer_process=False, complete=complete_message
    )
    try:
        yield opened  # type: ignore[misc]
    finally:
        await opened.close()


def new_message(clock: FakeClock, recipient: str) -> object:
    base = make_message(clock, to=(recipient,), project="acme", status="queued", raw=RAW)
    envelope = Envelope("app@example.com", (recipient,), {}, ({},))
    return dataclasses.replace(base, envelope=envelope, deliveries=deliveries_for(envelope))


def worker(
    store: SqlMessageStore, clock: FakeClock, port: int, owner: str, concurrency: int = 20
) -> DeliveryWorker:
    relay = Relay("127.0.0.1", port, "none")
    settings = DeliverySettings(
        helo_name="out.postroom.test", smarthost=relay, lease=600, concurrency=concurrency
    )
    return DeliveryWorker(store.queue, store, None, clock, settings, owner=owner)  # type: ignore[arg-type]


def entry_of(store: SqlMessageStore, message_id: str) -> tuple[str, int, str | None]:
    (entry,) = store.queue.entries(message_id)
    return entry.status, entry.attempts, entry.lease_owner


async def test_a_stop_lets_the_open_transaction_finish(
    store: SqlMessageStore, clock: FakeClock, holding: HoldingServer
) -> None:
    message = new_message(clock, "a@example.net")
    await store.add(message)  # type: ignore[arg-type]
    first = worker(store, clock, holding.port, "first")
    job = asyncio.create_task(first.run_once())  # the supervisor's delivery job
    assert await asyncio.to_thread(holding.data_seen.wait, 30)
    job.cancel()  # what the supervisor does first when the server stops
    await asyncio.wait([job])
    assert job.cancelled()
    stopping = asyncio.create_task(first.shutdown())
    await asyncio.sleep(0)
    assert not stopping.done()  # it waits for the transaction
    holding.release.set()  # the receiver answers 250
    await stopping
    assert entry_of(store, message.id) == (DELIVERED, 1, None)  # type: ignore[attr-defined]
    # "Restart": another worker, even once the first one's lease would have run out, has
    # nothing to deliver again.
    clock.advance(3600)
    assert await worker(store, clock, holding.port, "second").run_once() == 0
    assert holding.accepted == [["a@example.net"]]
    assert await first.run_once() == 0  # a stopped worker claims nothing more


async def test_a_stop_begins_no_new_transaction(
    store: SqlMessageStore, clock: FakeClock, holding: HoldingServer
) -> None:
    """The pass in progress holds more messages than are being sent (one delivery at a time
    here): the one being sent finishes, the others are given back untried, not begun."""
    first_message = new_message(clock, "a@example.net")
    second_message = new_message(clock, "b@example.net")
    await store.add(first_message)  # type: ignore[arg-type]
    await store.add(second_message)  # type: ignore[arg-type]
    first = worker(store, clock, holding.port, "first", concurrency=1)
    job = asyncio.create_task(first.run_once())
    assert await asyncio.to_thread(holding.data_seen.wait, 30)
    job.cancel()
    await asyncio.wait([job])
    stopping = asyncio.create_task(first.shutdown())
    await asyncio.sleep(0)
    holding.release.set()
    await stopping
    done = {m.id: entry_of(store, m.id) for m in (first_message, second_message)}  # type: ignore[attr-defined]
    assert sorted(done.values()) == [(DELIVERED, 1, None), (QUEUED, 0, None)]
    assert len(holding.accepted) == 1


async def test_past_the_stop_timeout_the_entry_is_given_back_untried(
    store: SqlMessageStore, clock: FakeClock, holding: HoldingServer
) -> None:
    message = new_message(clock, "a@example.net")
    await store.add(message)  # type: ignore[arg-type]
    first = worker(store, clock, holding.port, "first")
    job = asyncio.create_task(first.run_once())
    assert await asyncio.to_thread(holding.data_seen.wait, 30)
    job.cancel()
    await asyncio.wait([job])
    assert await first.stop(timeout=0.2) == 1  # the receiver never answered: cut
    assert entry_of(store, message.id) == (QUEUED, 0, None)  # no lease, no attempt counted
    holding.hold = False
    holding.release.set()
    # Due again at once (no waiting for the lease to run out), delivered by the next worker.
    second = worker(store, clock, holding.port, "second")
    assert await second.run_once() == 1
    assert entry_of(store, message.id) == (DELIVERED, 1, None)  # type: ignore[attr-defined]


def test_stopping_the_server_mid_transaction_delivers_once(
    tmp_path: Path, holding: HoldingServer
) -> None:
    """The whole path SIGTERM takes (cli: the stop event -> Application.stop): the supervisor
    cancels the delivery job, the pass in progress goes on, the stop waits for it."""
    clock = FakeClock(datetime(2026, 12, 3, tzinfo=UTC))
    config = make_config(
        tmp_path / "data",
        delivery=True,
        verp=False,
        routes=f"example.net=smtp+plain://127.0.0.1:{holding.port}",
        delivery_allow_private=True,
    )
    server = ServerThread(config, clock).start()
    store = server.app.store
    assert isinstance(store, Store) and server.app.platform is not None
    server.app.platform.create_project(Project("acme", "Acme", "live", clock.now()))
    message = new_message(clock, "a@example.net")
    loop = server._loop
    assert loop is not None
    asyncio.run_coroutine_threadsafe(store.add(message), loop).result(30)  # type: ignore[arg-type]
    try:
        clock.advance(2)  # the delivery job's next look (it runs on the injected clock)
        assert holding.data_seen.wait(30)
        stopping = threading.Thread(target=server.stop)
        stopping.start()  # as on SIGTERM
        job = server.app.jobs._entries["delivery"].task
        assert job is not None
        for _ in range(600):  # until the supervisor has cancelled the delivery job
            if job.done():
                break
            stopping.join(0.05)
        assert job.cancelled() and stopping.is_alive()  # the stop waits for the transaction
        holding.release.set()
        stopping.join(60)
        assert not stopping.is_alive()
    finally:
        holding.release.set()
        server.stop()
    reopened = open_store(str(tmp_path / "data"), clock, writer_process=False)
    try:
        assert entry_of(reopened, message.id) == (DELIVERED, 1, None)  # type: ignore[attr-defined]
    finally:
        asyncio.run(reopened.close())
    assert holding.accepted == [["a@example.net"]]
