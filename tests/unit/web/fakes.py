"""A small in-memory stand-in for the parts of the store and clock the UI routes use."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from postroom.core.errors import StorageError
from postroom.core.search import SearchQuery
from postroom.core.types import Address, Envelope, MessagePage, MessageRecord, Summary

NOW = datetime(2025, 3, 14, 15, 0, 0, tzinfo=UTC)


def record(
    n: int,
    subject: str,
    *,
    read: bool = False,
    tags: tuple[str, ...] = (),
    age: timedelta = timedelta(minutes=5),
    sender: Address | None = None,
) -> MessageRecord:
    summary = Summary(
        from_=sender or Address("Alice Example", "alice@example.com"),
        to=(Address("Bob", "bob@example.com"), Address("", "carol@example.com")),
        cc=(),
        bcc=(),
        reply_to=(),
        subject=subject,
        message_id=f"<{n}@example.com>",
        date=None,
        snippet=f"snippet {n}",
        attachments=(),
        header_tags=(),
        search_text="",
    )
    return MessageRecord(
        id=f"01JAAAAAAAAAAAAAAAAAAAAA{n:02d}",
        project="default",
        created=NOW - age,
        size=2048 + n,
        read=read,
        envelope=Envelope("alice@example.com", ("bob@example.com",)),
        summary=summary,
        tags=tags,
        username=None,
        status="captured",
        warnings=(),
    )


@dataclass
class FakeStore:
    records: list[MessageRecord] = field(default_factory=list)
    fail: bool = False
    calls: list[tuple[SearchQuery | None, int, int]] = field(default_factory=list)

    def list(self, project: str, query: SearchQuery | None, start: int, limit: int) -> MessagePage:
        if self.fail:
            raise StorageError("disk on fire")
        self.calls.append((query, start, limit))
        unread = sum(1 for r in self.records if not r.read)
        return MessagePage(
            tuple(self.records[start : start + limit]),
            len(self.records),
            unread,
            len(self.records),
            unread,
            start,
        )

    def tags(self, project: str) -> builtins.list[str]:
        return sorted({t for r in self.records for t in r.tags})


class FixedClock:
    def now(self) -> datetime:
        return NOW

    def monotonic(self) -> float:
        return 0.0
