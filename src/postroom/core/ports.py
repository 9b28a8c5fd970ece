"""Ports: the Protocols that adapters implement and services depend on."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from postroom.core.search import SearchQuery
from postroom.core.types import MessagePage, MessageRecord, NewMessage

# Completes a message that came without its summary: parses it and derives its tags. A
# module-level function, so that a writer process can be handed it by reference (pickle).
Completer = Callable[[NewMessage], NewMessage]


class MessageStore(Protocol):
    """Durable message storage (SQLite or PostgreSQL).

    `add` is async: it returns once the message is durably committed (group commit: messages
    that arrive together share one transaction and one fsync). Everything else is synchronous
    and is called from a worker thread by async callers.
    """

    async def add(self, message: NewMessage) -> NewMessage:
        """Return once `message` is durably committed: the message as stored (completed if it
        came without its summary). Raises StorageError if it was not committed."""
        ...

    def list(
        self, project: str, query: SearchQuery | None, start: int, limit: int
    ) -> MessagePage: ...

    def recent_ids(self, project: str, since: datetime, limit: int) -> builtins.list[str]:
        """Ids of the newest messages created after `since`, newest first, at most `limit`."""
        ...

    def get(self, project: str, message_id: str) -> MessageRecord:
        """Raises NotFound. `message_id` may be "latest" (newest message)."""
        ...

    def raw(self, project: str, message_id: str) -> bytes:
        """The message byte-exact as stored. Raises NotFound."""
        ...

    def set_read(
        self, project: str, ids: Sequence[str] | None, query: SearchQuery | None, read: bool
    ) -> builtins.list[str]:
        """Mark the given ids (or all matching `query`, or all if both None); return changed ids."""
        ...

    def delete(
        self, project: str, ids: Sequence[str] | None, query: SearchQuery | None
    ) -> builtins.list[str]:
        """Delete the given ids (or all matching `query`, or all if both None); return ids."""
        ...

    def tags(self, project: str) -> builtins.list[str]: ...

    def set_tags(self, project: str, ids: Sequence[str], tags: Sequence[str]) -> None:
        """Replace the tags of each message."""
        ...

    def rename_tag(self, project: str, old: str, new: str) -> None: ...

    def delete_tag(self, project: str, tag: str) -> None: ...

    def prune(
        self, project: str, max_messages: int | None, older_than: datetime | None
    ) -> builtins.list[str]:
        """Retention: delete beyond the newest `max_messages` and before `older_than`."""
        ...

    def database_size(self) -> int: ...

    async def close(self) -> None: ...
