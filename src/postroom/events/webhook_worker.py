"""The webhook worker: claims due outbox rows with a lease, sends each as a signed POST and
reports the result (storage/webhooks.py retries, gives up and disables).

A row's body is built at its first attempt from the event and its message (events/payload.py)
and kept, so every retry sends the same bytes; each request is signed afresh with the time of
sending (events/signing.py). Rows of one batch never include two of one webhook and message
(the claim's order rule), so a batch is sent concurrently (`concurrency` at a time). A worker
that dies leaves its leases to run out; another (or the same after a restart) takes the rows
again, so a receiver may see an event twice: `eventId` and the `Postroom-Event-Id` header
identify it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from postroom.core.clock import Clock
from postroom.core.errors import NotFound
from postroom.core.ports import MessageStore
from postroom.core.webhooks import Attempted
from postroom.events.payload import MailFacts, build_payload, common_headers, parse_headers
from postroom.events.signing import EVENT_HEADER, WEBHOOK_HEADER, signed_headers
from postroom.events.webhook_sender import WebhookSender
from postroom.storage.events import SqlEventStore
from postroom.storage.sealing import SecretBox
from postroom.storage.webhooks import Claimed, SqlWebhookStore

log = logging.getLogger(__name__)

MailOf = Callable[[str, str, bool], MailFacts | None]


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    owner: str
    lease: timedelta = timedelta(minutes=2)
    batch: int = 50
    concurrency: int = 8
    hostname: str = ""  # the reportingMTA of results this server's delivery worker got
    keep: timedelta = timedelta(days=7)  # finished rows and logged requests are kept this long


def mail_from_store(messages: MessageStore, header_bytes: int = 64 * 1024) -> MailOf:
    """MailOf on a message store: the envelope and time, and with `headers` the header fields
    of the first `header_bytes` of the stored message; None when the message is gone."""

    def mail_of(project: str, message_id: str, headers: bool) -> MailFacts | None:
        try:
            record = messages.get(project, message_id)
        except NotFound:
            return None
        fields: tuple[tuple[str, str], ...] = ()
        cut = False
        common: dict[str, object] = {}
        if headers:
            head = bytearray()
            for chunk in messages.raw_chunks(project, message_id):
                head += chunk
                if len(head) >= header_bytes or b"\r\n\r\n" in head:
                    break
            fields, cut = parse_headers(bytes(head[:header_bytes]))
            message_id_header = next((v for n, v in fields if n.lower() == "message-id"), "")
            common = common_headers(record.summary, message_id_header)
        return MailFacts(
            message_id=record.id,
            timestamp=record.created,
            source=record.envelope.mail_from,
            destination=tuple(record.envelope.recipients),
            headers=fields,
            headers_truncated=cut,
            common=common,
            metadata=record.metadata,
            tags=tuple(record.tags),
        )

    return mail_of


def secret_context(webhook_id: str) -> str:
    """What a webhook's sealed secret is bound to (storage/sealing.py)."""
    return f"webhook:{webhook_id}"


class WebhookWorker:
    def __init__(
        self,
        store: SqlWebhookStore,
        events: SqlEventStore,
        mail_of: MailOf,
        box: SecretBox,
        sender: WebhookSender,
        clock: Clock,
        settings: WorkerSettings,
    ) -> None:
        self.store = store
        self.events = events
        self.mail_of = mail_of
        self.box = box
        self.sender = sender
        self.clock = clock
        self.settings = settings
        self._slots = asyncio.Semaphore(max(1, settings.concurrency))

    def _body(self, claimed: Claimed) -> str:
        """The row's body: kept from its first attempt, or built now."""
        item, hook = claimed.item, claimed.webhook
        if item.body is not None:
            return item.body
        event = self.events.get(item.project, item.event_id)
        mail = None
        if event.message_id is not None:
            mail = self.mail_of(item.project, event.message_id, hook.include_headers)
        payload = build_payload(
            event, mail, headers=hook.include_headers, reporting_mta=self.settings.hostname
        )
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

    async def _send(self, claimed: Claimed) -> None:
        item, hook = claimed.item, claimed.webhook
        owner = self.settings.owner
        try:
            body = await asyncio.to_thread(self._body, claimed)
            secret = self.box.open(claimed.sealed_secret, secret_context(hook.id))
        except NotFound as exc:
            # The event is gone (its project was deleted under us): nothing to send.
            await asyncio.to_thread(
                self.store.report,
                item.id,
                owner,
                self.clock.now(),
                "",
                Attempted(None, 0.0, f"cannot build the request: {exc}", ""),
            )
            return
        data = body.encode("utf-8")
        headers = signed_headers(secret, int(self.clock.now().timestamp()), data)
        headers[EVENT_HEADER] = str(item.event_id)
        headers[WEBHOOK_HEADER] = hook.id
        async with self._slots:
            attempted = await self.sender.post(hook.url, data, headers)
        outcome = await asyncio.to_thread(
            self.store.report, item.id, owner, self.clock.now(), body, attempted
        )
        if outcome is not None and outcome.disabled:
            log.warning(
                "webhook disabled after failing for a day",
                extra={"webhook": hook.id, "project": hook.project, "url": hook.url},
            )

    async def drain(self, rounds: int = 1000) -> int:
        """Send everything due now, claiming batch after batch (at most `rounds`); the
        number of requests made."""
        made = 0
        for _ in range(rounds):
            s = self.settings
            claimed = await asyncio.to_thread(
                self.store.claim, s.owner, self.clock.now(), s.lease, s.batch
            )
            if not claimed:
                break
            results = await asyncio.gather(
                *(self._send(c) for c in claimed), return_exceptions=True
            )
            for c, result in zip(claimed, results, strict=True):
                if isinstance(result, BaseException):
                    if isinstance(result, asyncio.CancelledError):
                        raise result
                    log.error(
                        "a webhook request failed to be made or recorded: %s",
                        result,
                        extra={"webhook": c.webhook.id, "outbox": c.item.id},
                    )
            made += len(claimed)
        return made

    async def prune(self) -> int:
        """Drop finished rows and logged requests older than `keep`."""
        before = self.clock.now() - self.settings.keep
        return await asyncio.to_thread(self.store.prune, before)
