"""Bounce notices: when a recipient fails for good (a permanent reply, or its queue lifetime
ran out), the message's sender gets a delivery status notification (RFC 3464, bounces/dsn.py)
as a new message of the same project, queued from the null sender to the sender and written
in the transaction that records the failure (so it is neither lost nor sent twice).

A recipient deferred for `delay_after` (4 h) gets one notice of delay (Action: delayed) when
its NOTIFY allows (absent, or naming DELAY), written with the deferral that sends it.

No notice when the message came from the null sender (a notice is never bounced), when the
recipient's NOTIFY asked for none (NEVER, or a list without FAILURE), or when the project
turned notices off (delivery settings). RET=FULL returns the whole message, otherwise its
header. ENVID and ORCPT are passed on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from postroom.bounces.dsn import (
    FailedRecipient,
    build_dsn,
    wants_delay_notice,
    wants_failure_notice,
)
from postroom.core.errors import InvalidInput, PostroomError
from postroom.core.ids import new_id
from postroom.core.ports import Completer
from postroom.core.types import Delivery, Envelope, MessageRecord, NewMessage, QueueEntry
from postroom.dns.dkim import normalize_domain
from postroom.smtp.client_protocol import ServerReply

log = logging.getLogger("postroom.delivery")

NOTICE_TAG = "bounce-notice"
# Whether a project sends bounce notices (its delivery settings).
NoticesOn = Callable[[str], Awaitable[bool]]


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2]
    try:
        return normalize_domain(domain)
    except (ValueError, InvalidInput):
        return domain.lower()


class Notices:
    def __init__(
        self,
        hostname: str,
        complete: Completer,
        enabled: NoticesOn | None = None,
        delay_after: float = 4 * 3600.0,
    ):
        """`delay_after`: seconds a recipient is deferred before its sender gets one notice
        of delay (0: never)."""
        self._hostname = hostname
        self._complete = complete
        self._enabled = enabled
        self.delay_after = delay_after

    async def _wanted(self, project: str) -> bool:
        if self._enabled is None:
            return True
        try:
            return await self._enabled(project)
        except PostroomError as exc:
            log.warning("bounce notice setting of %s unknown: %s", project, exc)
            return True

    async def delay(
        self,
        record: MessageRecord,
        raw: bytes,
        entry: QueueEntry,
        reply: ServerReply,
        remote_mta: str,
        now: datetime,
        retry_until: datetime,
    ) -> NewMessage | None:
        """The one notice of delay of `entry`, once it has waited `delay_after`; None when it
        has not, was told already, or none is wanted."""
        sender = record.envelope.mail_from
        if (
            not self.delay_after
            or entry.delay_notified
            or (now - entry.created).total_seconds() < self.delay_after
            or not sender
            or not wants_delay_notice(entry.delivery.notify)
            or not await self._wanted(record.project)
        ):
            return None
        delayed = FailedRecipient(
            recipient=entry.recipient,
            status=reply.enhanced if reply.enhanced.startswith("4.") else "4.0.0",
            diagnostic=str(reply),
            remote_mta=remote_mta,
            orcpt=entry.delivery.orcpt or "",
            last_attempt=now,
            action="delayed",
            will_retry_until=retry_until,
        )
        return await self._message(record, raw, entry, delayed, now, ret_full=False)

    async def failure(
        self,
        record: MessageRecord,
        raw: bytes,
        entry: QueueEntry,
        reply: ServerReply,
        remote_mta: str,
        now: datetime,
        *,
        expired: bool = False,
    ) -> NewMessage | None:
        """The notice of `entry`'s failure, complete and ready to store; None when none is
        wanted."""
        sender = record.envelope.mail_from
        if not sender or not wants_failure_notice(entry.delivery.notify):
            return None
        if not await self._wanted(record.project):
            return None
        failed = FailedRecipient(
            recipient=entry.recipient,
            status="5.4.7" if expired else (reply.enhanced or f"{reply.code // 100}.0.0"),
            diagnostic=str(reply),
            remote_mta=remote_mta,
            orcpt=entry.delivery.orcpt or "",
            last_attempt=now,
            expired=expired,
        )
        ret_full = (entry.delivery.ret or "").upper() == "FULL"
        return await self._message(record, raw, entry, failed, now, ret_full=ret_full)

    async def _message(
        self,
        record: MessageRecord,
        raw: bytes,
        entry: QueueEntry,
        item: FailedRecipient,
        now: datetime,
        *,
        ret_full: bool,
    ) -> NewMessage:
        sender = record.envelope.mail_from
        data = build_dsn(
            reporting_mta=self._hostname,
            sender=sender,
            original=raw,
            arrival=record.created,
            failed=[item],
            ret_full=ret_full,
            envid=entry.delivery.envid or "",
            now=now,
            subject=record.summary.subject,
        )
        envelope = Envelope("", (sender,), {}, ({},))
        message = NewMessage(
            id=new_id(now),
            project=record.project,
            created=now,
            raw=data,
            envelope=envelope,
            summary=None,
            tags=(NOTICE_TAG,),
            status="queued",
            deliveries=(Delivery(sender, _domain(sender)),),
        )
        return await asyncio.to_thread(self._complete, message)
