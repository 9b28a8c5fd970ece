"""The acceptance pipeline every door feeds: prepare, persist durably, announce.

Without a submitter (the capture door, ingest, the testing API) the message goes into the given
project as captured: stored and visible, never relayed, whatever its addresses.

With a submitter (the submission doors; see pipeline/submission.py) the message is checked
first (From header, verified identities, line lengths, quota), fixed up (Message-ID, Date, Bcc)
and, for a live project, DKIM-signed; it is then stored with status "queued" together with its
deliveries (one per recipient, pipeline/deliveries.py), which the store writes as queue entries
in the same transaction, before the door says 250. Recipients on the suppression list (the
project's or the account's) get no delivery but a `suppressed` event, in that transaction; the
message is accepted for the others, and accepted with only events if every one is suppressed. A
capture project's submitted messages are stored as captured, with no deliveries. Either way the
message's sends (pipeline/quota.py) are counted in that transaction too; its quota reservation
is committed once it is stored, released otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from prometheus_client import Counter

from postroom.core.clock import Clock
from postroom.core.errors import ConfigError, PostroomError, Refusal, StorageError
from postroom.core.ids import new_id
from postroom.core.platform import DEFAULT_PROJECT
from postroom.core.ports import MessageStore
from postroom.core.types import (
    MESSAGE_SUPPRESSED,
    Delivery,
    IncomingMessage,
    MessageRecord,
    NewMessage,
    Summary,
)
from postroom.events.bus import EventBus, MessageEvent
from postroom.metrics import Metrics
from postroom.mime.tags import tags_for
from postroom.pipeline.complete import summary_and_tags
from postroom.pipeline.deliveries import deliveries_for
from postroom.pipeline.health import WriteHealth
from postroom.pipeline.received import received_header
from postroom.pipeline.shared_reads import SharedReads
from postroom.pipeline.submission import Prepared, SubmissionSteps, Submitter

log = logging.getLogger("postroom.pipeline")

# The suppression list's answers for (project, recipients) questions, one per question in
# order: (reason, scope) of each suppressed recipient, by lower-cased address (blocking: called
# in a worker thread, for the questions of every message accepted meanwhile: SharedReads).
SuppressionCheck = Callable[
    [Sequence[tuple[str, Sequence[str]]]], Sequence[dict[str, tuple[str, str]]]
]

INLINE_PARSE_LIMIT = 64 * 1024
BARE_LINE_ENDINGS_TAG = "bare-line-endings"
BARE_LINE_ENDINGS_WARNING = (
    "The message used bare CR or LF line endings; Postroom normalised them to CRLF. "
    "Many receiving servers refuse such mail (550 5.6.11)."
)


def _drop(early: asyncio.Future[dict[str, tuple[str, str]]] | None) -> None:
    """Give up a suppression read begun early: its answer (or failure) is not needed."""
    if early is not None:
        early.cancel()
        if early.done() and not early.cancelled():
            early.exception()  # retrieved: a failure not needed is not logged as unhandled


class AcceptancePipeline:
    def __init__(
        self,
        store: MessageStore,
        clock: Clock,
        bus: EventBus,
        metrics: Metrics,
        submission: SubmissionSteps | None = None,
        suppressions: SuppressionCheck | None = None,
    ) -> None:
        self._store = store
        self._suppressions = None if suppressions is None else SharedReads(suppressions)
        self._clock = clock
        self._bus = bus
        self._metrics = metrics
        self.submission = submission
        self.write_health = WriteHealth(clock)  # for /readyz: do commits succeed?
        self._counters: dict[str, tuple[Counter, Counter]] = {}
        # Ids of messages being accepted, until announced on the bus: the change feed
        # (events/feed.py) leaves them to this pipeline's announcement.
        self.in_flight: set[str] = set()

    def _door_counters(self, door: str) -> tuple[Counter, Counter]:
        """The per-door counters, looked up once (labels() is not free on the hot path)."""
        counters = self._counters.get(door)
        if counters is None:
            m = self._metrics
            counters = (m.messages_received.labels(door), m.bytes_received.labels(door))
            self._counters[door] = counters
        return counters

    async def accept(
        self,
        incoming: IncomingMessage,
        project: str = DEFAULT_PROJECT,
        *,
        submitter: Submitter | None = None,
        suppressed_out: dict[str, tuple[str, str]] | None = None,
    ) -> str:
        """Persist the message; return its id once it is durably committed.

        `submitter` (submission doors, sending API) runs the submission checks and decides the
        project (its `project` wins); raises a Refusal. `suppressed_out`, when given, receives
        the suppressed recipients found (lower-cased address: reason, scope), for an answer
        that names them (the native send API)."""
        started = self._clock.monotonic()
        now = self._clock.now()
        message_id = new_id(now)
        self.in_flight.add(message_id)
        try:
            return await self._accept(
                incoming, project, message_id, now, started, submitter, suppressed_out
            )
        finally:
            self.in_flight.discard(message_id)

    async def _accept(
        self,
        incoming: IncomingMessage,
        project: str,
        message_id: str,
        now: datetime,
        started: float,
        submitter: Submitter | None,
        suppressed_out: dict[str, tuple[str, str]] | None,
    ) -> str:
        if submitter is None:
            message = await self._add(self._draft(incoming, project, message_id, now))
        else:
            if self.submission is None:
                raise ConfigError("submission needs the platform store (no SubmissionSteps)")
            project = submitter.project
            # A live project's suppression read runs while the message is checked and signed
            # (one wait instead of two in a row); the cached snapshot tells whether the
            # project is live, and `prepare` has the last word (a capture project's answer is
            # not used).
            early: asyncio.Future[dict[str, tuple[str, str]]] | None = None
            view = self.submission.directory.peek(project)
            if self._suppressions is not None and view is not None and view.project.mode == "live":
                early = asyncio.ensure_future(
                    self._suppressions.ask((project, incoming.envelope.recipients))
                )
            try:
                prepared = await self.submission.prepare(incoming, submitter, message_id, now)
            except BaseException:
                _drop(early)
                raise
            quota = self.submission.quota
            try:
                suppressed: dict[str, tuple[str, str]] = {}
                if prepared.status != "queued":
                    _drop(early)
                elif early is not None:
                    suppressed = await early
                elif self._suppressions is not None:
                    suppressed = await self._suppressions.ask(
                        (project, incoming.envelope.recipients)
                    )
                if suppressed_out is not None:
                    suppressed_out.update(suppressed)
                draft = self._draft(incoming, project, message_id, now, prepared, suppressed)
                message = await self._add(draft)
            except BaseException:
                quota.release(prepared.reservation)
                raise
            quota.commit(prepared.reservation)
        self._announce(
            incoming, project, message_id, now, message, self._clock.monotonic() - started
        )
        return message_id

    async def accept_many(
        self,
        incomings: Sequence[IncomingMessage],
        project: str = DEFAULT_PROJECT,
        *,
        submitter: Submitter | None = None,
        suppressed_out: dict[str, tuple[str, str]] | None = None,
    ) -> list[str | PostroomError]:
        """`accept` for the messages of one request (SendBulkEmail, a native batch): each is
        accepted or refused on its own, and its answer (its id once durably committed, or the
        error that refused it) is in the list, in order. What every message shares is done
        once: one suppression query for all their recipients, their signatures in one worker
        thread (SubmissionSteps.prepare_many), their rows handed to the store together (one
        group commit). `suppressed_out` receives the suppressed recipients of all of them."""
        now = self._clock.now()
        started = self._clock.monotonic()
        ids = [new_id(now) for _ in incomings]
        self.in_flight.update(ids)
        try:
            return await self._accept_many(
                incomings, project, ids, now, started, submitter, suppressed_out
            )
        finally:
            self.in_flight.difference_update(ids)

    async def _accept_many(
        self,
        incomings: Sequence[IncomingMessage],
        project: str,
        ids: list[str],
        now: datetime,
        started: float,
        submitter: Submitter | None,
        suppressed_out: dict[str, tuple[str, str]] | None,
    ) -> list[str | PostroomError]:
        answers: list[str | PostroomError] = []
        drafts: list[tuple[int, NewMessage, Prepared | None]] = []
        if submitter is None:
            for index, incoming in enumerate(incomings):
                drafts.append((index, self._draft(incoming, project, ids[index], now), None))
                answers.append(ids[index])
        else:
            if self.submission is None:
                raise ConfigError("submission needs the platform store (no SubmissionSteps)")
            project = submitter.project
            prepared = await self.submission.prepare_many(incomings, submitter, ids, now)
            quota = self.submission.quota
            try:
                queued = [
                    r
                    for incoming, p in zip(incomings, prepared, strict=True)
                    if isinstance(p, Prepared) and p.status == "queued"
                    for r in incoming.envelope.recipients
                ]
                suppressed: dict[str, tuple[str, str]] = {}
                if queued and self._suppressions is not None:
                    suppressed = await self._suppressions.ask(
                        (project, list(dict.fromkeys(queued)))
                    )
                if suppressed_out is not None:
                    suppressed_out.update(suppressed)
                for index, (incoming, outcome) in enumerate(zip(incomings, prepared, strict=True)):
                    if isinstance(outcome, Refusal):
                        answers.append(outcome)
                        continue
                    mine = {
                        key: suppressed[key]
                        for key in (r.lower() for r in incoming.envelope.recipients)
                        if key in suppressed
                    }
                    draft = self._draft(incoming, project, ids[index], now, outcome, mine)
                    drafts.append((index, draft, outcome))
                    answers.append(ids[index])
            except BaseException:
                for outcome in prepared:
                    if isinstance(outcome, Prepared):
                        quota.release(outcome.reservation)
                raise
        try:
            stored = await asyncio.gather(
                *(self._add(draft) for _, draft, _ in drafts), return_exceptions=True
            )
        except BaseException:  # cancelled while committing: as accept, count none of them
            for _, _, done in drafts:
                if done is not None and self.submission is not None:
                    self.submission.quota.release(done.reservation)
            raise
        elapsed = self._clock.monotonic() - started
        for (index, draft, done), message in zip(drafts, stored, strict=True):
            if isinstance(message, BaseException):
                if done is not None and self.submission is not None:
                    self.submission.quota.release(done.reservation)
                if not isinstance(message, PostroomError):
                    raise message
                answers[index] = message
                continue
            if done is not None and self.submission is not None:
                self.submission.quota.commit(done.reservation)
            self._announce(incomings[index], project, draft.id, now, message, elapsed)
        return answers

    def _announce(
        self,
        incoming: IncomingMessage,
        project: str,
        message_id: str,
        now: datetime,
        message: NewMessage,
        elapsed: float,
    ) -> None:
        """Metrics and the bus's `new` event for a stored message."""
        stored_summary = message.summary
        assert stored_summary is not None, "the store returns messages with their summary"
        received, received_bytes = self._door_counters(incoming.session.door)
        self._metrics.commit_seconds.observe(elapsed)
        received.inc()
        received_bytes.inc(message.size)
        record = MessageRecord(
            id=message_id,
            project=project,
            created=now,
            size=message.size,
            read=False,
            envelope=message.envelope,
            summary=stored_summary,
            tags=message.tags,
            username=message.username,
            status=message.status,
            warnings=message.warnings,
        )
        self._bus.publish(MessageEvent("new", project, record=record))

    async def _add(self, draft: NewMessage) -> NewMessage:
        """store.add, telling write_health (for /readyz) whether the commit succeeded."""
        try:
            message = await self._store.add(draft)
        except StorageError as exc:
            self.write_health.failed(exc)
            raise
        self.write_health.succeeded()
        return message

    def _draft(
        self,
        incoming: IncomingMessage,
        project: str,
        message_id: str,
        now: datetime,
        prepared: Prepared | None = None,
        suppressed: Mapping[str, tuple[str, str]] | None = None,
    ) -> NewMessage:
        """The message to store: the Received header, the submission's changes if any, the
        summary of a small message."""
        data = incoming.data
        status = "captured"
        sends = 0
        deliveries: tuple[Delivery, ...] = ()
        suppressions: tuple[tuple[str, str, str], ...] = ()
        if prepared is not None:
            data = prepared.data
            status = prepared.status
            sends = prepared.reservation.recipients
            if status == "queued":  # a live project's message: deliver to every recipient
                deliveries = deliveries_for(incoming.envelope)
                if suppressed:  # ... but those the suppression list names
                    left_out = [d for d in deliveries if d.recipient.lower() in suppressed]
                    deliveries = tuple(d for d in deliveries if d not in left_out)
                    suppressions = tuple(
                        (d.recipient, *suppressed[d.recipient.lower()]) for d in left_out
                    )
                    if not deliveries:
                        status = MESSAGE_SUPPRESSED
        raw = received_header(incoming.session, incoming.envelope, message_id, now) + data
        # A big message the SMTP edge kept in a file stays there: the store reads it.
        spooled = incoming.spooled if prepared is None else prepared.body
        tags: tuple[str, ...] = incoming.tags
        warnings: tuple[str, ...] = ()
        if incoming.bare_line_endings:
            warnings = (BARE_LINE_ENDINGS_WARNING,)
            tags = (*tags, BARE_LINE_ENDINGS_TAG)
        # A small message is parsed here: that costs less than anywhere else (measured: the
        # writer process, busy with the commits, became the bottleneck). A big one goes without
        # its summary; the store's writer parses it, off this event loop.
        summary: Summary | None = None
        if spooled is None and incoming.summary is not None:
            # Written by the send APIs: its summary is known (the Received header above, and
            # submission's fix-ups and signature, change none of its fields).
            summary = incoming.summary
            found = tags_for(summary, incoming.envelope.recipients)
            tags = (*found, *(tag for tag in tags if tag not in found))
        elif spooled is None and len(raw) <= INLINE_PARSE_LIMIT:
            summary, tags = summary_and_tags(raw, incoming.envelope.recipients, tags)
        return NewMessage(
            id=message_id,
            project=project,
            created=now,
            raw=raw,
            envelope=incoming.envelope,
            summary=summary,
            tags=tags,
            username=incoming.session.auth_user,
            status=status,
            warnings=warnings,
            deliveries=deliveries,
            sends=sends,
            spooled=spooled,
            suppressed=suppressions,
            metadata=incoming.metadata,
            send_at=incoming.send_at,
        )
