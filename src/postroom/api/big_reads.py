"""Reads of big messages: bounded, and shared between requests for the same message.

A big message (more than BIG_READ bytes) is read as a stream and parsed from its small copy
(mime/stream.py). That is CPU work in a thread, and every thread takes the interpreter lock
from the event loop that serves SMTP; so at most `slots` such reads run at once, the others
wait. Requests for the view of a message whose parse is under way wait for that parse
instead of starting another, and the last few views parsed are kept (a message's bytes never
change; its record, read flag and tags are read afresh for each request).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

from postroom.mime.view import ParsedMessage

# Messages larger than this (bytes) are read as a stream: parsed from a small copy, their
# raw bytes and parts sent as they are decompressed and decoded.
BIG_READ = 1024 * 1024
SLOTS = 2  # big reads working at once (the machine this was tuned on has two cores)
CACHED_VIEWS = 4  # each holds at most the cut text and HTML bodies (tree.TEXT_KEEP each)


def _quiet(future: asyncio.Future[ParsedMessage]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: no "never retrieved" warning when nobody waited


class BigReads:
    def __init__(self, slots: int = SLOTS, cached: int = CACHED_VIEWS) -> None:
        self.slots = asyncio.Semaphore(slots)
        self._cached = cached
        self._views: collections.OrderedDict[tuple[str, str], ParsedMessage] = (
            collections.OrderedDict()
        )
        self._parsing: dict[tuple[str, str], asyncio.Future[ParsedMessage]] = {}
        self._marking: set[tuple[str, str]] = set()

    async def mark_read(self, key: tuple[str, str], write: Callable[[], Awaitable[object]]) -> bool:
        """Mark message `key` read with `write`, unless another request is doing so already;
        True when this call wrote. (Ten parallel GETs of an unread message wrote its read flag
        ten times: ten commits that the writer process, committing SMTP mail to the same
        database, had to wait for.)"""
        if key in self._marking:
            return False
        self._marking.add(key)
        try:
            await write()
        finally:
            self._marking.discard(key)
        return True

    async def view(
        self, key: tuple[str, str], parse: Callable[[], Awaitable[ParsedMessage]]
    ) -> ParsedMessage:
        """The view of message `key` (project, id): cached, being parsed, or parsed now by
        `parse` in one of the slots."""
        found = self._views.get(key)
        if found is not None:
            self._views.move_to_end(key)
            return found
        pending = self._parsing.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ParsedMessage] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_quiet)
        self._parsing[key] = future
        try:
            async with self.slots:
                parsed = await parse()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            del self._parsing[key]
        future.set_result(parsed)
        self._views[key] = parsed
        while len(self._views) > self._cached:
            self._views.popitem(last=False)
        return parsed
