"""The inbound MX door (`--mx HOST:PORT`, port 25 in production): mail from the Internet for
the domains Postroom answers for, and nothing else. Never an open relay.

Recipients it takes:

* at a **bounce domain** (`--bounce-domain`, or `rp.<domain>` for each project's verified
  sending domain): a VERP return path `bounces+<token>@...` (bounces/verp.py) whose queue
  entry still exists (and, on `rp.<domain>`, belongs to that domain's project). The message is
  read as a report (bounces/parse.py): a bounce or a complaint becomes `bounce` / `complaint`
  events (bounces/report_events.py) for the message and the recipient the return path names,
  written in one transaction; the suppression feed (suppression/feed.py) turns hard bounces
  and complaints into suppression entries. Delays, success notices and auto-replies write
  nothing. `postmaster@rp.<domain>` is stored in that domain's project like hosted mail.
* at a **hosted domain** (a project's verified sending domain): any plain local part; the
  message is stored in that project (as captured: it is never relayed).

Every other recipient gets `550 5.7.1 Relay access denied`, whatever the address trick: an IP
literal, a local part holding `%` (percent hack) or `!` (bang path), any quoted local part
(`"user@elsewhere"@hosted.example`), or a domain nobody here hosts; the domain is compared in
A-labels and lower case. A source route (`<@hosted.example:user@elsewhere>`) is dropped by the
SMTP session (RFC 5321 §4.1.1.3), leaving `user@elsewhere`, which is refused; a trailing dot
is bad syntax there (501 5.1.3) before the door is asked. An unknown address at a bounce domain
gets `550 5.1.1`.

Recipient checks are asynchronous: the session's CheckRecipient output is answered by a look-up
on a worker thread (the platform's change counter, re-reading the verified domains only when
it moved; the queue entry of a return path), never on the event loop.

Replies:

    550 5.7.1 Relay access denied: ...          a recipient this server does not take mail for
    550 5.1.1 No such recipient here: ...       a bounce domain's address that is no return
                                                path of ours (or whose message is gone)
    451 4.3.0 Temporary failure ...             the store failed while checking or writing
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from postroom.bounces.parse import parse_report
from postroom.bounces.report_events import report_events
from postroom.bounces.verp import ReturnPathMatch, Verp, resolve
from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, PostroomError, Refusal, RefusalKind
from postroom.core.events import NewEvent
from postroom.core.ids import new_id
from postroom.core.platform import PlatformStore
from postroom.core.ports import QueueStore
from postroom.core.spooled import spooled_chunks
from postroom.core.types import DoorName, IncomingMessage, SessionInfo
from postroom.dns.dkim import normalize_domain
from postroom.doors.common import Acceptor, SessionLog

log = logging.getLogger("postroom.doors")

RETURN_PATH_LABEL = "rp"  # as delivery/return_path.py and platform/domains.py
TEMPORARY = Refusal(RefusalKind.TEMPORARY_FAILURE, "Temporary failure, please try again later")
_ROUTING_CHARACTERS = ("%", "!", '"', "@", ":", "[", "\\")

# Writes the events of one report in one transaction (SqlQueueStore.record_reports).
RecordEvents = Callable[[Sequence[NewEvent]], None]


def relay_denied(address: str) -> Refusal:
    return Refusal(
        RefusalKind.RELAY_DENIED,
        f"Relay access denied: this server takes no mail for <{address}>",
    )


def unknown(address: str) -> Refusal:
    return Refusal(RefusalKind.UNKNOWN_RECIPIENT, f"No such recipient here: <{address}>")


@dataclass(frozen=True, slots=True)
class Domains:
    """The domains the door answers for, as read at one value of the change counter.
    `hosted`: verified domain -> project; `bounce`: return-path domain -> project (None for
    the `--bounce-domain` every project shares)."""

    generation: int | None
    hosted: Mapping[str, str]
    bounce: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class Hosted:
    project: str


@dataclass(frozen=True, slots=True)
class Bounce:
    match: ReturnPathMatch


Target = Hosted | Bounce


def split_recipient(address: str) -> tuple[str, str] | None:
    """(local part, domain in A-labels) of a recipient the door may take, or None when the
    address routes elsewhere or hides a route: no domain, an IP literal, a quoted local part,
    `%`, `!` or another routing character in the local part, a domain that is no host name."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or domain.startswith("["):
        return None
    if any(c in local for c in _ROUTING_CHARACTERS):
        return None
    if domain.endswith(".") or domain != domain.strip():
        return None
    try:
        return local, normalize_domain(domain)
    except InvalidInput:
        return None


def read_domains(platform: PlatformStore, bounce_domain: str, known: Domains | None) -> Domains:
    """Blocking: `known` when the change counter has not moved since it was read, else the
    verified domains and their return-path domains as stored now."""
    generation = platform.generation()
    if known is not None and known.generation == generation:
        return known
    hosted: dict[str, str] = {}
    bounce: dict[str, str | None] = {}
    for domain in platform.list_domains():
        if domain.verified:
            hosted[domain.name.lower()] = domain.project_id
            bounce[f"{RETURN_PATH_LABEL}.{domain.name.lower()}"] = domain.project_id
    if bounce_domain:
        bounce[bounce_domain.strip().lower().rstrip(".")] = None
    return Domains(generation, hosted, bounce)


class MxDoor:
    """The `SmtpDoor` (smtp/server.py) of the inbound MX listener."""

    checks_sender = True  # answered at once: a new transaction forgets the last one's targets
    checks_recipient = True

    def __init__(
        self,
        platform: PlatformStore,
        pipeline: Acceptor,
        queue: QueueStore,
        record: RecordEvents,
        verp: Verp,
        clock: Clock,
        session_log: SessionLog,
        bounce_domain: str = "",
        max_report_size: int = 40 * 1024 * 1024,
    ) -> None:
        self._platform = platform
        self._pipeline = pipeline
        self._queue = queue
        self._record = record
        self._verp = verp
        self._clock = clock
        self._log = session_log
        self._bounce_domain = bounce_domain
        self._max_report = max_report_size
        self._domains: Domains | None = None
        # What each accepted recipient of a session maps to (session id -> address -> target).
        self._targets: dict[str, dict[str, Target]] = {}

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        return None  # the MX offers no AUTH; nobody logs in here

    def check_sender(
        self, session: SessionInfo, address: str, params: Mapping[str, str]
    ) -> Refusal | None:
        """Any sender (reports come from the null sender, mail for hosted domains from
        anyone), answered at once; what the last transaction's recipients mapped to is
        forgotten, so a session keeps at most one transaction's worth."""
        self._targets.pop(session.session_id, None)
        return None

    def check_recipient(
        self, session: SessionInfo, mail_from: str, address: str, params: Mapping[str, str]
    ) -> Refusal | Awaitable[Refusal | None] | None:
        """Refused at once when the address cannot be local (a trick or no domain); else
        judged on a worker thread (domains, then the return path's queue entry)."""
        if split_recipient(address) is None:
            return relay_denied(address)
        return self._judge(session, address)

    async def _judge(self, session: SessionInfo, address: str) -> Refusal | None:
        try:
            target = await asyncio.to_thread(self._lookup, address)
        except PostroomError as exc:
            log.warning("MX recipient check failed: %s", exc)
            return TEMPORARY
        if isinstance(target, Refusal):
            return target
        self._targets.setdefault(session.session_id, {})[address.lower()] = target
        return None

    def _lookup(self, address: str) -> Target | Refusal:
        """Blocking: what `address` maps to, or the refusal."""
        split = split_recipient(address)
        if split is None:
            return relay_denied(address)
        local, domain = split
        domains = read_domains(self._platform, self._bounce_domain, self._domains)
        self._domains = domains
        if domain in domains.bounce:
            owner = domains.bounce[domain]
            match = resolve(address, self._verp, self._queue)
            if match is not None and owner in (None, match.project):
                return Bounce(match)
            if owner is not None and local.lower() == "postmaster":
                return Hosted(owner)
            return unknown(address)
        project = domains.hosted.get(domain)
        if project is None:
            return relay_denied(address)
        return Hosted(project)

    async def deliver(self, incoming: IncomingMessage) -> str:
        """Reports to return paths become events; mail for hosted domains is stored in each
        recipient's project (one copy per project, with that project's recipients)."""
        targets = self._targets.get(incoming.session.session_id, {})
        hosted: dict[str, list[str]] = {}
        bounces: list[ReturnPathMatch] = []
        for recipient in incoming.envelope.recipients:
            target = targets.get(recipient.lower())
            if isinstance(target, Hosted):
                hosted.setdefault(target.project, []).append(recipient)
            elif isinstance(target, Bounce):
                bounces.append(target.match)
            else:  # never accepted by this door: cannot happen, refuse rather than guess
                raise relay_denied(recipient)
        stored = ""
        if bounces:
            await self._take_report(incoming, bounces)
        for project, recipients in hosted.items():
            envelope = incoming.envelope
            kept = [i for i, r in enumerate(envelope.recipients) if r in recipients]
            narrowed = replace(
                envelope,
                recipients=tuple(envelope.recipients[i] for i in kept),
                rcpt_params=tuple(envelope.rcpt_params[i] for i in kept)
                if envelope.rcpt_params
                else (),
            )
            stored = await self._pipeline.accept(replace(incoming, envelope=narrowed), project)
        return stored or new_id(self._clock.now())

    async def _take_report(self, incoming: IncomingMessage, matches: list[ReturnPathMatch]) -> None:
        try:
            await asyncio.to_thread(self._record_report, incoming, matches)
        except PostroomError as exc:
            log.warning("a report to a return path could not be recorded: %s", exc)
            raise TEMPORARY from exc

    def _record_report(self, incoming: IncomingMessage, matches: list[ReturnPathMatch]) -> None:
        """Blocking: parse the message and write its events for each return path it reached."""
        raw = incoming.data
        if incoming.spooled is not None:
            raw += b"".join(spooled_chunks(incoming.spooled))
        report = parse_report(raw[: self._max_report])
        if report is None:
            log.info(
                "mail to a return path is no report",
                extra={"session": {"id": incoming.session.session_id}},
            )
            return
        now = self._clock.now()
        new: list[NewEvent] = []
        for match in matches:
            new += report_events(report, match.project, now, match.message_id, match.recipient)
        if new:
            self._record(new)

    def session_ended(self, summary: dict[str, Any]) -> None:
        self._targets.pop(str(summary.get("session_id", "")), None)
        self._log.session_ended(summary)

    def refused(self, door: DoorName, reason: str) -> None:
        self._log.refused(door, reason)
