"""The acceptance pipeline every door feeds: prepare, persist durably, announce.

Capture mode (the only mode so far): the message is stored and visible; nothing is relayed.
"""

from __future__ import annotations

import asyncio
import logging

from postroom.core.clock import Clock
from postroom.core.ids import new_id
from postroom.core.ports import MessageStore
from postroom.core.types import IncomingMessage, MessageRecord, NewMessage
from postroom.events.bus import EventBus, MessageEvent
from postroom.metrics import Metrics
from postroom.mime.summary import summarize
from postroom.mime.tags import tags_for
from postroom.pipeline.received import received_header

log = logging.getLogger("postroom.pipeline")

INLINE_PARSE_LIMIT = 64 * 1024
BARE_LINE_ENDINGS_TAG = "bare-line-endings"
BARE_LINE_ENDINGS_WARNING = (
    "The message used bare CR or LF line endings; Postroom normalised them to CRLF. "
    "Many receiving servers refuse such mail (550 5.6.11)."
)


class AcceptancePipeline:
    def __init__(self, store: MessageStore, clock: Clock, bus: EventBus, metrics: Metrics) -> None:
        self._store = store
        self._clock = clock
        self._bus = bus
        self._metrics = metrics

    async def accept(self, incoming: IncomingMessage, project: str = "default") -> str:
        """Persist the message; return its id once it is durably committed."""
        started = self._clock.monotonic()
        now = self._clock.now()
        message_id = new_id(now)
        raw = received_header(incoming.session, incoming.envelope, message_id, now) + incoming.data
        # Small messages parse faster than a thread hop; large ones must not stall the loop.
        if len(raw) > INLINE_PARSE_LIMIT:
            summary = await asyncio.to_thread(summarize, raw)
        else:
            summary = summarize(raw)
        tags = tags_for(summary, incoming.envelope.recipients)
        warnings: tuple[str, ...] = ()
        if incoming.bare_line_endings:
            warnings = (BARE_LINE_ENDINGS_WARNING,)
            if BARE_LINE_ENDINGS_TAG not in tags:
                tags = (*tags, BARE_LINE_ENDINGS_TAG)
        message = NewMessage(
            id=message_id,
            project=project,
            created=now,
            raw=raw,
            envelope=incoming.envelope,
            summary=summary,
            tags=tags,
            username=incoming.session.auth_user,
            warnings=warnings,
        )
        await self._store.add(message)
        door = incoming.session.door
        self._metrics.commit_seconds.observe(self._clock.monotonic() - started)
        self._metrics.messages_received.labels(door).inc()
        self._metrics.bytes_received.labels(door).inc(len(raw))
        record = MessageRecord(
            id=message_id,
            project=project,
            created=now,
            size=len(raw),
            read=False,
            envelope=message.envelope,
            summary=summary,
            tags=tags,
            username=message.username,
            status=message.status,
            warnings=warnings,
        )
        self._bus.publish(MessageEvent("new", project, record=record))
        return message_id
