"""The asyncio edge of the SMTP server: sockets, TLS, timers and limits around `SmtpSession`.

Everything SMTP is decided by the sans-IO session; this module carries its outputs out:
it writes replies, upgrades to TLS (`loop.start_tls`), asks the listener's door (`SmtpDoor`:
authenticate, check the sender and the recipients, deliver) and reports the answers back,
closes connections, enforces the connection limits (total, and per client: IPv4 address or
IPv6 /64) and the deadlines of `deadlines.py` (per command, per data block with a minimum
rate, per session).

Message data arrives from the session in pieces (`MessageData`): each connection keeps them in
memory up to a threshold and in a spool file beyond it (spool.py), and hands a spooled message
to the door by its path. One memory budget (spool.MemoryBudget, shared by every listener of the
process) counts the message octets held in memory; while it is spent, a new DATA or first BDAT
chunk gets 452 4.3.1 and the client tries again later; sessions already receiving go on.

A door's sender and recipient checks may answer at once (a value: no task, no await) or with
an awaitable (say, a database look-up); either way the session holds the input that follows
until the answer is in.

Deadlines are computed on the injected `Clock`; one event-loop timer per connection wakes the
edge at the earliest of them (the delay is measured on that clock too).

When a limit is reached, a new connection does not simply get 421 while slow clients hold
every slot: the least active connection that has not paid its way for `evict_after` seconds
(see `Deadlines.credit`: no step towards delivering mail for longest, or furthest behind the
minimum data rate; never one whose message is being accepted) is closed with 421 to make
room. Only when no connection qualifies is the newcomer refused.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from socket import socket
from typing import Any, Protocol, TypeAlias, TypeVar, cast

from postroom.core.clock import Clock
from postroom.core.errors import ConfigError, Refusal, RefusalKind, StorageError
from postroom.core.ids import new_id
from postroom.core.netkey import client_key
from postroom.core.types import DoorName, IncomingMessage, SessionInfo, TlsInfo
from postroom.smtp.deadlines import Deadlines
from postroom.smtp.protocol import (
    CheckAuth,
    CheckData,
    CheckRecipient,
    CheckSender,
    Close,
    DeliverMessage,
    DiscardMessage,
    MessageData,
    Output,
    Reply,
    SessionPolicy,
    SmtpSession,
    StartTls,
)
from postroom.smtp.replies import reply
from postroom.smtp.spool import MessageBuffer, Spool
from postroom.smtp.tls import enforce_minimum_version

log = logging.getLogger("postroom.smtp")
_T = TypeVar("_T")

CheckAnswer: TypeAlias = Refusal | None
"""A door's verdict on a sender or a recipient: None accepts; a Refusal is rendered as the
reply (smtp/refusals.py)."""

TEMPORARY_FAILURE = Refusal(
    RefusalKind.TEMPORARY_FAILURE, "Temporary failure, please try again later"
)
BUSY = Refusal(
    RefusalKind.SERVER_BUSY,
    "Too much mail is being received at once; please send this message again in a few minutes",
)
NOT_SPOOLED = Refusal(
    RefusalKind.TEMPORARY_FAILURE,
    "The message could not be kept while it arrived (no room on the server); "
    "please try again later",
)
DATA_CHUNK = 64 * 1024  # octets of message data a session holds before handing them over
PAUSE_THRESHOLD = 256 * 1024  # held input while busy before the edge stops reading
SHUTDOWN_GRACE = 5.0  # seconds stop() waits for connections to close before aborting them
EVICT_AFTER = 1.0  # seconds without progress before a session may be closed to make room
EVICT_BATCH = 64  # victims remembered from one scan of every connection
LINGER = 2.0  # seconds a lingering close reads and drops input before closing (see Close)

_PAUSE_BUSY = 1
_PAUSE_WRITE = 2


class SmtpDoor(Protocol):
    """What an SMTP listener asks of its door (doors/capture.py, doors/submission.py).

    `checks_sender` / `checks_recipient` say whether the door judges MAIL / RCPT at all: when
    False the session accepts every valid address without asking (the capture door's hot
    path costs nothing)."""

    @property
    def checks_sender(self) -> bool: ...

    @property
    def checks_recipient(self) -> bool: ...

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        """The authenticated user name, or None for bad credentials. May raise a Refusal to
        refuse without checking (auth_throttled: the session answers 454, then 421 and closes
        when the same session tries again)."""
        ...

    def check_sender(
        self, session: SessionInfo, address: str, params: Mapping[str, str]
    ) -> CheckAnswer | Awaitable[CheckAnswer]:
        """At MAIL FROM: accept (None) or refuse; at once or through an awaitable. Raising
        Refusal refuses too; any other exception answers 451 4.3.0."""
        ...

    def check_recipient(
        self, session: SessionInfo, mail_from: str, address: str, params: Mapping[str, str]
    ) -> CheckAnswer | Awaitable[CheckAnswer]:
        """At RCPT TO, like check_sender."""
        ...

    async def deliver(self, incoming: IncomingMessage) -> str:
        """Run the acceptance pipeline; the stored id, or raise Refusal."""
        ...

    def session_ended(self, summary: dict[str, Any]) -> None:
        """Keys: session_id, door, peer, helo, tls (version or None), auth_user, messages,
        rejects, errors, duration (seconds), reason (quit, timeout, too_many_errors,
        client_closed, tls_failed, shutdown, http_command, internal_error, auth_refused)."""
        ...

    def refused(self, door: DoorName, reason: str) -> None:
        """A negative reply was sent; `reason` is a short code such as too_many_recipients."""
        ...


@dataclass(frozen=True)
class Listener:
    """One SMTP listener: its door name, where it listens and what its sessions allow."""

    door: DoorName
    host: str
    port: int
    policy: SessionPolicy
    ssl_context: ssl.SSLContext | None = None  # for STARTTLS, or the whole session if implicit
    implicit_tls: bool = False  # RFC 8314 (port 465)
    max_connections: int = 1000
    max_per_ip: int = 100  # per client: IPv4 address, or IPv6 /64
    evict_after: float = EVICT_AFTER


class SmtpServer:
    def __init__(
        self, listener: Listener, door: SmtpDoor, *, clock: Clock, spool: Spool | None = None
    ) -> None:
        """`spool`: where message data goes as it arrives, and the memory budget (shared by
        the listeners of a process); None keeps every message in memory, without a limit."""
        if listener.implicit_tls and listener.ssl_context is None:
            raise ConfigError(f"SMTP door {listener.door!r}: implicit TLS needs a certificate")
        if listener.policy.starttls_available and listener.ssl_context is None:
            raise ConfigError(f"SMTP door {listener.door!r}: STARTTLS needs a certificate")
        if listener.max_connections < 1 or listener.max_per_ip < 1:
            raise ConfigError(f"SMTP door {listener.door!r}: connection limits must be positive")
        if listener.ssl_context is not None:
            enforce_minimum_version(listener.ssl_context)
        # The door decides which addresses it judges; the session asks only for those. The
        # edge answers CheckData (the memory budget) and takes message data in pieces.
        policy = replace(
            listener.policy,
            check_sender=door.checks_sender,
            check_recipient=door.checks_recipient,
            check_data=True,
            data_chunk=DATA_CHUNK,
        )
        self.policy = policy
        self.spool = spool if spool is not None else Spool(None)
        self.listener = listener
        self.clock = clock
        self.door = door
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._per_ip: dict[str, set[_Connection]] = {}  # client key -> its connections
        # When full: the stalest connections of the last scan (stalest last), and the time
        # before which a scan cannot find any (credits only move forward; see _evict_any).
        self._victims: list[_Connection] = []
        self._no_victim_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start()
        self._idle = asyncio.Event()
        self._too_many = reply(
            421, "4.7.0", f"{listener.policy.hostname} Too many connections, try again later"
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        await asyncio.to_thread(self.spool.prepare)
        listener = self.listener
        self._server = await loop.create_server(
            lambda: _Connection(self, loop),
            listener.host,
            listener.port,
            ssl=listener.ssl_context if listener.implicit_tls else None,
            ssl_handshake_timeout=(
                listener.policy.command_timeout if listener.implicit_tls else None
            ),
            backlog=1024,
            reuse_address=True,
        )
        log.info("SMTP door %s listening on %s:%d", listener.door, listener.host, self.port)

    @property
    def sockets(self) -> tuple[socket, ...]:
        return tuple(self._server.sockets) if self._server is not None else ()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        for sock in self.sockets:
            return int(sock.getsockname()[1])
        return 0

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def stop(self) -> None:
        """Stop accepting, let outstanding deliveries finish, then close every session (421)."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.shutdown()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._connections:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), SHUTDOWN_GRACE)
            except TimeoutError:
                for connection in list(self._connections):
                    connection.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # Used by connections -------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        # loop.create_task, not asyncio.ensure_future: on Python 3.11 looking up the running
        # loop costs a getpid() system call, several per message on the hot path.
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _admit(self, connection: _Connection, key: str) -> bool:
        if self._stopping:
            return False
        listener = self.listener
        peers = self._per_ip.get(key)
        if peers is not None and len(peers) >= listener.max_per_ip and not self._evict(peers):
            return False
        if len(self._connections) >= listener.max_connections and not self._evict_any():
            return False
        self._connections.add(connection)
        if peers is None:
            peers = self._per_ip[key] = set()
        peers.add(connection)
        return True

    def _evict(self, candidates: set[_Connection]) -> bool:
        """Close the least active of one client's connections to make room; False if none of
        them may go. (At most max_per_ip of them: a plain scan.)"""
        horizon = self.clock.monotonic() - self.listener.evict_after
        victim: _Connection | None = None
        for connection in candidates:
            credit = connection.credit()
            if credit is not None and credit <= horizon:
                horizon, victim = credit, connection
        if victim is None:
            return False
        victim.evict()
        return True

    def _evict_any(self) -> bool:
        """The same over every connection, without scanning them all for each newcomer: one
        scan keeps the EVICT_BATCH stalest, and when it finds none it says until when none can
        be found (a credit only moves forward, and a new connection's credit is the time it
        came). Approximate in one case: a connection whose credentials were being checked
        during that scan may become a candidate up to `evict_after` later than it could."""
        now = self.clock.monotonic()
        horizon = now - self.listener.evict_after
        victims = self._victims
        while victims:
            connection = victims.pop()
            credit = connection.credit()
            if connection in self._connections and credit is not None and credit <= horizon:
                connection.evict()
                return True
        if now < self._no_victim_until:
            return False
        scored = []
        oldest = now
        for connection in self._connections:
            credit = connection.credit()
            if credit is not None:
                oldest = min(oldest, credit)
                if credit <= horizon:
                    scored.append((credit, id(connection), connection))
        if not scored:
            self._no_victim_until = oldest + self.listener.evict_after
            return False
        stalest = heapq.nsmallest(EVICT_BATCH, scored)
        victims.extend(connection for _, _, connection in reversed(stalest[1:]))
        stalest[0][2].evict()
        return True

    def _release(self, connection: _Connection, key: str) -> None:
        if connection not in self._connections:
            return  # released already (evicted, then closed)
        self._connections.discard(connection)
        peers = self._per_ip.get(key)
        if peers is not None:
            peers.discard(connection)
            if not peers:
                del self._per_ip[key]
        if not self._connections:
            self._idle.set()

    def _reject(self, reason: str) -> None:
        try:
            self.door.refused(self.listener.door, reason)
        except Exception:
            log.exception("SMTP door: recording a refusal failed")

    def _session_end(self, summary: dict[str, Any]) -> None:
        log.debug("SMTP session ended: %s", summary)
        try:
            self.door.session_ended(summary)
        except Exception:
            log.exception("SMTP door: ending a session failed")


def _tls_info(transport: asyncio.BaseTransport) -> TlsInfo | None:
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    cipher = ssl_object.cipher()
    return TlsInfo(version=ssl_object.version() or "", cipher=cipher[0] if cipher else "")


class _Connection(asyncio.Protocol):
    """One client connection: feeds the session and carries out its outputs."""

    def __init__(self, server: SmtpServer, loop: asyncio.AbstractEventLoop) -> None:
        self._srv = server
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._session: SmtpSession | None = None
        self._ip = ""
        self._key = ""  # the per-client limit's key (IPv4 address or IPv6 /64)
        self._port = 0
        self._session_id = ""
        self._started = 0.0
        self._deadlines: Deadlines | None = None
        self._steps = 0  # SmtpSession.steps when last seen
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # the deadline the timer wakes for (injected clock)
        self._paused = 0
        self._seen_rejects = 0
        self._finished = False
        self._end_reason = ""
        self._shutdown_pending = False
        self._lingering = False
        # Decrypted input that arrives before start_tls() returns (TLS 1.3 clients send their
        # EHLO right behind the handshake); None when no upgrade is under way.
        self._tls_early: bytearray | None = None
        self._buffer: MessageBuffer | None = None  # the data of the message in progress
        self._charged = 0  # octets this connection counts in the spool's memory budget
        self._delivering = 0  # octets of a message in memory being accepted

    # asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._ip, self._port = str(peer[0]), int(peer[1])
        srv = self._srv
        self._key = client_key(self._ip)
        if not srv._admit(self, self._key):
            self._finished = True
            self._transport.write(srv._too_many)
            self._transport.close()
            srv._reject("too_many_connections")
            return
        listener = srv.listener
        session = SmtpSession(srv.policy, tls_active=listener.implicit_tls, peer=self._ip)
        if listener.implicit_tls:
            session.tls_info = _tls_info(transport)
        self._session = session
        self._session_id = new_id(srv.clock.now())
        now = self._started = srv.clock.monotonic()
        policy = srv.policy
        self._deadlines = Deadlines(
            now,
            command_timeout=policy.command_timeout,
            data_timeout=policy.data_timeout,
            data_min_rate=policy.data_min_rate,
            session_lifetime=policy.session_lifetime,
        )
        self._arm()
        self._apply(session.greeting())

    def data_received(self, data: bytes) -> None:
        session = self._session
        if session is None or self._lingering:
            return
        if self._tls_early is not None:
            # Reading from the clear-text transport stopped at STARTTLS, so this is data
            # decrypted by the new TLS layer before start_tls() returned: keep it for later.
            self._tls_early += data
            return
        try:
            outputs = session.feed(data)
        except Exception:
            self._internal_error()
            return
        if outputs:
            self._apply(outputs)
        if session.in_data or self._charged:
            self._account()  # what the session holds
        if session.busy:
            if session.pending_bytes > PAUSE_THRESHOLD:
                self._pause(_PAUSE_BUSY)
            return  # deadlines resume when the outstanding operation finishes
        deadlines = self._deadlines
        if deadlines is None or session.closed:
            return
        now = self._srv.clock.monotonic()
        in_data = session.in_data
        if outputs or in_data != deadlines.in_data:
            # Something completed (a command, a chunk): a new prompt or a new data block.
            if in_data:
                deadlines.data(now, len(data))
            else:
                deadlines.command(now)
        else:
            deadlines.received(now, len(data))
        if session.steps != self._steps:
            self._steps = session.steps
            deadlines.advanced(now)
        if self._timer is None or deadlines.next()[0] < self._timer_at:
            self._arm()

    def eof_received(self) -> bool | None:
        return False  # close our side too; an SMTP session cannot continue half-closed

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish("client_closed")

    def pause_writing(self) -> None:
        self._pause(_PAUSE_WRITE)

    def resume_writing(self) -> None:
        self._resume(_PAUSE_WRITE)

    # Outputs -------------------------------------------------------------------------------

    def _apply(self, outputs: list[Output]) -> None:
        transport = self._transport
        session = self._session
        if transport is None or session is None:
            return
        srv = self._srv
        while outputs:
            # A check answered at once yields the session's next outputs: carry them out in
            # this loop (pipelined RCPTs answered synchronously do not recurse).
            answered: list[Output] = []
            for output in outputs:
                if isinstance(output, Reply):
                    if not transport.is_closing():
                        transport.write(output.data)
                elif isinstance(output, MessageData):
                    self._keep(output.data)
                elif isinstance(output, DeliverMessage):
                    srv._spawn(self._deliver(output))
                elif isinstance(output, CheckData):
                    answered = self._check_data(session)
                elif isinstance(output, DiscardMessage):
                    self._drop()
                elif isinstance(output, (CheckSender, CheckRecipient)):
                    answered = self._check(session, output)
                elif isinstance(output, CheckAuth):
                    srv._spawn(self._check_auth(output))
                elif isinstance(output, StartTls):
                    transport.pause_reading()
                    self._tls_early = bytearray()
                    srv._spawn(self._start_tls())
                elif isinstance(output, Close):
                    self._end_reason = session.close_reason
                    if output.linger:
                        self._linger(transport)
                    else:
                        transport.close()
            outputs = answered
        if session.rejects != self._seen_rejects:
            self._seen_rejects = session.rejects
            for reason in session.take_rejections():
                srv._reject(reason)

    def _info(self, session: SmtpSession) -> SessionInfo:
        return SessionInfo(
            door=self._srv.listener.door,
            session_id=self._session_id,
            peer_host=self._ip,
            peer_port=self._port,
            server_name=session.policy.hostname,
            helo=session.helo,
            esmtp=session.esmtp,
            tls=session.tls_info,
            auth_user=session.auth_user,
        )

    # Message data and the memory budget -------------------------------------------------

    def _keep(self, data: bytes) -> None:
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = self._srv.spool.buffer()
        buffer.add(data)

    def _drop(self) -> None:
        buffer, self._buffer = self._buffer, None
        if buffer is not None:
            buffer.discard()
            self._account()

    def _check_data(self, session: SmtpSession) -> list[Output]:
        """DATA or a first BDAT chunk: refused (452 4.3.1) while the memory budget is spent,
        even once the messages being received have gone to their files."""
        if self._buffer is not None:  # a message abandoned without a word: forget it
            self._drop()
        spool = self._srv.spool
        if spool.budget.spent():
            spool.spill()
        busy = spool.budget.spent()
        if busy:
            self._srv._reject("memory_budget")
        try:
            return session.data_result(BUSY if busy else None)
        except Exception:
            self._internal_error()
            return []

    def _account(self) -> None:
        """Count what this connection's session holds in memory, and the message it has in
        delivery, in the budget (its buffer counts its own)."""
        session = self._session
        held = self._delivering
        if session is not None and not self._finished:
            held += session.data_buffered
        if held != self._charged:
            self._srv.spool.budget.held += held - self._charged
            self._charged = held

    async def _deliver(self, output: DeliverMessage) -> None:
        session = self._session
        assert session is not None
        buffer, self._buffer = self._buffer, None
        outcome: str | Refusal
        try:
            data, spooled = output.data, None
            if output.streamed:
                if buffer is None:
                    raise RuntimeError("the data of a streamed message is missing")
                try:
                    data, spooled = buffer.finish(output.data)
                except StorageError as exc:  # the buffer logged why
                    raise Refusal(NOT_SPOOLED.kind, NOT_SPOOLED.detail) from exc
            if spooled is None:
                self._delivering = len(data)
            self._account()
            incoming = IncomingMessage(
                output.message_envelope,
                data,
                self._info(session),
                output.bare_line_endings,
                spooled,
            )
            del data
            outcome = await self._srv.door.deliver(incoming)
        except Refusal as exc:
            outcome = exc
        except Exception:
            log.exception("SMTP session %s: accepting a message failed", self._session_id)
            outcome = TEMPORARY_FAILURE
        finally:
            if buffer is not None:
                buffer.discard()  # the spool file, once the message is stored or refused
            self._delivering = 0
            self._account()
        self._report(session.message_result, outcome)

    def _check(self, session: SmtpSession, output: CheckSender | CheckRecipient) -> list[Output]:
        """Ask the door about a sender or recipient. An answer given at once is reported at
        once (its outputs returned); an awaitable one is awaited in a task."""
        door = self._srv.door
        result: Callable[[CheckAnswer], list[Output]]
        answer: CheckAnswer | Awaitable[CheckAnswer]
        sender = isinstance(output, CheckSender)
        result = session.sender_result if sender else session.recipient_result
        try:
            if isinstance(output, CheckSender):
                answer = door.check_sender(self._info(session), output.address, output.params)
            else:
                answer = door.check_recipient(
                    self._info(session), output.mail_from, output.address, output.params
                )
        except Refusal as refusal:
            answer = refusal
        except Exception:
            log.exception("SMTP session %s: the address check failed", self._session_id)
            answer = TEMPORARY_FAILURE
        if answer is None or isinstance(answer, Refusal):
            try:
                return result(answer)
            except Exception:
                self._internal_error()
                return []
        self._srv._spawn(self._await_check(result, answer))
        return []

    async def _await_check(
        self, result: Callable[[CheckAnswer], list[Output]], pending: Awaitable[CheckAnswer]
    ) -> None:
        answer: CheckAnswer
        try:
            answer = await pending
        except Refusal as refusal:
            answer = refusal
        except Exception:
            log.exception("SMTP session %s: the address check failed", self._session_id)
            answer = TEMPORARY_FAILURE
        self._report(result, answer)

    async def _check_auth(self, output: CheckAuth) -> None:
        session = self._session
        assert session is not None
        try:
            user = await self._srv.door.authenticate(
                output.mechanism, output.username, output.password, self._info(session)
            )
        except Refusal as refusal:
            self._report(session.auth_refused, refusal)
        except Exception:
            # The traceback never holds the password: only frames, not their locals.
            log.exception("SMTP session %s: the credential check failed", self._session_id)
            self._report(lambda _: session.auth_unavailable(), None)
        else:
            self._report(session.auth_result, user)

    async def _start_tls(self) -> None:
        session = self._session
        transport = self._transport
        context = self._srv.listener.ssl_context
        assert session is not None and transport is not None and context is not None
        self._paused = 0
        try:
            upgraded = await self._loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=session.policy.command_timeout,
            )
        except Exception as exc:
            log.debug("SMTP session %s: TLS handshake failed: %s", self._session_id, exc)
            upgraded = None
        early = self._tls_early
        self._tls_early = None
        if upgraded is None:
            transport.abort()
            self._finish("tls_failed")
            return
        self._transport = upgraded

        def resume(info: TlsInfo) -> list[Output]:
            outputs = session.tls_started(info)
            if early:
                outputs += session.feed(bytes(early))
            return outputs

        self._report(resume, _tls_info(upgraded) or TlsInfo("", ""))

    def _report(self, method: Callable[[_T], list[Output]], value: _T) -> None:
        """Tell the session how an outstanding operation ended and carry out its outputs."""
        if self._finished:
            return
        try:
            outputs = method(value)
        except Exception:
            self._internal_error()
            return
        self._done(outputs)

    def _done(self, outputs: list[Output]) -> None:
        """An outstanding auth, delivery or TLS upgrade finished."""
        if self._finished:
            return
        self._apply(outputs)
        session = self._session
        if session is None or session.closed:
            return
        deadlines = self._deadlines
        if deadlines is not None and not session.busy:
            now = self._srv.clock.monotonic()
            if session.in_data:
                deadlines.data(now)
            else:
                deadlines.command(now)
            if session.steps != self._steps:
                self._steps = session.steps
                deadlines.advanced(now)
            self._arm()
        self._resume(_PAUSE_BUSY)
        if self._shutdown_pending and not session.busy:
            self.shutdown()

    # Flow control and timers ---------------------------------------------------------------

    def _pause(self, reason: int) -> None:
        if not self._paused and self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _arm(self) -> None:
        """(Re)set the one timer for the earliest deadline."""
        deadlines = self._deadlines
        if deadlines is None or self._lingering:
            return
        if self._timer is not None:
            self._timer.cancel()
        at, _ = deadlines.next()
        self._timer_at = at
        delay = at - self._srv.clock.monotonic()
        self._timer = self._loop.call_later(max(delay, 0.0), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        session = self._session
        deadlines = self._deadlines
        if session is None or deadlines is None or session.closed or self._finished:
            return
        if session.busy:
            return  # re-armed when the outstanding operation finishes
        expiry = deadlines.expired(self._srv.clock.monotonic())
        if expiry is not None:
            self._apply(session.timed_out(expiry))
            return
        self._arm()  # the deadline moved on meanwhile

    def credit(self) -> float | None:
        """How far this connection has paid its way (see Deadlines.credit); None when it must
        not be evicted: its message or credentials are being checked, or it is closing."""
        session = self._session
        deadlines = self._deadlines
        if session is None or deadlines is None or self._finished or self._lingering:
            return None
        if session.closed or (session.busy and self._tls_early is None):
            return None
        return deadlines.credit()

    def evict(self) -> None:
        """Give up this connection's slot now and close it with 421 (server full)."""
        session = self._session
        assert session is not None
        self._srv._release(self, self._key)
        self._end_reason = "evicted"
        if self._tls_early is not None:
            self.abort()  # mid-handshake there is no way to say 421
            return
        self._apply(session.timed_out("evicted"))

    # Ending --------------------------------------------------------------------------------

    def _linger(self, transport: asyncio.Transport) -> None:
        """Close without a reset that could destroy the last replies: stop writing (FIN after
        them), drop whatever the client still sends, close on its EOF or after LINGER."""
        self._lingering = True
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(LINGER, transport.close)
        if transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        if self._paused:
            self._paused = 0
            transport.resume_reading()

    def shutdown(self) -> None:
        """Server stop: say 421 and close, after any outstanding operation finishes."""
        session = self._session
        transport = self._transport
        if session is None or transport is None or self._finished or session.closed:
            return
        if self._tls_early is not None:
            # Mid-handshake there is no way to say 421: cut the connection.
            self.abort()
            return
        if session.busy:
            self._shutdown_pending = True
            return
        self._end_reason = "shutdown"
        if not transport.is_closing():
            transport.write(reply(421, "4.3.2", f"{session.policy.hostname} Service shutting down"))
            transport.close()

    def _internal_error(self) -> None:
        """A bug in the session: say so and close this connection only."""
        log.exception("SMTP session %s: internal error", self._session_id)
        transport = self._transport
        session = self._session
        self._end_reason = "internal_error"
        if transport is not None and session is not None and not transport.is_closing():
            transport.write(
                reply(421, "4.3.0", f"{session.policy.hostname} Internal error, closing connection")
            )
            transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._finish("shutdown")

    def _finish(self, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        buffer, self._buffer = self._buffer, None
        if buffer is not None:
            buffer.discard()
        self._account()
        session = self._session
        if session is None:
            return
        srv = self._srv
        srv._release(self, self._key)
        tls = session.tls_info
        srv._session_end(
            {
                "session_id": self._session_id,
                "door": srv.listener.door,
                "peer": f"{self._ip}:{self._port}",
                "helo": session.helo,
                "tls": tls.version if tls is not None else None,
                "auth_user": session.auth_user,
                "messages": session.messages,
                "rejects": session.rejects,
                "errors": session.errors,
                "duration": round(srv.clock.monotonic() - self._started, 6),
                "reason": self._end_reason or reason,
            }
        )
