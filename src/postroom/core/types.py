"""Value types that cross layers: envelopes, session facts, parsed summaries, stored records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

from postroom.core.spooled import SpooledData

DoorName: TypeAlias = Literal["capture", "submission", "submissions", "mx", "http", "ses", "ingest"]
"""How a message arrived: the SMTP listeners (capture, submission on 587, submissions on 465,
mx), the HTTP sending APIs (http: /api/v1/send; ses: the SES-compatible API) and `postroom
ingest`. Used in SessionInfo, by the listeners and as the `door` label of the metrics."""


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox as shown to people: display name (decoded) and addr-spec."""

    name: str
    address: str


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP envelope: reverse-path ("" for the null sender), forward-paths, ESMTP params.

    `mail_params` holds MAIL FROM parameters upper-cased (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH);
    `rcpt_params[i]` those of `recipients[i]` (NOTIFY, ORCPT).
    """

    mail_from: str
    recipients: tuple[str, ...]
    mail_params: Mapping[str, str] = field(default_factory=dict)
    rcpt_params: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TlsInfo:
    version: str
    cipher: str


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Facts about the SMTP session a message arrived in (for Received: and the record)."""

    door: DoorName
    session_id: str
    peer_host: str
    peer_port: int
    server_name: str
    helo: str = ""
    esmtp: bool = False
    tls: TlsInfo | None = None
    auth_user: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A complete message handed from a door to the acceptance pipeline.

    `data` is the message as received, dot-unstuffed, with CRLF line endings; or, for a big
    message the SMTP edge kept in a file, `data` is empty and `spooled` holds the message.
    `bare_line_endings` is true when the client sent bare CR or LF that the door normalised.
    """

    envelope: Envelope
    data: bytes
    session: SessionInfo
    bare_line_endings: bool = False
    spooled: SpooledData | None = None
    # The sender's own key/value pairs (the send API's `metadata`): stored with the message,
    # returned in its events and webhook payloads, never put in the message itself.
    metadata: Mapping[str, str] = field(default_factory=dict)
    # The send API's `send_at`: a live message's deliveries are not due before it.
    send_at: datetime | None = None
    # Tags stored with the message besides those it carries (X-Tags, plus-addresses): the SES
    # API's EmailTags and `ses:configuration-set:NAME`, never put in the message itself.
    tags: tuple[str, ...] = ()
    # The summary of `data` when the door knows it without parsing (a message the send APIs
    # wrote: mime/summary.summarize_built); the pipeline parses the message otherwise.
    summary: Summary | None = None

    @property
    def size(self) -> int:
        return len(self.data) + (self.spooled.size if self.spooled is not None else 0)


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """One attachment or inline part, as listed in summaries and the message view."""

    part_id: str
    filename: str
    content_type: str
    content_id: str
    size: int
    inline: bool


@dataclass(frozen=True, slots=True)
class Checksums:
    """Hex digests of a part's content as downloaded (decoded; an attached message's bytes)."""

    md5: str
    sha1: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Summary:
    """What listing and search need, parsed once at ingest."""

    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str
    message_id: str
    date: datetime | None
    snippet: str
    attachments: tuple[AttachmentInfo, ...]
    header_tags: tuple[str, ...]
    search_text: str
    return_path: str = ""
    defects: tuple[str, ...] = ()

    @property
    def attachment_count(self) -> int:
        return sum(1 for a in self.attachments if not a.inline)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message ready to persist. `raw` is uncompressed; the store compresses it. A big
    message's octets may continue in a file (`spooled`): the message is `raw` followed by
    them, and the store reads them from the file as it compresses (and parses) them.

    With `summary` None the store completes the message before writing it (parses the summary,
    derives the tags and appends `tags` to them; see core.ports.Completer), off the event loop,
    and `MessageStore.add` returns the completed message."""

    id: str
    project: str
    created: datetime
    raw: bytes
    envelope: Envelope
    summary: Summary | None
    tags: tuple[str, ...]
    username: str | None = None
    status: str = "captured"
    warnings: tuple[str, ...] = ()
    # What to deliver (a live project's message): written with the message, in its transaction.
    deliveries: tuple[Delivery, ...] = ()
    # Sends the message counts toward its project's sending quotas (pipeline/quota.py): the
    # store records them in the message's own transaction. 0 for mail that was not submitted.
    sends: int = 0
    spooled: SpooledData | None = None
    # Recipients of a live message left out because the suppression list names them:
    # (recipient, reason, scope "project" or "account"); a `suppressed` event each.
    suppressed: tuple[tuple[str, str, str], ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)  # see IncomingMessage
    send_at: datetime | None = None  # its deliveries are due then (see IncomingMessage)

    @property
    def size(self) -> int:
        """Octets of the whole message."""
        return len(self.raw) + (self.spooled.size if self.spooled is not None else 0)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A stored message without its raw bytes (see MessageStore.raw)."""

    id: str
    project: str
    created: datetime
    size: int
    read: bool
    envelope: Envelope
    summary: Summary
    tags: tuple[str, ...]
    username: str | None
    status: str
    warnings: tuple[str, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)  # see IncomingMessage


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of a listing, newest first, with the counts Mailpit's list response carries."""

    messages: tuple[MessageRecord, ...]
    total: int
    unread: int
    matched: int
    matched_unread: int
    start: int


@dataclass(frozen=True, slots=True)
class MessageSlice:
    """One page of a listing, newest first, without counting the matches: the project's counts
    (kept as messages come and go, so cheap) and whether more matches follow the page.
    `tags`: the project's tags in use, read with the page when asked for (else None)."""

    messages: tuple[MessageRecord, ...]
    total: int
    unread: int
    more: bool
    start: int
    tags: tuple[str, ...] | None = None


# Queue entry states. An entry is pending while QUEUED (due at `next_attempt`, unless leased)
# or HELD (an operator stopped it: not delivered until released); finished when DELIVERED,
# FAILED or CANCELLED (an operator gave it up).
QUEUED = "queued"
HELD = "held"
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"
PENDING_STATES = (QUEUED, HELD)

# A live message's status (MessageRecord.status) as its recipients are finished; a capture
# project's messages are "captured".
MESSAGE_QUEUED = "queued"  # no recipient finished yet (some may be deferred)
MESSAGE_DELIVERING = "delivering"  # some recipients finished, others still pending
MESSAGE_DELIVERED = "delivered"  # every recipient delivered
MESSAGE_BOUNCED = "bounced"  # every recipient failed
MESSAGE_PARTIALLY_BOUNCED = "partially_bounced"  # finished: some delivered, some failed
MESSAGE_CANCELLED = "cancelled"  # finished: every recipient cancelled by an operator
MESSAGE_SUPPRESSED = "suppressed"  # every recipient on the suppression list: nothing to deliver


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient of a new message to deliver, as the pipeline builds it.

    `domain` is the recipient's domain in lower-case A-labels (IDNA), what MX routing looks
    up (a domain literal such as `[192.0.2.1]` stays as written). The DSN parameters (RFC 3461)
    are passed on to the next hop and decide the notices: `notify` is RCPT NOTIFY (`NEVER`, or
    `SUCCESS`, `FAILURE`, `DELAY` joined by commas; None when not given), `orcpt` RCPT ORCPT as
    given (`rfc822;user@example.com`, xtext), `ret` and `envid` the message's MAIL RET and
    ENVID."""

    recipient: str
    domain: str
    notify: str | None = None
    orcpt: str | None = None
    ret: str | None = None
    envid: str | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One recipient of a live project's message and the state of its delivery.

    `status` is QUEUED or HELD (pending), DELIVERED, FAILED or CANCELLED. A queued entry is due at
    `next_attempt`; while a worker holds it, `lease_owner` names the worker and
    `lease_expires` says when others may take it over."""

    id: int
    message_id: str
    project: str
    delivery: Delivery
    status: str
    attempts: int
    next_attempt: datetime
    created: datetime
    last_error: str | None = None
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    delay_notified: bool = False  # the sender got a delay notice for this recipient

    @property
    def recipient(self) -> str:
        return self.delivery.recipient

    @property
    def domain(self) -> str:
        return self.delivery.domain

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATES


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt of one recipient, as the worker saw it: when it began and how long
    it took, the server that answered (MX host name, IP address and port), our local address,
    the TLS version and cipher (empty without TLS), and the full reply (its lines joined by
    newlines). `earlier` lists the hosts tried before in the same attempt and why they failed
    ("mx.example.net[192.0.2.1]: 451 4.4.1 Connection failed ..."). `tls_policy` names the
    TLS policy the attempt was held to (MTA-STS, a configured one) and its failures, if any."""

    started: datetime
    duration: float  # seconds
    code: int
    enhanced: str
    reply: str
    mx_host: str = ""
    ip: str = ""
    port: int = 0
    local_address: str = ""
    tls_version: str = ""
    tls_cipher: str = ""
    earlier: tuple[str, ...] = ()
    tls_policy: str = ""


@dataclass(frozen=True, slots=True)
class Delivered:
    """A recipient delivered, to record (QueueStore.complete_many): the entry leased to
    `owner`, when, the event's `detail` (the reply, the remote MTA) and the attempt."""

    entry_id: int
    owner: str
    now: datetime
    detail: Mapping[str, Any] | None = None
    attempt: Attempt | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """A stored attempt: `outcome` is what the attempt made of the recipient (`delivery`,
    `deferred`, `bounce` or `expired`, as the event type)."""

    id: int
    entry_id: int
    message_id: str
    recipient: str
    outcome: str
    attempt: Attempt


QueueState = Literal["queued", "deferred", "held", "delivered", "failed", "cancelled"]
QUEUE_STATES: tuple[QueueState, ...] = (
    "queued",
    "deferred",
    "held",
    "delivered",
    "failed",
    "cancelled",
)
QueueAction = Literal["retry", "hold", "release", "cancel"]
QUEUE_ACTIONS: tuple[QueueAction, ...] = ("retry", "hold", "release", "cancel")


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which queue entries of a project: every given condition must hold. `state` is the
    entry's state as shown (`queued`: not tried yet, `deferred`: tried, due again later, and
    the entry statuses); `domain` the recipient's domain (A-labels); `recipient` the whole
    address, any case. `everything` must be set to select without any other condition."""

    entry_ids: tuple[int, ...] = ()
    message_ids: tuple[str, ...] = ()
    domain: str | None = None
    recipient: str | None = None
    state: QueueState | None = None
    everything: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.entry_ids or self.message_ids or self.domain or self.recipient or self.state
        )


@dataclass(frozen=True, slots=True)
class DomainQueue:
    """A project's pending entries for one recipient domain."""

    domain: str
    queued: int  # due or deferred
    held: int
    oldest: datetime
    next_attempt: datetime | None  # the soonest of the queued ones
    last_error: str | None  # of the most recently tried one


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """A project's queue: entries per state, and its pending entries per domain (most first)."""

    states: Mapping[str, int]
    domains: tuple[DomainQueue, ...]
