"""Group commit: concurrent adds share transactions, each is durable when `add` returns, and a
failed transaction fails every waiter of its batch with StorageError."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import create_engine, text
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import StorageError
from postroom.core.types import NewMessage
from postroom.pipeline.complete import complete_message
from postroom.storage import SqlMessageStore, open_store, resolve_target


@pytest.fixture(params=[False, True], ids=["writer-thread", "writer-process"])
def writer_process(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
async def store(
    target: str, clock: FakeClock, writer_process: bool
) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(target, clock, writer_process=writer_process)
    try:
        yield opened
    finally:
        await opened.close()


def _committed_ids(target: str) -> set[str]:
    """Ids visible to a brand-new connection, independent of the store's own."""
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            return {str(i) for i in conn.execute(text("SELECT id FROM messages")).scalars()}
    finally:
        engine.dispose()


async def test_concurrent_adds_share_transactions(
    store: SqlMessageStore, clock: FakeClock, target: str
) -> None:
    messages = [make_message(clock, subject=f"m{i}") for i in range(300)]
    await asyncio.gather(*(store.add(m) for m in messages))
    stats = store.stats
    assert stats.messages == 300
    assert stats.max_batch > 1
    assert stats.batches < 300
    assert stats.failed_batches == 0
    assert _committed_ids(target) == {m.id for m in messages}
    assert store.list("default", None, 0, 0).total == 300


async def test_add_returns_only_after_commit(
    store: SqlMessageStore, clock: FakeClock, target: str
) -> None:
    """As each add completes, a fresh connection already sees its message."""
    messages = [make_message(clock) for _ in range(60)]
    engine = create_engine(resolve_target(target).url)
    try:
        tasks = {asyncio.ensure_future(store.add(m)): m for m in messages}
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            with engine.connect() as conn:
                visible = {str(i) for i in conn.execute(text("SELECT id FROM messages")).scalars()}
            for task in done:
                task.result()
                assert tasks[task].id in visible
    finally:
        engine.dispose()


async def test_acknowledged_messages_survive_reopen(
    clock: FakeClock, target: str, writer_process: bool
) -> None:
    first = open_store(target, clock, writer_process=writer_process)
    messages = [make_message(clock, raw=f"message {i}\r\n".encode()) for i in range(50)]
    await asyncio.gather(*(first.add(m) for m in messages))
    await first.close()
    second = open_store(target, clock, writer_process=writer_process)
    try:
        assert store_ids(second) == {m.id for m in messages}
        for m in messages:
            assert second.raw("default", m.id) == m.raw
    finally:
        await second.close()


def store_ids(store: SqlMessageStore) -> set[str]:
    return {m.id for m in store.list("default", None, 0, 10_000).messages}


async def test_a_failed_transaction_fails_every_waiter(
    store: SqlMessageStore, clock: FakeClock, target: str
) -> None:
    await store.add(make_message(clock, subject="before the failure"))
    # Break the database behind the store's back: the raw-bytes table disappears.
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE message_raw"))
    finally:
        engine.dispose()
    messages = [make_message(clock) for _ in range(40)]
    results = await asyncio.gather(*(store.add(m) for m in messages), return_exceptions=True)
    assert all(isinstance(r, StorageError) for r in results), results
    stats = store.stats
    assert stats.failed_batches >= 1
    assert stats.failed_batches < 40  # they failed together, in shared transactions
    # Nothing of the failed batches was half-written.
    assert store.list("default", None, 0, 0).total == 1


async def test_a_bad_message_fails_alone(store: SqlMessageStore, clock: FakeClock) -> None:
    """A data error (here a duplicate id) is retried message by message: only it fails."""
    existing = make_message(clock)
    await store.add(existing)
    good = [make_message(clock) for _ in range(20)]
    duplicate = make_message(clock)
    duplicate = NewMessage(
        id=existing.id,
        project=duplicate.project,
        created=duplicate.created,
        raw=duplicate.raw,
        envelope=duplicate.envelope,
        summary=duplicate.summary,
        tags=(),
    )
    batch = [*good[:10], duplicate, *good[10:]]
    results = await asyncio.gather(*(store.add(m) for m in batch), return_exceptions=True)
    assert isinstance(results[10], StorageError)
    assert [r for i, r in enumerate(results) if i != 10] == good  # add returns the message
    assert store.list("default", None, 0, 0).total == 21
    assert store.raw("default", existing.id) == existing.raw


async def test_a_cancelled_waiter_does_not_disturb_the_others(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    messages = [make_message(clock) for _ in range(30)]
    tasks = [asyncio.ensure_future(store.add(m)) for m in messages]
    await asyncio.sleep(0)  # every add has queued its message
    tasks[5].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[5], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 5] == messages[:5] + messages[6:]
    # The cancelled waiter's message was already queued: it is stored anyway.
    assert store.list("default", None, 0, 0).total == 30
    await store.add(make_message(clock))  # the writer is still alive


async def test_close_commits_what_is_queued_then_refuses(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    messages = [make_message(clock) for _ in range(10)]
    tasks = [asyncio.ensure_future(store.add(m)) for m in messages]
    await asyncio.sleep(0)
    await store.close()
    assert [t.result() for t in tasks] == messages
    with pytest.raises(StorageError):
        await store.add(make_message(clock))


async def test_batches_respect_the_size_limit(
    clock: FakeClock, target: str, writer_process: bool
) -> None:
    limited = open_store(target, clock, max_batch=7, writer_process=writer_process)
    try:
        await asyncio.gather(*(limited.add(make_message(clock)) for _ in range(50)))
        stats = limited.stats
        assert stats.max_batch == 7
        assert stats.batches == 8  # 7 * 7 + 1
    finally:
        await limited.close()


@pytest.mark.postgres
async def test_the_writer_recovers_from_a_lost_connection(
    postgres_database: str, clock: FakeClock, writer_process: bool
) -> None:
    store = open_store(postgres_database, clock, writer_process=writer_process)
    try:
        await store.add(make_message(clock))
        engine = create_engine(resolve_target(postgres_database).url)
        try:
            with engine.begin() as conn:
                killed = conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar()
        finally:
            engine.dispose()
        assert killed
        outcomes = []
        for _ in range(4):  # the first attempts may meet dead pooled connections
            try:
                await store.add(make_message(clock))
                outcomes.append("ok")
            except StorageError:
                outcomes.append("failed")
        assert outcomes[-2:] == ["ok", "ok"], outcomes
        assert store.list("default", None, 0, 0).total == 1 + outcomes.count("ok")
    finally:
        await store.close()


async def test_pipelined_batches_commit_everything(
    clock: FakeClock, target: str, writer_process: bool
) -> None:
    """With two transactions in flight, messages arriving while one commits form the next."""
    piped = open_store(target, clock, pipeline=2, max_batch=10, writer_process=writer_process)
    try:
        messages = [make_message(clock) for _ in range(95)]
        await asyncio.gather(*(piped.add(m) for m in messages))
        stats = piped.stats
        assert (stats.messages, stats.batches, stats.max_batch) == (95, 10, 10)
        assert store_ids(piped) == {m.id for m in messages}
    finally:
        await piped.close()


def test_a_store_outlives_an_event_loop(
    clock: FakeClock, target: str, writer_process: bool
) -> None:
    """Opened outside any loop, used from one loop and then another (say, a restart of the
    asyncio runner in a CLI command): the writer follows the running loop."""
    store = open_store(target, clock, writer_process=writer_process)
    first, second = make_message(clock), make_message(clock)
    asyncio.run(store.add(first))
    asyncio.run(store.add(second))
    assert store_ids(store) == {first.id, second.id}
    asyncio.run(store.close())


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_killed_writer_process_fails_its_batch_and_is_replaced(
    clock: FakeClock, target: str
) -> None:
    store = open_store(target, clock, writer_process=True)
    try:
        await store.add(make_message(clock))
        child = store._writer_process
        assert child is not None and child.pid is not None
        first = child.pid
        os.kill(first, signal.SIGKILL)
        outcomes = []
        for _ in range(3):  # the first may be sent before the death is noticed
            try:
                await store.add(make_message(clock))
                outcomes.append("ok")
            except StorageError as exc:
                assert "writer process" in str(exc)
                outcomes.append("failed")
        assert outcomes[-2:] == ["ok", "ok"], outcomes
        assert child.pid not in (None, first)
        assert store.list("default", None, 0, 0).total == 1 + outcomes.count("ok")
    finally:
        await store.close()
    assert not _alive(first)


async def test_closing_the_store_stops_the_writer_process(clock: FakeClock, target: str) -> None:
    store = open_store(target, clock, writer_process=True)
    await store.add(make_message(clock))
    assert store._writer_process is not None
    pid = store._writer_process.pid
    assert pid is not None and _alive(pid)
    await store.close()
    assert not _alive(pid)


_ORPHAN = """
import asyncio, os, sys, time
from postroom.storage import open_store
store = open_store(sys.argv[1], writer_process=True)
print(store._writer_process.pid, flush=True)
time.sleep(60)
"""


def test_the_writer_process_exits_when_its_parent_is_killed(target: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, target], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert _alive(pid)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the writer process outlived its parent"


def _draft(clock: FakeClock, raw: bytes, tags: tuple[str, ...] = ()) -> NewMessage:
    """A message as the acceptance pipeline hands it over: without its summary."""
    return dataclasses.replace(make_message(clock, raw=raw), summary=None, tags=tags)


async def test_messages_without_a_summary_are_completed_where_the_batch_is_written(
    clock: FakeClock, target: str, writer_process: bool
) -> None:
    store = open_store(target, clock, writer_process=writer_process, complete=complete_message)
    raw = (
        b"From: Ann <ann@example.com>\r\nTo: bob+invoices@example.org\r\n"
        b"Subject: Parsed by the writer\r\nX-Tags: urgent\r\n\r\nThe body.\r\n"
    )
    try:
        drafts = [_draft(clock, raw, tags=("bare-line-endings",)) for _ in range(5)]
        stored = await asyncio.gather(*(store.add(d) for d in drafts))
        for draft, message in zip(drafts, stored, strict=True):
            assert message.id == draft.id and message.summary is not None
            assert message.summary.subject == "Parsed by the writer"
            assert message.tags == ("urgent", "invoices", "bare-line-endings")
            record = store.get("default", draft.id)
            assert record.summary.subject == "Parsed by the writer"
            assert record.summary.snippet == "The body."
            assert sorted(record.tags) == ["bare-line-endings", "invoices", "urgent"]
        complete = make_message(clock)  # a message with its summary is stored as given
        assert await store.add(complete) == complete
    finally:
        await store.close()


async def test_without_a_completer_a_message_without_summary_is_refused(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    with pytest.raises(StorageError, match="no completer"):
        await store.add(_draft(clock, b"Subject: x\r\n\r\nbody\r\n"))
    assert store.list("default", None, 0, 0).total == 0
    await store.add(make_message(clock))  # the writer carries on
