"""The delivery worker: takes due queue entries and hands them to the next hop.

One pass (`run_once`) claims due entries with a lease and groups them by message; for each
message it finds the route of every recipient domain (a relay for the domain, the smarthost,
else MX routing through the injected resolver) and merges the domains whose next hops are the
same site, so their recipients share one transaction (per envelope sender: with VERP each
recipient has its own). It tries the hosts in order: the next address and the next MX after a
connection failure or a refused greeting, STARTTLS per the TLS policy (opportunistic: a failed
handshake is retried once in the clear). Connections are reused (delivery/connections.py):
after its transactions a connection is kept, and the next delivery to the same next hop says
RSET and sends over it, up to the site's messages per connection; kept connections idle for
`settings.connection_idle` seconds are closed at the end of a pass. Each recipient is then
reported exactly once: delivered (`complete`), failed for good (`fail`, a 5xx or a permanent
routing answer), or deferred to the retry schedule (`defer`), or failed as expired (5.4.7)
once the queue lifetime is over. Destinations run concurrently up to `settings.concurrency`;
per site limits (connections, messages per connection, message and connection rates) come
from the shaper. A shaping wait is never sat out inside a claimed batch when it is long: the
recipients of a suspended site (after a push-back), or whose site's connection or message rate
lets nothing go for more than `settings.max_shaping_wait` seconds, are postponed — their lease
given back and their next attempt set to when the site takes mail again, with no attempt
counted and no event written — so that the batch ends at once and the delivery loop goes on
claiming other sites' work (nor can a suspension outlast the lease). Shorter rate waits are
sat out in place, on the injected clock: a test moves its fake clock past them. A delivery
whose connection to one MX host failed (the site backed off for it) still tries the site's
next hosts.

The worker never decides SMTP codes of its own beyond the client's local replies; every
outcome carries the remote host and its full reply in the entry's `last_error`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import ssl
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Literal
from urllib.parse import unquote, urlsplit

from postroom.core.clock import Clock
from postroom.core.errors import ConfigError, NotFound, PostroomError
from postroom.core.ids import new_id
from postroom.core.ports import MessageStore, QueueStore
from postroom.core.tls_reports import SUCCESS
from postroom.core.types import Attempt, Delivered, MessageRecord, NewMessage, QueueEntry
from postroom.delivery.connections import Connection, ConnectionCache, NextHop
from postroom.delivery.mta_sts import Lookup, MtaSts, Policy, tls_result_type
from postroom.delivery.notices import Notices
from postroom.delivery.pools import PoolMember, ProjectPools
from postroom.delivery.recorder import CompletionRecorder
from postroom.delivery.results import expired_detail, reply_detail
from postroom.delivery.return_path import ReturnPaths
from postroom.delivery.routing import MailHost, Route, RoutingError, resolve_route
from postroom.delivery.schedule import RetrySchedule
from postroom.delivery.shaping import Shaper, SiteStatus, is_push_back, site_name
from postroom.delivery.tls_reports import TlsReporting
from postroom.dns.resolver import DnsError, Resolver
from postroom.smtp.client import ConnectionFacts, SmtpClient, SmtpClientError, connect
from postroom.smtp.client_protocol import (
    ClientPolicy,
    OutboundMessage,
    OutboundRecipient,
    RecipientResult,
    ServerReply,
    TlsMode,
    local_reply,
)

log = logging.getLogger("postroom.delivery")

# Messages up to this size are loaded with their claimed batch, in one read; bigger ones one
# by one when their turn comes (a batch never holds many big messages in memory at once).
BATCH_LOAD_MAX = 64 * 1024
# A claimed batch's messages by id: (record, bytes), or None for one left to load on its own.
_Loaded = dict[str, tuple[MessageRecord, bytes] | None]
_NOT_LOADED = object()
# A kept connection idle for less than this many seconds is reused without an RSET round trip
# of its own: the RSET goes in the next transaction's pipelined group (if the connection turns
# out dead, before any reply, the transaction goes on another). One idle longer is proven
# alive with RSET first, as Postfix does.
HOT_IDLE = 2.0

RelayTls = Literal["none", "starttls", "implicit"]
# TLS to a destination: none; opportunistic (STARTTLS when offered, any certificate, plain when
# it fails); required (STARTTLS, any certificate); verify (STARTTLS, a certificate valid for the
# MX host name in the trust store).
DestinationTls = Literal["none", "opportunistic", "required", "verify"]
DESTINATION_TLS: tuple[DestinationTls, ...] = ("none", "opportunistic", "required", "verify")


@dataclass(frozen=True, slots=True)
class Relay:
    """A next hop given by configuration: the smarthost or a per-domain route."""

    host: str
    port: int = 25
    tls: RelayTls = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify: bool = True  # check the relay's certificate and name

    @classmethod
    def parse(cls, url: str) -> Relay:
        """`smtp://[user:pass@]host[:port]` (STARTTLS required), `smtps://...` (implicit
        TLS, port 465), `smtp+plain://...` (no TLS); `?verify=no` skips certificate checks."""
        parts = urlsplit(url.strip())
        schemes = {"smtp": "starttls", "smtps": "implicit", "smtp+plain": "none"}
        if parts.scheme not in schemes or not parts.hostname:
            raise ConfigError(
                f"relay {url!r}: expected smtp://[user:password@]host[:port] "
                "(or smtps://, smtp+plain://)"
            )
        tls: RelayTls = schemes[parts.scheme]  # type: ignore[assignment]
        try:
            port = parts.port or (465 if tls == "implicit" else 25)
        except ValueError:
            raise ConfigError(f"relay {url!r}: bad port") from None
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if (username is None) != (password is None):
            raise ConfigError(f"relay {url!r}: give both a user name and a password, or neither")
        verify = "verify=no" not in parts.query
        return cls(parts.hostname, port, tls, username, password, verify)


def parse_tls_policies(text: str) -> dict[str, DestinationTls]:
    """`DOMAIN=MODE, DOMAIN=MODE` (modes: none, opportunistic, required, verify) -> {domain:
    mode}. Raises ConfigError."""
    found: dict[str, DestinationTls] = {}
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        domain, eq, mode = item.partition("=")
        domain, mode = domain.strip().lower().rstrip("."), mode.strip().lower()
        if not eq or not domain:
            raise ConfigError(f"--delivery-tls-policy: expected DOMAIN=MODE, got {item.strip()!r}")
        for known in DESTINATION_TLS:
            if mode == known:
                found[domain] = known
                break
        else:
            raise ConfigError(
                f"--delivery-tls-policy: {domain}: expected none, opportunistic, required or "
                f"verify, got {mode!r}"
            )
    return found


def parse_routes(text: str) -> dict[str, Relay]:
    """`DOMAIN=URL, DOMAIN=URL` -> {domain: relay}. Raises ConfigError."""
    routes: dict[str, Relay] = {}
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        domain, eq, url = item.partition("=")
        domain = domain.strip().lower().rstrip(".")
        if not eq or not domain or not url.strip():
            raise ConfigError(f"--routes: expected DOMAIN=URL, got {item.strip()!r}")
        routes[domain] = Relay.parse(url)
    return routes


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    helo_name: str
    tls: DestinationTls = "opportunistic"
    smarthost: Relay | None = None
    routes: Mapping[str, Relay] = field(default_factory=dict)
    tls_policies: Mapping[str, DestinationTls] = field(default_factory=dict)  # per domain
    allow_private: bool = False  # MX hosts on loopback or private networks (tests, intranets)
    mx_port: int = 25
    lease: float = 600.0
    batch: int = 200
    concurrency: int = 20
    connect_timeout: float = 30.0
    source_address: str | None = None
    connection_idle: float = 5.0  # seconds a connection is kept open, idle, for reuse
    # Seconds of a site's connection or message rate waited out in place; longer waits, and
    # any suspension of the site, postpone the recipients (given back, due when it ends).
    max_shaping_wait: float = 2.0
    stop_timeout: float = 30.0  # seconds a stop waits for transactions in progress


@dataclass(slots=True)
class _Outcome:
    reply: ServerReply
    mx: str = ""  # the host name of the server that answered (or was tried last)
    ip: str = ""  # its address
    port: int = 0
    facts: ConnectionFacts | None = None  # of the connection that answered, if one was made
    earlier: tuple[str, ...] = ()  # hosts tried before and why they failed
    tls_policy: str = ""  # the TLS policy held to and its failures (Attempt.tls_policy)
    # Not attempted: the site's shaping lets nothing go before this time (`reply` says why).
    postponed: datetime | None = None

    @property
    def host(self) -> str:
        return f"{self.mx}[{self.ip}]" if self.mx else ""

    def attempt(self, started: datetime, duration: float) -> Attempt:
        reply, facts = self.reply, self.facts
        tls = facts.tls if facts is not None else None
        return Attempt(
            started=started,
            duration=duration,
            code=reply.code,
            enhanced=reply.enhanced,
            reply="\n".join(f"{reply.code} {line}" for line in reply.lines or ("",)),
            mx_host=self.mx,
            ip=facts.peer_host if facts is not None else self.ip,
            port=facts.peer_port if facts is not None else self.port,
            local_address=f"{facts.local_host}:{facts.local_port}" if facts is not None else "",
            tls_version=tls.version if tls is not None else "",
            tls_cipher=tls.cipher if tls is not None else "",
            earlier=self.earlier,
            tls_policy=self.tls_policy,
        )


def _outbound(
    record: MessageRecord, entries: Sequence[QueueEntry], raw: bytes, senders: Sequence[str]
) -> list[OutboundMessage]:
    """The mail transactions for `entries`: one per run of entries with the same envelope
    sender (`senders[i]` for `entries[i]`; with VERP each recipient has its own), in order."""
    envelope = record.envelope
    params = envelope.mail_params
    addresses = [envelope.mail_from, *(e.recipient for e in entries)]
    first = entries[0].delivery
    runs: list[tuple[str, list[QueueEntry]]] = []
    for entry, sender in zip(entries, senders, strict=True):
        if runs and runs[-1][0] == sender:
            runs[-1][1].append(entry)
        else:
            runs.append((sender, [entry]))
    return [
        OutboundMessage(
            sender,
            tuple(
                OutboundRecipient(e.recipient, e.delivery.notify or "", e.delivery.orcpt or "")
                for e in run
            ),
            raw,
            smtputf8="SMTPUTF8" in params or not all(a.isascii() for a in addresses),
            binary=params.get("BODY") == "BINARYMIME",
            ret=first.ret or "",
            envid=first.envid or "",
        )
        for sender, run in runs
    ]


class _Stopping(Exception):
    """The worker is stopping: a delivery that has no connection yet does not begin."""


class _Postponed(Exception):
    """A shaping wait too long to sit out inside a claimed batch (the site is suspended, or its
    rate lets nothing go for a while): the recipients are given back, due at `until`."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason

    def outcome(self) -> _Outcome:
        return _Outcome(local_reply(451, "4.7.0", self.reason), postponed=self.until)


class _Stale(Exception):
    """A kept connection reused without an RSET round trip was dead: the server closed it
    (or refused the RSET) before answering the transaction's MAIL."""


@dataclass(frozen=True, slots=True)
class _Tls:
    """What TLS mail for one recipient domain is held to: the mode of its MX connections (the
    configuration's), the MTA-STS lookup, and whether the domain wants TLS reports."""

    domain: str
    mode: DestinationTls
    sts: Lookup = field(default_factory=lambda: Lookup(None))
    report: bool = False

    @property
    def policy(self) -> Policy | None:
        return self.sts.active

    @property
    def special(self) -> bool:
        """Whether the domain needs connections of its own (not shared with the other domains
        of its site): a policy to check, or sessions to count."""
        return self.policy is not None or self.report or self.sts.error is not None


@dataclass(slots=True)
class _TlsNotes:
    """What the TLS policy made of one delivery, for the attempt's `tls_policy`."""

    tls: _Tls | None
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        if self.tls is None:
            return ""
        policy = self.tls.policy
        head = policy.describe() if policy is not None else ""
        if not head and self.tls.mode in ("verify", "required"):
            head = f"TLS {self.tls.mode} for {self.tls.domain} (configured)"
        if not head and self.tls.sts.error is not None:
            head = f"no MTA-STS policy of {self.tls.domain} could be had"
        return "; ".join(p for p in (head, *self.notes) if p)


class DeliveryWorker:
    def __init__(
        self,
        queue: QueueStore,
        store: MessageStore,
        resolver: Resolver,
        clock: Clock,
        settings: DeliverySettings,
        *,
        schedule: RetrySchedule | None = None,
        shaper: Shaper | None = None,
        rng: random.Random | None = None,
        owner: str | None = None,
        client_tls: ssl.SSLContext | None = None,
        verify_tls: ssl.SSLContext | None = None,
        return_paths: ReturnPaths | None = None,
        notices: Notices | None = None,
        pools: ProjectPools | None = None,
        mta_sts: MtaSts | None = None,
        tls_reports: TlsReporting | None = None,
        due: Callable[[datetime], None] | None = None,
    ) -> None:
        """`due` is told when an entry this worker holds is due again without a commit saying
        so: its result could not be recorded, so it waits for its lease to run out."""
        self._queue = queue
        self._store = store
        self._resolver = resolver
        self._clock = clock
        self.settings = settings
        self._schedule = schedule or RetrySchedule()
        self._shaper = shaper
        self._rng = rng or random.Random()
        self.owner = owner or f"worker-{new_id(clock.now())}"
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._opportunistic = client_tls or opportunistic_context()
        # Certificates checked against the trust store and the host name (relays with
        # verification, `verify` destinations, MTA-STS); tests give a test CA's.
        self._verify = verify_tls or ssl.create_default_context()
        self._closed: dict[str, asyncio.Event] = {}
        self._return_paths = return_paths
        self._notices = notices
        self._site_of: dict[str, str] = {}  # recipient domain -> its site, as last routed
        self._cache = ConnectionCache()
        self._pools = pools
        self.mta_sts = mta_sts
        self.tls_reports = tls_reports
        self._stopping = False
        self._stopped = asyncio.Event()  # set with _stopping: wakes the shaping waits
        self._passes: set[asyncio.Task[int]] = set()  # delivery passes in progress
        self._unreported: set[int] = set()  # entries claimed whose result is not recorded yet
        self._records: set[asyncio.Task[object]] = set()  # recording writes in progress
        self._completions = CompletionRecorder(queue.complete_many)
        self._due = due

    # Passes ------------------------------------------------------------------------------

    async def drain(self) -> int:
        """Passes until no full batch is left (or the worker stops); the entries handled."""
        total = 0
        while not self._stopping:
            handled = await self.run_once()
            total += handled
            if handled < self.settings.batch:
                break
        return total

    async def run_once(self) -> int:
        """Claim due entries and deliver them; the number of entries handled.

        The pass runs as a task of its own, shielded: cancelling the caller (the supervisor
        stopping the delivery job) leaves transactions in progress to finish, so that a stop
        never cuts a transaction the receiver may already have accepted; `close()` waits for
        them."""
        if self._stopping:
            return 0
        task = asyncio.get_running_loop().create_task(self._pass())
        self._passes.add(task)
        task.add_done_callback(self._passes.discard)
        return await asyncio.shield(task)

    async def _pass(self) -> int:
        now = self._clock.now()
        lease = timedelta(seconds=self.settings.lease)
        entries = await asyncio.to_thread(
            self._queue.claim, self.owner, now, lease, self.settings.batch
        )
        self._unreported.update(e.id for e in entries)
        messages: dict[str, list[QueueEntry]] = {}
        for entry in entries:
            messages.setdefault(entry.message_id, []).append(entry)
        try:
            loaded = await self._load(entries)
            await asyncio.gather(*(self._message(group, loaded) for group in messages.values()))
        finally:
            await self._close_idle(self.settings.connection_idle)
        return len(entries)

    async def stop(self, timeout: float | None = None) -> int:
        """Claim nothing more and begin no new transaction; let the transactions in progress
        finish, for at most `timeout` seconds (default: settings.stop_timeout), then cancel
        what is left, and give back the entries whose result was not recorded (released
        untried: due again at once, for this or another process). Returns how many were
        given back.

        A transaction cut by the timeout may have been accepted by the receiver without our
        knowing (the entry is then delivered again, as after a crash); one that finished in
        time is recorded, never repeated."""
        self._stopping = True
        self._stopped.set()
        for event in self._closed.values():  # deliveries waiting for a connection slot
            event.set()
        wait = self.settings.stop_timeout if timeout is None else timeout
        passes = set(self._passes)
        if passes:
            _, late = await asyncio.wait(passes, timeout=wait)
            if late:
                log.warning(
                    "delivery stopping: %d pass(es) still running after %.0f s are cancelled",
                    len(late),
                    wait,
                )
                for task in late:
                    task.cancel()
                await asyncio.wait(late, timeout=10.0)
        if self._records:  # results being written when their delivery was cancelled
            await asyncio.wait(set(self._records), timeout=30.0)
        left, self._unreported = sorted(self._unreported), set()
        released = 0
        for entry_id in left:
            try:
                if await asyncio.to_thread(self._queue.release, entry_id, self.owner):
                    released += 1
            except PostroomError:
                log.exception("releasing queue entry %s failed; its lease runs out", entry_id)
        if released:
            log.info("delivery stopping: %d queue entries given back untried", released)
        return released

    async def shutdown(self) -> None:
        """When the server stops: `stop()`, then `close()`."""
        await self.stop()
        await self.close()

    async def close(self) -> None:
        """QUIT every connection kept for reuse and store the TLS report counts."""
        await self._close_idle(0.0)
        if self.tls_reports is not None:
            await self.tls_reports.flush()

    async def _load(self, entries: Sequence[QueueEntry]) -> _Loaded | None:
        """The messages of a claimed batch, in one read (those up to BATCH_LOAD_MAX octets;
        bigger ones are left to load one by one); None when that read failed (each message
        is then loaded on its own, so that one corrupt message fails alone)."""
        keys = list(dict.fromkeys((e.project, e.message_id) for e in entries))
        try:
            return await asyncio.to_thread(self._store.get_many_with_raw, keys, BATCH_LOAD_MAX)
        except PostroomError as exc:
            log.warning("loading %d messages at once failed (%s): one by one", len(keys), exc)
            return None

    async def _source(
        self, first: QueueEntry, loaded: _Loaded | None
    ) -> tuple[MessageRecord, bytes]:
        """The message of `first` (taken out of the batch's `loaded`, if there). Raises
        NotFound."""
        if loaded is not None:
            found = loaded.pop(first.message_id, _NOT_LOADED)
            if found is _NOT_LOADED:
                raise NotFound(f"message {first.message_id} not found")
            if isinstance(found, tuple):
                return found
        return await asyncio.to_thread(self._store.get_with_raw, first.project, first.message_id)

    async def _message(self, entries: list[QueueEntry], loaded: _Loaded | None = None) -> None:
        """One message's claimed recipients: load it (unless `loaded` holds it), route each
        recipient domain, and deliver to each destination (domains with the same next hops
        share a transaction, unless one has a TLS policy or wants TLS reports)."""
        first = entries[0]
        began = (self._clock.now(), self._clock.monotonic())
        try:
            try:
                record, raw = await self._source(first, loaded)
            except NotFound:
                gone = local_reply(550, "5.0.0", "The message is no longer stored")
                for entry in entries:
                    await self._report(entry, _Outcome(gone), began)
                return
            by_domain: dict[str, list[QueueEntry]] = {}
            for entry in entries:
                by_domain.setdefault(entry.domain, []).append(entry)
            routes = await asyncio.gather(*(self._route_or_error(d) for d in by_domain))
            Key = tuple[str, Relay | None, str | None]
            destinations: dict[Key, tuple[Route, Relay | None, _Tls | None]] = {}
            members: dict[Key, list[QueueEntry]] = {}
            for (domain, group), routed in zip(by_domain.items(), routes, strict=True):
                if isinstance(routed, RoutingError):
                    code = 451 if routed.temporary else 550
                    outcome = _Outcome(local_reply(code, routed.enhanced, routed.text))
                    for entry in group:
                        await self._report(entry, outcome, began, (record, raw))
                    continue
                route, relay, tls = routed
                own = domain if tls is not None and tls.special else None
                key = (site_name(h.name for h in route.hosts), relay, own)
                destinations.setdefault(key, routed)
                members.setdefault(key, []).extend(group)
                self._remember_site(domain, key[0])
            await asyncio.gather(
                *(
                    self._destination(destinations[key], group, record, raw, began)
                    for key, group in members.items()
                )
            )
        except Exception:
            log.exception("delivery of message %s failed unexpectedly", first.message_id)
            for entry in entries:
                await self._report(entry, _Outcome(local_reply(451, "4.3.0", "Internal error")))

    async def _route_or_error(
        self, domain: str
    ) -> tuple[Route, Relay | None, _Tls | None] | RoutingError:
        try:
            route, relay = await self._route(domain)
        except RoutingError as exc:
            return exc
        if relay is not None:
            return route, relay, None  # the relay's URL says what TLS it gets
        return route, relay, await self._tls_of(domain)

    async def _tls_of(self, domain: str) -> _Tls:
        """The TLS mail to `domain` is held to: the configuration's mode, the domain's MTA-STS
        policy, and whether it publishes a TLS-RPT record."""
        mode = self.settings.tls_policies.get(domain, self.settings.tls)
        sts = Lookup(None)
        report = False
        if self.mta_sts is not None:
            try:
                sts = await self.mta_sts.lookup(domain)
            except Exception:  # a policy lookup never stops delivery on its own
                log.exception("the MTA-STS lookup of %s failed", domain)
        if self.tls_reports is not None:
            try:
                report = await self.tls_reports.wanted(domain)
            except Exception:
                log.exception("the TLS-RPT lookup of %s failed", domain)
        return _Tls(domain, mode, sts, report)

    def _remember_site(self, domain: str, site: str) -> None:
        if len(self._site_of) > 100_000:
            self._site_of.clear()
        self._site_of[domain] = site

    async def _destination(
        self,
        routed: tuple[Route, Relay | None, _Tls | None],
        entries: list[QueueEntry],
        record: MessageRecord,
        raw: bytes,
        began: tuple[datetime, float],
    ) -> None:
        """Deliver one message to one destination (one or more domains with the same next
        hops) and report each recipient. The recording happens after the delivery's slot of
        `settings.concurrency` is given back: the next delivery does not wait for a commit."""
        async with self._limit:
            if self._stopping:
                return  # stopping: no new transaction; stop() gives the entries back
            try:
                sender = record.envelope.mail_from
                if self._return_paths is not None:
                    senders = await self._return_paths.senders(sender, entries)
                else:
                    senders = [sender for _ in entries]
                member = await self._member(entries[0].project, routed)
                transactions = _outbound(record, entries, raw, senders)
                outcomes = await self._send(routed, transactions, member)
            except _Stopping:
                return  # stopped before a connection was had: given back untried
            except _Postponed as postponed:
                outcomes = [postponed.outcome() for _ in entries]  # nothing tried
            except Exception:
                log.exception("delivery of message %s failed unexpectedly", record.id)
                failed = _Outcome(local_reply(451, "4.3.0", "Internal error"))
                outcomes = [failed for _ in entries]
        source = (record, raw)
        later = [(e, o) for e, o in zip(entries, outcomes, strict=True) if o.postponed is not None]
        if later:
            await self._postpone(later, began, source)
        # In recipient order; each run of recipients delivered goes into one group commit
        # together, not one commit after the other.
        run: list[Coroutine[object, object, None]] = []
        for entry, outcome in zip(entries, outcomes, strict=True):
            if outcome.postponed is not None:
                continue
            report = self._report(entry, outcome, began, source)
            if outcome.reply.positive:
                run.append(report)
                continue
            if run:
                await asyncio.gather(*run)
                run = []
            await report
        if run:
            await asyncio.gather(*run)

    # Routing and sending ------------------------------------------------------------------

    async def _route(self, domain: str) -> tuple[Route, Relay | None]:
        settings = self.settings
        relay = settings.routes.get(domain) or settings.smarthost
        if relay is None:
            route = await resolve_route(
                domain,
                self._resolver,
                self._rng,
                allow_private=settings.allow_private,
                port=settings.mx_port,
            )
            return route, None
        try:
            addresses = [str(ipaddress.ip_address(relay.host))]
        except ValueError:
            addresses = await self._relay_addresses(relay.host)
        host = MailHost(relay.host, 0, tuple(addresses), relay.port)
        return Route(domain, (host,)), relay

    async def _relay_addresses(self, name: str) -> list[str]:
        try:
            addresses = [*await self._resolver.a(name), *await self._resolver.aaaa(name)]
        except DnsError as exc:
            raise RoutingError("4.4.3", f"DNS lookup for relay {name} failed: {exc}") from exc
        if not addresses:
            raise RoutingError("4.4.3", f"relay {name} has no address")
        return addresses

    async def _member(
        self, project: str, routed: tuple[Route, Relay | None, _Tls | None]
    ) -> PoolMember | None:
        """The pool address (and EHLO name) a project's delivery goes out from: one with a
        kept connection to the first next hop if there is one, else the next in turn."""
        if self._pools is None:
            return None
        pool = await self._pools.pool(project)
        if pool is None:
            return None
        route, relay, tls = routed
        first = route.hosts[0]
        mode = self._host_mode(first.name, tls)
        for member in pool.members:
            if self._cache.has(self._hop(first.addresses[0], first.port, member, relay, mode)):
                return member
        return self._pools.next_member(pool)

    def _hop(
        self,
        address: str,
        port: int,
        member: PoolMember | None,
        relay: Relay | None,
        mode: DestinationTls | None = None,
    ) -> NextHop:
        settings = self.settings
        policy = (relay, mode or settings.tls)
        if member is not None:
            return NextHop(address, port, member.address, member.ehlo, policy)
        source = settings.source_address or ""
        return NextHop(address, port, source, settings.helo_name, policy)

    def _host_mode(self, host: str, tls: _Tls | None) -> DestinationTls:
        """The TLS a connection to MX `host` gets: `verify` when an MTA-STS policy lists it
        (testing mode too: its failures are then recorded and the connection made again
        without), else the configured mode."""
        if tls is None:
            return self.settings.tls
        policy = tls.policy
        if policy is not None and policy.matches(host):
            return "verify"
        return tls.mode

    def _policy(self, relay: Relay | None, tls: DestinationTls, helo: str) -> ClientPolicy:
        mode: TlsMode = "required" if tls == "verify" else tls
        if relay is not None:
            mode = "required" if relay.tls == "starttls" else "none"
        return ClientPolicy(
            helo,
            tls=mode,
            username=relay.username if relay else None,
            password=relay.password if relay else None,
        )

    def _context(self, relay: Relay | None, tls: DestinationTls) -> ssl.SSLContext:
        if relay is not None:
            return self._verify if relay.verify else self._opportunistic
        return self._verify if tls == "verify" else self._opportunistic

    async def _send(
        self,
        routed: tuple[Route, Relay | None, _Tls | None],
        messages: Sequence[OutboundMessage],
        member: PoolMember | None = None,
    ) -> list[_Outcome]:
        """Deliver `messages` (one message's transactions for one destination) over one
        connection (a kept one when there is one) to the first host that takes them; an
        outcome per recipient, in order.

        With an MTA-STS policy in enforce mode, MX hosts it does not list are skipped and the
        others must pass TLS with a verified certificate, else they count as failed (never
        permanently). In testing mode the same failures are only recorded (in the attempt's
        `tls_policy` and the TLS report) and the mail goes as without a policy."""
        route, relay, tls = routed
        site = site_name(h.name for h in route.hosts)
        notes = _TlsNotes(tls)
        last = _Outcome(local_reply(451, "4.4.1", "No host could be reached"))
        earlier: list[str] = []
        permanent_everywhere = True
        policy = tls.policy if tls is not None else None
        # A connection to a host failed: the delivery goes on to the site's next hosts even
        # though the failure may have suspended the site (the suspension holds for the next
        # deliveries, which are postponed).
        walking = False
        try:
            for host in route.hosts:
                mode = self._host_mode(host.name, tls)
                if tls is not None and policy is not None and not policy.matches(host.name):
                    why = f"{host.name} is not an MX host of the {policy.describe()}"
                    self._count(tls, "validation-failure", host.name, "", "")
                    if policy.mode == "enforce":
                        reply = local_reply(451, "4.7.5", f"{why}; not delivered there")
                        ip = host.addresses[0] if host.addresses else ""
                        last = _Outcome(reply, host.name, ip, host.port, None, tuple(earlier))
                        earlier.append(f"{last.host}: {reply}")
                        notes.notes.append(why)
                        permanent_everywhere = False
                        continue
                    notes.notes.append(f"{why} (testing mode: delivered anyway)")
                for address in host.addresses:
                    while True:
                        hop = self._hop(address, host.port, member, relay, mode)
                        source = hop.source or "default"  # the shaper counts per site and source
                        failure: SmtpClientError | None = None
                        retried = False  # the session was counted (failed) before the second try
                        try:
                            connection = await self._connection(
                                hop, site, source, host.name, relay, walking=walking
                            )
                        except SmtpClientError as exc:
                            failure = exc
                        if failure is not None:
                            retry = self._tls_failed(tls, notes, host.name, hop, failure, mode)
                            if retry is not None:  # testing mode: once more as without the policy
                                retried = True
                                hop = self._hop(address, host.port, member, relay, retry)
                                try:
                                    connection = await self._connection(
                                        hop, site, source, host.name, relay, walking=walking
                                    )
                                    failure = None
                                except SmtpClientError as again:
                                    failure = again
                        if failure is not None:
                            last = _Outcome(
                                failure.reply, host.name, address, host.port, None, tuple(earlier)
                            )
                            earlier.append(f"{last.host}: {failure.reply}")
                            # A relay refusing our credentials or TLS is our configuration to fix:
                            # never bounce the mail for it (Postfix's smtp_sasl_auth_soft_bounce).
                            permanent_everywhere = (
                                permanent_everywhere
                                and failure.reply.permanent
                                and failure.stage not in ("auth", "starttls")
                            )
                            self._maybe_back_off(site, source, failure.reply)
                            walking = True
                            break  # the next address
                        if connection.messages == 0 and tls is not None and not retried:
                            self._connected(tls, notes, host.name, connection, mode)
                        carried = await self._carry(connection, messages, walking)
                        if carried is None:
                            continue  # a kept connection found dead before any reply: another
                        results, postponed = carried
                        for recipient in results:
                            self._maybe_back_off(site, source, recipient.reply)
                        answered = connection.client.facts
                        before = tuple(earlier)
                        text = notes.text()
                        outcomes = [
                            _Outcome(r.reply, host.name, address, host.port, answered, before, text)
                            for r in results
                        ]
                        if postponed is not None:  # the transactions not sent
                            count = sum(len(m.recipients) for m in messages) - len(results)
                            outcomes.extend(postponed.outcome() for _ in range(count))
                        return outcomes
        except _Postponed:
            if not walking:
                raise  # nothing tried: the whole delivery is postponed
            # The next host's connection cannot be had soon (its rate): this attempt ends
            # with the failures so far.
        if not permanent_everywhere:
            reply = last.reply
            if reply.permanent:
                reply = local_reply(451, "4.4.1", str(reply))
            last = _Outcome(reply, last.mx, last.ip, last.port, None, last.earlier)
        last.tls_policy = notes.text()
        return [last for m in messages for _ in m.recipients]

    def _count(
        self, tls: _Tls, result: str, mx_host: str, sending_ip: str, receiving_ip: str
    ) -> None:
        """Count one session for the domain's TLS report, if it wants reports."""
        if self.tls_reports is None or not tls.report:
            return
        self.tls_reports.record(
            tls.domain,
            tls.policy,
            result,
            mx_host=mx_host,
            sending_ip=sending_ip,
            receiving_ip=receiving_ip,
            policy_error=tls.sts.error is not None,
        )

    def _tls_failed(
        self,
        tls: _Tls | None,
        notes: _TlsNotes,
        host: str,
        hop: NextHop,
        exc: SmtpClientError,
        mode: DestinationTls,
    ) -> DestinationTls | None:
        """Record a connection that failed its TLS policy; the mode to try again with when
        the policy only tests (None: no second try)."""
        if tls is None or mode != "verify":
            return None
        if exc.stage != "starttls" and exc.tls_error is None:
            return None  # not TLS: a dead host, a refused greeting
        result = tls_result_type(exc.stage, exc.tls_error)
        self._count(tls, result, host, hop.source, hop.address)
        policy = tls.policy
        if policy is not None and policy.mode == "testing":
            notes.notes.append(
                f"{host}[{hop.address}]: {result} ({exc.reply.text}); testing mode: delivered "
                "without the policy's TLS"
            )
            return tls.mode
        notes.notes.append(f"{host}[{hop.address}]: {result} ({exc.reply.text})")
        return None

    def _connected(
        self,
        tls: _Tls,
        notes: _TlsNotes,
        host: str,
        connection: Connection,
        mode: DestinationTls,
    ) -> None:
        """A new connection for a domain with a policy or reports: count its TLS outcome."""
        facts = connection.client.facts
        secured = facts.tls is not None
        if tls.policy is None and tls.sts.error is not None:
            result = tls.sts.error.result_type  # no policy could be had: that is the outcome
        elif secured:
            result = SUCCESS
        else:
            result = "starttls-not-supported"
        self._count(tls, result, host, facts.local_host, facts.peer_host)
        if mode == "verify" and secured:
            notes.notes.append(f"certificate of {host} verified")

    async def _connection(
        self,
        hop: NextHop,
        site: str,
        source: str,
        name: str,
        relay: Relay | None,
        *,
        walking: bool = False,
    ) -> Connection:
        """A connection to `hop`: a kept one that answers RSET, else a new one once the
        site's limits allow. Raises SmtpClientError when a new one cannot be established,
        _Postponed when the site is suspended (unless `walking`: this delivery's connection
        to an earlier host of the site failed, so it tries this one) or its connection rate
        lets none open within `settings.max_shaping_wait` seconds."""
        while True:
            if self._stopping:
                raise _Stopping
            if not walking:
                self._suspended(site, source)
            while (kept := self._cache.take(hop)) is not None:
                idle = self._clock.monotonic() - kept.idle_since
                if idle < HOT_IDLE and kept.client.reuse():
                    kept.unproven = True  # its RSET goes with the next MAIL
                    return kept
                if await kept.client.reset():
                    return kept
                await self._drop(kept, succeeded=False)  # closed by the server meanwhile
            wait = (
                self._shaper.open_connection(
                    site, source, self._clock.monotonic(), ignore_suspension=walking
                )
                if (self._shaper is not None)
                else 0.0
            )
            if wait == 0:
                break
            if wait < 0:
                other = self._cache.take_for_site(site, source)
                if other is not None:  # room for ours: close an idle one to another hop
                    await self._drop(other, succeeded=True)
                    continue
                event = self._closed.setdefault(site, asyncio.Event())
                event.clear()
                await event.wait()
            else:
                if not walking:
                    self._suspended(site, source)  # a suspension begun meanwhile
                if wait > self.settings.max_shaping_wait:
                    raise self._postponed(wait, f"the connection rate of site {site}")
                await self._wait(wait)  # the connection rate, a short wait
        try:
            client = await self._connect(hop, name, relay)
        except BaseException:
            self._close(site, source, False)
            raise
        return Connection(client, hop, site, source)

    async def _connect(self, hop: NextHop, name: str, relay: Relay | None) -> SmtpClient:
        tls: DestinationTls = hop.policy[1]  # type: ignore[index]  # (relay, mode): _hop
        while True:
            try:
                return await connect(
                    hop.address,
                    hop.port,
                    self._policy(relay, tls, hop.helo),
                    ssl_context=self._context(relay, tls),
                    implicit_tls=relay is not None and relay.tls == "implicit",
                    server_hostname=name,
                    local_address=hop.source or None,
                    connect_timeout=self.settings.connect_timeout,
                )
            except SmtpClientError as exc:
                if exc.stage == "starttls" and tls == "opportunistic" and relay is None:
                    tls = "none"  # a broken TLS server: deliver in the clear
                    continue
                raise

    async def _transactions(
        self, connection: Connection, messages: Sequence[OutboundMessage], walking: bool
    ) -> tuple[list[RecipientResult], _Postponed | None]:
        """Send each transaction in turn on one connection (at the site's message rate); the
        recipients of transactions the connection did not live to carry get a temporary
        local reply. When the site's shaping postpones the next transaction (see `_pace`):
        the results so far, and the postponement, which holds for the transactions left."""
        client = connection.client
        results: list[RecipientResult] = []
        for message in messages:
            if client.closed:
                lost = local_reply(451, "4.4.2", "Connection closed before this transaction")
                results.extend(RecipientResult(r.address, lost) for r in message.recipients)
                continue
            try:
                await self._pace(connection.site, connection.source, walking)
            except _Postponed as postponed:
                return results, postponed
            connection.messages += 1
            result = await client.send(message)
            if connection.unproven:
                connection.unproven = False
                if result.mail is None and client.closed:
                    raise _Stale
            results.extend(result.recipients)
        return results, None

    async def _carry(
        self, connection: Connection, messages: Sequence[OutboundMessage], walking: bool
    ) -> tuple[list[RecipientResult], _Postponed | None] | None:
        """Run the transactions on `connection` (see `_transactions`), then keep it for reuse
        or close it. None when it was reused unproven and turned out dead before the server
        answered anything of the first transaction (nothing can have been accepted: the
        caller takes another)."""
        kept = stale = False
        try:
            results = await self._transactions(connection, messages, walking)
            kept = self._keep(connection)
            return results
        except _Stale:
            stale = True
            return None
        finally:
            if not kept:
                await self._drop(connection, succeeded=not stale)

    def _keep(self, connection: Connection) -> bool:
        """Put a connection back for reuse, unless it is closed or has carried the site's
        messages per connection; whether it was kept."""
        if connection.client.closed:
            return False
        if self._shaper is not None:
            limits = self._shaper.limits(connection.site, connection.source)
            if connection.messages >= limits.messages_per_connection:
                return False
        self._cache.put(connection, self._clock.monotonic())
        self._signal(connection.site)
        return True

    async def _drop(self, connection: Connection, *, succeeded: bool) -> None:
        try:
            await connection.client.quit()
        finally:
            self._close(connection.site, connection.source, succeeded)

    async def _close_idle(self, max_idle: float) -> None:
        if max_idle <= 0:
            idle = self._cache.take_all()
        else:
            idle = self._cache.expired(self._clock.monotonic(), max_idle)
        await asyncio.gather(*(self._drop(c, succeeded=True) for c in idle))

    # Shaping ------------------------------------------------------------------------------

    def sites_of(self, domains: Sequence[str]) -> dict[str, SiteStatus]:
        """The shaping state of the sites these recipient domains were last routed to (by
        this worker): concurrency, suspension and why. Domains not met yet are left out."""
        if self._shaper is None:
            return {}
        states: dict[str, SiteStatus] = {}
        for status in self._shaper.status(self._clock.monotonic()):
            states.setdefault(status.site, status)
        found = {}
        for domain in domains:
            site = self._site_of.get(domain)
            if site is not None and site in states:
                found[domain] = states[site]
        return found

    async def _pace(self, site: str, source: str, walking: bool = False) -> None:
        """Wait, on the injected clock, until the site's message rate lets one more message
        go, when that is within `settings.max_shaping_wait` seconds. Raises _Postponed when it
        is later, when the site is suspended (a push-back on another connection began one;
        unless `walking`, see `_connection`), or when the worker stops during the wait (then
        due again at once: given back untried)."""
        shaper = self._shaper
        if shaper is None:
            return
        while (
            wait := shaper.send_message(
                site, source, self._clock.monotonic(), ignore_suspension=walking
            )
        ) > 0:
            if not walking:
                self._suspended(site, source)
            if wait > self.settings.max_shaping_wait:
                raise self._postponed(wait, f"the message rate of site {site}")
            await self._wait(wait)
            if self._stopping:
                raise _Postponed(self._clock.now(), "stopping")

    def _suspended(self, site: str, source: str) -> None:
        """Raise _Postponed, due when the suspension ends, if the site is suspended."""
        if self._shaper is None:
            return
        left, why = self._shaper.suspension(site, source, self._clock.monotonic())
        if left > 0:
            raise self._postponed(left, f"site {site} is suspended for {left:.0f} s: {why}")

    def _postponed(self, seconds: float, reason: str) -> _Postponed:
        return _Postponed(self._clock.now() + timedelta(seconds=seconds), reason)

    async def _wait(self, seconds: float) -> None:
        """Wait `seconds` of the injected clock (a short rate wait), or until the worker
        stops, whichever comes first."""
        if self._stopping:
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({sleeper, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopped.cancel()

    def _close(self, site: str, source: str, succeeded: bool) -> None:
        if self._shaper is not None:
            self._shaper.close_connection(site, source, succeeded=succeeded)
        self._signal(site)

    def _signal(self, site: str) -> None:
        """A connection to `site` closed or became idle: wake who waits for one."""
        event = self._closed.get(site)
        if event is not None:
            event.set()

    def _maybe_back_off(self, site: str, source: str, reply: ServerReply) -> None:
        if (
            self._shaper is not None
            and not reply.local
            and is_push_back(reply.code, reply.enhanced, reply.text)
        ):
            self._shaper.back_off(site, source, self._clock.monotonic(), str(reply))

    # Reporting ----------------------------------------------------------------------------

    async def _delay_notice(
        self,
        source: tuple[MessageRecord, bytes] | None,
        entry: QueueEntry,
        outcome: _Outcome,
        now: datetime,
    ) -> NewMessage | None:
        """The one delay notice of a recipient deferred for long, if its sender gets one."""
        if self._notices is None or source is None or entry.delay_notified:
            return None
        record, raw = source
        until = entry.created + timedelta(seconds=self._schedule.lifetime)
        try:
            return await self._notices.delay(
                record, raw, entry, outcome.reply, outcome.mx, now, until
            )
        except Exception:  # a notice never keeps the deferral from being recorded
            log.exception("building the delay notice for queue entry %s failed", entry.id)
            return None

    async def _notice(
        self,
        source: tuple[MessageRecord, bytes] | None,
        entry: QueueEntry,
        outcome: _Outcome,
        now: datetime,
        *,
        expired: bool,
    ) -> NewMessage | None:
        """The bounce notice of a failed recipient, if its sender gets one."""
        if self._notices is None or source is None:
            return None
        record, raw = source
        try:
            return await self._notices.failure(
                record, raw, entry, outcome.reply, outcome.mx, now, expired=expired
            )
        except Exception:  # a notice never keeps the failure from being recorded
            log.exception("building the bounce notice for queue entry %s failed", entry.id)
            return None

    async def _postpone(
        self,
        postponed: Sequence[tuple[QueueEntry, _Outcome]],
        began: tuple[datetime, float],
        source: tuple[MessageRecord, bytes],
    ) -> None:
        """Give back recipients not attempted because their site's shaping lets nothing go for
        a while, due when it will: the lease is given back and the next attempt set, nothing
        else (no attempt counted, no event: the queue view shows the site's suspension and
        why). Never past the end of a recipient's queue lifetime; one whose lifetime is over
        fails as expired instead (with no attempt recorded)."""
        now = self._clock.now()
        lifetime = timedelta(seconds=self._schedule.lifetime)
        groups: dict[datetime, list[QueueEntry]] = {}
        for entry, outcome in postponed:
            assert outcome.postponed is not None
            deadline = entry.created + lifetime
            if now >= deadline:
                await self._report(entry, outcome, began, source)
                continue
            groups.setdefault(min(outcome.postponed, deadline), []).append(entry)
        for until, entries in groups.items():
            ids = [e.id for e in entries]
            try:
                await self._record(self._queue.postpone, ids, self.owner, until)
            except PostroomError:
                log.exception("postponing %d queue entries failed", len(ids))
                leases = [e.lease_expires for e in entries if e.lease_expires is not None]
                if self._due is not None and leases:
                    self._due(min(leases))  # taken over (by anyone) once the lease is over
            else:
                self._unreported.difference_update(ids)

    async def _report(
        self,
        entry: QueueEntry,
        outcome: _Outcome,
        began: tuple[datetime, float] | None = None,
        source: tuple[MessageRecord, bytes] | None = None,
    ) -> None:
        """Record the outcome of one recipient: the entry's new state, its event (with the
        reply, the remote MTA, hard or soft and the reason) and the attempt (began: wall
        clock and monotonic time of its start) in one transaction. A postponed outcome comes
        here only once the recipient's queue lifetime is over: it expires, with no attempt
        recorded (none was made)."""
        reply = outcome.reply
        text = f"{outcome.host}: {reply}" if outcome.host else str(reply)
        now = self._clock.now()
        started, mono = began or (now, self._clock.monotonic())
        attempt: Attempt | None = outcome.attempt(started, max(0.0, self._clock.monotonic() - mono))
        if outcome.postponed is not None:
            attempt = None
        detail = reply_detail(reply, outcome.mx, outcome.ip)
        queue = self._queue
        try:
            if reply.positive:
                await self._recorded(
                    self._completions.complete(
                        Delivered(entry.id, self.owner, now, detail, attempt)
                    )
                )
                log.info(
                    "delivered",
                    extra={"delivery": {"entry": entry.id, "to": entry.recipient, "reply": text}},
                )
            elif reply.permanent:
                notice = await self._notice(source, entry, outcome, now, expired=False)
                await self._record(
                    partial(queue.fail, attempt=attempt, notice=notice),
                    entry.id,
                    self.owner,
                    now,
                    text,
                    detail,
                )
                log.info(
                    "bounced",
                    extra={"delivery": {"entry": entry.id, "to": entry.recipient, "reply": text}},
                )
            else:
                when = self._schedule.next_attempt(
                    entry.attempts + 1, now, entry.created, self._rng
                )
                if when is None or outcome.postponed is not None:
                    expired = f"5.4.7 Delivery time expired; last error: {text}"
                    gone = expired_detail(reply, outcome.mx, outcome.ip)
                    notice = await self._notice(source, entry, outcome, now, expired=True)
                    await self._record(
                        partial(queue.fail, expired=True, attempt=attempt, notice=notice),
                        entry.id,
                        self.owner,
                        now,
                        expired,
                        gone,
                    )
                else:
                    detail["next_attempt"] = when.isoformat()
                    notice = await self._delay_notice(source, entry, outcome, now)
                    await self._record(
                        partial(queue.defer, attempt=attempt, notice=notice),
                        entry.id,
                        self.owner,
                        when,
                        text,
                        detail,
                        now,
                    )
        except PostroomError:
            log.exception("recording the result for queue entry %s failed", entry.id)
            if self._due is not None and entry.lease_expires is not None:
                self._due(entry.lease_expires)  # taken over (by anyone) once the lease is over
        else:
            self._unreported.discard(entry.id)

    async def _record(self, write: Callable[..., object], *args: object) -> None:
        """Run one recording write in a thread, to its end even when the delivery is cancelled
        (a stop's timeout): `stop()` waits for such writes before giving entries back."""
        await self._recorded(asyncio.to_thread(write, *args))

    async def _recorded(self, write: Coroutine[object, object, object]) -> None:
        """Await a recording write as its own task (see `_record`)."""
        task = asyncio.get_running_loop().create_task(write)
        self._records.add(task)
        task.add_done_callback(self._records.discard)
        await asyncio.shield(task)


def opportunistic_context() -> ssl.SSLContext:
    """Opportunistic TLS (RFC 7435): encrypt, but accept any certificate, as MTAs do when no
    policy (MTA-STS, DANE) asks for more."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
