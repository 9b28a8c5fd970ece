"""In-process fan-out of message events to live subscribers (SSE stream, /api/v1/wait)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from postroom.core.types import MessageRecord

EventType = Literal["new", "update", "delete", "truncate"]


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """`record` is set for new messages; `ids` for updates and deletions."""

    type: EventType
    project: str
    record: MessageRecord | None = None
    ids: tuple[str, ...] = field(default_factory=tuple)


class EventBus:
    """Each subscriber gets its own bounded queue; a slow subscriber loses events, not others."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[MessageEvent]] = set()
        self._queue_size = queue_size

    def publish(self, event: MessageEvent) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(
        self, queue_size: int | None = None
    ) -> AsyncIterator[asyncio.Queue[MessageEvent]]:
        """A queue of the events published from now on (at most `queue_size`, default the
        bus's: beyond it the oldest are dropped)."""
        queue: asyncio.Queue[MessageEvent] = asyncio.Queue(queue_size or self._queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
