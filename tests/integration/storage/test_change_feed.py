"""The change feed announces messages other processes stored, once each, on both backends."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.events.bus import EventBus, MessageEvent
from postroom.events.feed import ChangeFeed
from postroom.storage.store import SqlMessageStore


async def test_feed_publishes_each_new_message_once(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    bus = EventBus()
    feed = ChangeFeed(store, bus, clock, ["default"], window=60)
    async with bus.subscribe() as events:
        clock.advance(1)
        await store.add(make_message(clock, subject="from another process", created=clock.now()))
        assert await feed.poll_once() == 1
        event = events.get_nowait()
        assert event.type == "new" and event.record is not None
        assert event.record.summary.subject == "from another process"
        assert await feed.poll_once() == 0
        assert events.empty()


async def test_feed_skips_what_the_local_pipeline_announced_and_old_messages(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    bus = EventBus()
    feed = ChangeFeed(store, bus, clock, ["default"], window=10)
    old = make_message(clock, subject="old", created=clock.now())
    await store.add(old)
    clock.advance(60)
    local = make_message(clock, subject="local", created=clock.now())
    await store.add(local)
    record = store.get("default", local.id)
    feed._remember(record.id)  # what run() does for events seen on the bus
    async with bus.subscribe() as events:
        assert await feed.poll_once() == 0
        assert events.empty()
    assert (clock.now() - old.created) > timedelta(seconds=10)


async def test_recent_ids_are_newest_first_after_since_and_bounded(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    old = make_message(clock, created=clock.now())
    await store.add(old)
    since = clock.now()
    newer = []
    for _ in range(3):
        clock.advance(1)
        message = make_message(clock, created=clock.now())
        await store.add(message)
        newer.append(message.id)
    assert store.recent_ids("default", since, 10) == newer[::-1]
    assert store.recent_ids("default", since, 2) == newer[:0:-1]
    assert store.recent_ids("other", since, 10) == []


async def test_feed_covers_every_project_it_lists_and_reads_the_list_again(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    """Every project's inbox is live: the feed announces other processes' messages of each
    project the platform lists (a project created later too), with that project on the event."""
    bus = EventBus()
    listed = ["default", "team-a"]
    feed = ChangeFeed(store, bus, clock, ["default"], window=60, all_projects=lambda: list(listed))
    async with bus.subscribe() as events:
        clock.advance(1)
        await store.add(make_message(clock, subject="a", project="team-a", created=clock.now()))
        await store.add(make_message(clock, subject="b", project="team-b", created=clock.now()))
        assert await feed.poll_once() == 1
        event = events.get_nowait()
        assert event.project == "team-a" and event.record is not None
        assert event.record.summary.subject == "a"
        listed.append("team-b")  # created meanwhile: seen once the list is read again
        assert await feed.poll_once() == 0
        clock.advance(6)
        assert await feed.poll_once() == 1
        event = events.get_nowait()
        assert event.project == "team-b"
        assert events.empty()


async def test_feed_does_not_read_back_what_the_local_pipeline_announced_meanwhile(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    """Announcements published while the feed reads the recent ids are drained before it
    picks the unseen ones: a busy server does not read back every message it just stored."""
    bus = EventBus()
    feed = ChangeFeed(store, bus, clock, ["default"], window=60)
    clock.advance(1)
    stored = []
    for i in range(20):
        message = make_message(clock, subject=f"local {i}", created=clock.now(), step=0.01)
        await store.add(message)
        stored.append(store.get("default", message.id))
    async with bus.subscribe() as events:
        task = asyncio.create_task(feed.run())
        try:
            await asyncio.sleep(0)  # the feed subscribed and is reading the recent ids
            for record in stored:  # what the local pipeline announces meanwhile
                bus.publish(MessageEvent("new", "default", record=record))
            for _ in range(100):
                await asyncio.sleep(0.02)
            assert events.qsize() == 20  # ours only: the feed announced none again
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_feed_leaves_messages_being_accepted_to_the_local_pipeline(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    """Committed but not announced yet (the accepting task waits for the event loop): the
    pipeline's in-flight ids are not read back; once out of flight, an unannounced one is."""
    in_flight: set[str] = set()
    bus = EventBus()
    feed = ChangeFeed(store, bus, clock, ["default"], window=60, in_flight=in_flight)
    clock.advance(1)
    message = make_message(clock, subject="being accepted", created=clock.now())
    await store.add(message)
    in_flight.add(message.id)
    async with bus.subscribe() as events:
        assert await feed.poll_once() == 0 and events.empty()
        in_flight.discard(message.id)  # gone without an announcement (it failed after commit)
        assert await feed.poll_once() == 1
