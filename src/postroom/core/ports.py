"""Ports: the Protocols that adapters implement and services depend on."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from postroom.core.events import Event, EventPage, EventQuery
from postroom.core.search import SearchQuery
from postroom.core.types import (
    Attempt,
    AttemptRecord,
    Delivered,
    MessagePage,
    MessageRecord,
    MessageSlice,
    NewMessage,
    QueueAction,
    QueueEntry,
    QueueFilter,
    QueueSummary,
)

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

    def page(
        self,
        project: str,
        query: SearchQuery | None,
        start: int,
        limit: int,
        *,
        with_tags: bool = False,
    ) -> MessageSlice:
        """The page `list` returns without counting the matches (whether more follow);
        `with_tags`: with the project's tags in use (`tags`), read in the same transaction."""
        ...

    def recent_ids(self, project: str, since: datetime, limit: int) -> builtins.list[str]:
        """Ids of the newest messages created after `since`, newest first, at most `limit`."""
        ...

    def get(self, project: str, message_id: str) -> MessageRecord:
        """Raises NotFound. `message_id` may be "latest" (newest message)."""
        ...

    def raw(self, project: str, message_id: str) -> bytes:
        """The message byte-exact as stored. Raises NotFound."""
        ...

    def get_with_raw(self, project: str, message_id: str) -> tuple[MessageRecord, bytes]:
        """`get` and `raw` in one read. Raises NotFound."""
        ...

    def get_many_with_raw(
        self, keys: Sequence[tuple[str, str]], max_size: int
    ) -> dict[str, tuple[MessageRecord, bytes] | None]:
        """`get_with_raw` of many (project, message id) pairs in one read (the delivery
        worker's, once per claimed batch): {message id: (record, bytes)}, None for a message
        larger than `max_size` octets (left for `get_with_raw`); messages not found are left
        out. Raises StorageError."""
        ...

    def raw_chunks(self, project: str, message_id: str) -> Iterator[bytes]:
        """The message byte-exact as stored, as a stream of chunks, never whole in memory.
        Raises NotFound at once (not when iterated)."""
        ...

    def set_read(
        self, project: str, ids: Sequence[str] | None, query: SearchQuery | None, read: bool
    ) -> builtins.list[str]:
        """Mark the given ids (or all matching `query`, or all if both None); return changed ids."""
        ...

    def delete(
        self, project: str, ids: Sequence[str] | None, query: SearchQuery | None
    ) -> builtins.list[str]:
        """Delete the given ids (or all matching `query`, or all if both None); return ids.

        Raises PendingDeliveries, deleting nothing, when any of them still has recipients to
        deliver to (a message's deliveries are never cancelled by deleting it)."""
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
        """Retention: delete beyond the newest `max_messages` and before `older_than`;
        messages with recipients still to deliver to are kept."""
        ...

    def database_size(self) -> int: ...

    async def close(self) -> None: ...


class QueueStore(Protocol):
    """The outbound queue: one entry per recipient of a live message (see core.types.QueueEntry).

    Entries are written by MessageStore.add together with their message (NewMessage.deliveries).
    Delivery workers claim due entries with a lease and then report each one exactly once:
    `complete` (delivered), `defer` (try again later), `fail` (permanent), `release` (not
    attempted) or `postpone` (not attempted, due again later). A report from a worker that no
    longer holds the lease (another worker took the entry over after the lease expired, or it
    was already reported) changes nothing and returns False. Synchronous: async callers run it
    on a worker thread.

    Each report but `release` and `postpone` writes its event (core.events) in the transaction
    that changes the entry: `delivery`, `deferred`, `bounce`, or `expired` for
    `fail(expired=True)`, with `detail` (the reply, the remote MTA, hard or soft, the reason)
    as the event's detail, and its `attempt` (core.types.Attempt) when given; a report that
    finishes the recipient sets the message's status (core.types MESSAGE_*).
    """

    def entries(self, message_id: str) -> builtins.list[QueueEntry]:
        """The entries of one message, in recipient order."""
        ...

    def get(self, entry_id: int) -> QueueEntry:
        """Raises NotFound."""
        ...

    def claim(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> builtins.list[QueueEntry]:
        """Lease up to `limit` pending entries due at `now` (oldest due first) to `owner` until
        `now + lease`; entries whose lease has expired are taken over. Two claimers never get
        the same entry while its lease runs."""
        ...

    def release(self, entry_id: int, owner: str) -> bool:
        """Give a leased entry back untried: due again at once, no attempt counted."""
        ...

    def postpone(self, entry_ids: Sequence[int], owner: str, until: datetime) -> int:
        """Give leased entries back untried, due again at `until` (their destination site is
        suspended, or its rate lets nothing go before then): no attempt counted, no event,
        no attempt recorded. Returns how many were still leased to `owner` and changed."""
        ...

    def complete(
        self,
        entry_id: int,
        owner: str,
        now: datetime,
        detail: Mapping[str, Any] | None = None,
        attempt: Attempt | None = None,
    ) -> bool:
        """The recipient was delivered (event `delivery`)."""
        ...

    def complete_many(self, delivered: Sequence[Delivered]) -> builtins.list[bool]:
        """`complete` for each of `delivered`, all in one transaction (a worker's group
        commit); for each, whether it changed the entry."""
        ...

    def defer(
        self,
        entry_id: int,
        owner: str,
        next_attempt: datetime,
        error: str,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        attempt: Attempt | None = None,
        notice: NewMessage | None = None,
    ) -> bool:
        """A temporary failure: count the attempt, record `error`, due again at `next_attempt`
        (event `deferred`, at `now`; default: the store's clock). `notice` (a delay notice to
        the sender) is written in the same transaction and marks the entry `delay_notified`."""
        ...

    def fail(
        self,
        entry_id: int,
        owner: str,
        now: datetime,
        error: str,
        detail: Mapping[str, Any] | None = None,
        *,
        expired: bool = False,
        attempt: Attempt | None = None,
        notice: NewMessage | None = None,
    ) -> bool:
        """A permanent failure: count the attempt, record `error`; the entry is done (event
        `bounce`, or `expired` when its queue lifetime ran out). `notice` (a complete new
        message: the bounce notice to the sender, with its deliveries) is written in the same
        transaction."""
        ...

    def attempts(self, project: str, message_id: str) -> builtins.list[AttemptRecord]:
        """The recorded attempts of one message of the project, oldest first."""
        ...

    def pending(self, project: str, message_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The recipients still to deliver to, per message of `message_ids` that has any."""
        ...

    def pending_count(self, message_id: str) -> int:
        """How many recipients of the message are still to deliver to."""
        ...


class EventStore(Protocol):
    """Reads of the durable event log (core.events). Events are written by the stores that make
    the changes they record, in the same transaction; never through this port."""

    def query(self, project: str, query: EventQuery) -> EventPage:
        """One page of the project's events matching `query`, oldest first. Raises
        InvalidInput naming the field for a bad limit or event type."""
        ...

    def for_message(self, project: str, message_id: str) -> builtins.list[Event]:
        """Every event of one message of the project, oldest first."""
        ...


class QueueAdmin(Protocol):
    """Operators' views of a project's queue and actions on its entries (storage/queue_admin).
    Everything is within the project given: another project's entries never match."""

    def summary(self, project: str) -> QueueSummary:
        """Entries per state, and pending entries per recipient domain."""
        ...

    def find(
        self, project: str, wanted: QueueFilter, after: int = 0, limit: int = 100
    ) -> builtins.list[QueueEntry]:
        """Entries matching `wanted` with an id above `after`, in id order. InvalidInput
        (field `filter`) for a filter that names nothing without `everything`."""
        ...

    def act(
        self, project: str, action: QueueAction, wanted: QueueFilter, now: datetime
    ) -> builtins.list[int]:
        """retry (due now), hold, release (held: due now) or cancel (event `cancelled`) the
        matching entries the action applies to and no worker holds; the ids changed."""
        ...
