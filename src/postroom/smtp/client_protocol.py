"""The SMTP client session as a sans-IO state machine: what the outbound MTA (and `postroom
send`) speaks to another server.

`ClientSession.feed(bytes)` takes what the server sent and returns outputs for the edge to
carry out: bytes to write (`Send`), a TLS upgrade (`StartTls`), the session being ready for a
message (`Ready`), the outcome of one mail transaction (`Finished`), a failure of the whole
session before any message (`Failed`), or the end of the connection (`Close`). No sockets, no
asyncio, no clock: the edge measures time (`timeout()` says how long the current wait may take)
and calls `timed_out()` or `connection_lost()`.

A session runs: greeting, EHLO (HELO when EHLO is refused as unknown), STARTTLS when offered
and the policy asks for TLS (then EHLO again), AUTH when the policy carries credentials, then
`Ready`. Each `send(message)` runs one transaction: MAIL, RCPT per recipient, DATA or BDAT;
`reset()` sends RSET on an idle session before a kept connection is reused, or `reuse()` has
the next transaction begin with RSET in its pipelined group (no round trip of its own).
With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one write; BDAT is used when the
message needs BINARYMIME (RFC 3030). ESMTP parameters are sent only where the server offers the
extension: SIZE (RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/
ORCPT (RFC 3461).

Decisions worth knowing:

* Every recipient of a transaction ends with one reply: its RCPT reply when that was negative,
  else the reply to the end of the data (or to DATA itself when that was refused). Refusals
  the client decides itself (SIZE too small, SMTPUTF8 or BINARYMIME not offered, TLS required
  but not offered) are `ServerReply`s with `local=True`, so callers treat all alike.
* A failure of the session (the connection lost, a timeout, a 421, a reply that is not SMTP)
  ends the transaction in flight with a temporary reply for every recipient not yet answered.
  Losing the connection after the final dot but before the reply may mean the message was
  delivered (RFC 1047); it is still temporary: delivery is at least once.
* Credentials are never sent in the clear unless the policy says so (`auth_without_tls`).
* Replies are limited in line length and count; a server that sends more is a protocol error.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from postroom.core.errors import ConfigError

TlsMode = Literal["none", "opportunistic", "required"]

MAX_REPLY_LINE = 4096  # RFC 5321 asks for 512 octets; be lenient with verbose servers
MAX_REPLY_LINES = 200
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)")


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """How to talk to one server. Times in seconds (RFC 5321 §4.5.3.2 minimums by default)."""

    helo_name: str
    tls: TlsMode = "opportunistic"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth_without_tls: bool = False
    greeting_timeout: float = 300.0
    command_timeout: float = 300.0  # EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET, QUIT
    data_start_timeout: float = 120.0
    data_end_timeout: float = 600.0

    def __post_init__(self) -> None:
        name = self.helo_name
        if not name or any(c in name for c in " \t\r\n\0"):
            raise ConfigError(f"EHLO name {name!r} must be a non-empty name without spaces")
        if self.tls not in ("none", "opportunistic", "required"):
            raise ConfigError("tls must be 'none', 'opportunistic' or 'required'")
        if (self.username is None) != (self.password is None):
            raise ConfigError("a username and a password go together")


@dataclass(frozen=True, slots=True)
class ServerReply:
    """One (possibly multi-line) reply. `lines` hold the text after the code and separator;
    `enhanced` the RFC 3463 code of the first line ("" if none); `local` marks a refusal the
    client decided itself."""

    code: int
    lines: tuple[str, ...]
    enhanced: str = ""
    local: bool = False

    @property
    def text(self) -> str:
        """The text without the enhanced code, lines joined by a space."""
        first, *rest = self.lines or ("",)
        if self.enhanced and first.startswith(self.enhanced):
            first = first[len(self.enhanced) :].lstrip()
        return " ".join([first, *rest]).strip()

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def __str__(self) -> str:
        head = f"{self.code} {self.enhanced} " if self.enhanced else f"{self.code} "
        return head + self.text


def local_reply(code: int, enhanced: str, text: str) -> ServerReply:
    return ServerReply(code, (f"{enhanced} {text}",), enhanced, local=True)


@dataclass(frozen=True, slots=True)
class OutboundRecipient:
    address: str
    notify: str = ""  # RFC 3461 NOTIFY value, e.g. "FAILURE,DELAY" ("" = not given)
    orcpt: str = ""  # RFC 3461 ORCPT value, e.g. "rfc822;user@example.com"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message for one server. `data` has CRLF line endings and is not dot-stuffed."""

    mail_from: str
    recipients: tuple[OutboundRecipient, ...]
    data: bytes = field(repr=False)
    smtputf8: bool = False
    binary: bool = False  # needs BODY=BINARYMIME (sent with BDAT)
    ret: str = ""  # RFC 3461 RET: FULL or HDRS
    envid: str = ""  # RFC 3461 ENVID (xtext-encoded by the caller)


@dataclass(frozen=True, slots=True)
class RecipientResult:
    address: str
    reply: ServerReply

    @property
    def delivered(self) -> bool:
        return self.reply.positive


@dataclass(frozen=True, slots=True)
class TransactionResult:
    mail: ServerReply | None
    recipients: tuple[RecipientResult, ...]
    data: ServerReply | None

    @property
    def delivered(self) -> tuple[str, ...]:
        return tuple(r.address for r in self.recipients if r.delivered)


# Outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class StartTls:
    """Upgrade the connection to TLS, then call `tls_started()` (or `connection_lost()`)."""


@dataclass(frozen=True, slots=True)
class Ready:
    """The session is established: call `send()` for a message or `quit()`."""


@dataclass(frozen=True, slots=True)
class Finished:
    result: TransactionResult


@dataclass(frozen=True, slots=True)
class Failed:
    """The session failed before any message could be sent (`stage` says where)."""

    stage: str
    reply: ServerReply


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection once the writes before it are done."""


Output: TypeAlias = Send | StartTls | Ready | Finished | Failed | Close

# States
_GREETING = "greeting"
_EHLO = "ehlo"
_HELO = "helo"
_STARTTLS = "starttls"
_TLS = "tls"
_AUTH = "auth"
_READY = "ready"
_RSET = "rset"
_TRANSACTION = "transaction"
_QUIT = "quit"
_CLOSED = "closed"

# What a transaction waits for, in order.
_Step: TypeAlias = tuple[str, int]  # ("rset"|"mail"|"rcpt"|"data"|"dot"|"bdat", index)


def dot_stuff(data: bytes) -> bytes:
    """The message as DATA carries it: a period doubled at the start of every line, ended by
    CRLF.CRLF (a final CRLF is added when the message lacks one)."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if stuffed and not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


class ClientSession:
    """One SMTP client session. Not thread-safe; one per connection."""

    def __init__(self, policy: ClientPolicy, *, tls_active: bool = False) -> None:
        self.policy = policy
        self.extensions: dict[str, str] = {}
        self.tls_active = tls_active
        self.greeting: ServerReply | None = None
        self._state = _GREETING
        self._buf = b""
        self._lines: list[str] = []
        self._out: list[Output] = []
        self._esmtp = False
        # AUTH LOGIN progress: 0 = sent AUTH, 1 = sent user name, 2 = sent password
        self._auth_step = 0
        # transaction
        self._message: OutboundMessage | None = None
        self._steps: list[_Step] = []
        self._mail: ServerReply | None = None
        self._rcpt: list[ServerReply | None] = []
        self._data: ServerReply | None = None
        self._pipelined = False
        self._dirty = False  # a transaction may be open on the server: RSET before the next

    # Facts ---------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state == _CLOSED

    def timeout(self) -> float:
        """Seconds the current wait for the server may take."""
        policy = self.policy
        if self._state == _GREETING:
            return policy.greeting_timeout
        if self._state == _TRANSACTION and self._steps:
            kind = self._steps[0][0]
            if kind == "data":
                return policy.data_start_timeout
            if kind in ("dot", "bdat"):
                return policy.data_end_timeout
        return policy.command_timeout

    # Edge entry points ------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Output]:
        if self._state in (_CLOSED, _TLS):
            return []
        self._buf += data
        while self._state not in (_CLOSED, _TLS):
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > MAX_REPLY_LINE:
                    self._fail(local_reply(451, "4.5.0", "Remote server sent an over-long line"))
                break
            raw = self._buf[:end]
            self._buf = self._buf[end + 1 :]
            if len(raw) > MAX_REPLY_LINE:
                self._fail(local_reply(451, "4.5.0", "Remote server sent an over-long line"))
                break
            self._line(raw.rstrip(b"\r").decode("utf-8", "replace"))
        return self._flush()

    def tls_started(self) -> list[Output]:
        """The TLS handshake succeeded: forget the extensions learnt in the clear and EHLO."""
        if self._state != _TLS:
            raise RuntimeError("tls_started() without an outstanding StartTls")
        self.tls_active = True
        self.extensions = {}
        self._buf = b""  # anything the server sent in the clear after 220 is not trusted
        self._command(_EHLO, f"EHLO {self.policy.helo_name}")
        return self._flush()

    def send(self, message: OutboundMessage) -> list[Output]:
        """Start one mail transaction (only after `Ready` or `Finished`)."""
        if self._state != _READY:
            raise RuntimeError(f"send() in state {self._state}")
        if not message.recipients:
            raise ValueError("a message needs at least one recipient")
        refusal = self._refusal(message)
        if refusal is not None:
            results = tuple(RecipientResult(r.address, refusal) for r in message.recipients)
            self._out.append(Finished(TransactionResult(None, results, None)))
            return self._flush()
        self._message = message
        self._mail, self._data = None, None
        self._rcpt = [None] * len(message.recipients)
        self._pipelined = "PIPELINING" in self.extensions
        self._state = _TRANSACTION
        self._steps = []
        commands: list[str] = []
        if self._dirty:
            commands.append("RSET")
            self._steps.append(("rset", 0))
        commands.append(self._mail_command(message))
        self._steps.append(("mail", 0))
        self._dirty = True
        if self._pipelined:
            for index, recipient in enumerate(message.recipients):
                commands.append(self._rcpt_command(recipient))
                self._steps.append(("rcpt", index))
            if not message.binary:
                commands.append("DATA")
                self._steps.append(("data", 0))
            self._send_lines(commands)
        else:
            self._send_lines(commands)
        return self._flush()

    def reset(self) -> list[Output]:
        """RSET on an idle session, before reusing a kept connection (as Postfix does): it
        proves the connection alive. `Ready` on 250, else `Failed("rset", reply)` and the
        session closes."""
        if self._state != _READY:
            raise RuntimeError(f"reset() in state {self._state}")
        self._command(_RSET, "RSET")
        return self._flush()

    def reuse(self) -> bool:
        """Take an idle session for the next transaction without a round trip: with
        PIPELINING its RSET goes out in the same write as the next `send`'s MAIL (RFC 2920
        allows RSET in a group). False (nothing changes) when the server does not offer
        PIPELINING: then `reset()` first."""
        if self._state != _READY:
            raise RuntimeError(f"reuse() in state {self._state}")
        if "PIPELINING" not in self.extensions:
            return False
        self._dirty = True
        return True

    def quit(self) -> list[Output]:
        if self._state in (_CLOSED, _QUIT):
            return []
        self._state = _QUIT
        self._out.append(Send(b"QUIT\r\n"))
        return self._flush()

    def timed_out(self) -> list[Output]:
        """The wait given by `timeout()` passed without a complete reply."""
        if self._state == _CLOSED:
            return []
        if self._state == _QUIT:
            self._close()
        else:
            self._fail(
                local_reply(451, "4.4.2", f"Timed out waiting for the server ({self._state})")
            )
        return self._flush()

    def connection_lost(self) -> list[Output]:
        if self._state == _CLOSED:
            return []
        if self._state == _QUIT:
            self._state = _CLOSED
        else:
            self._fail(local_reply(451, "4.4.2", f"Connection lost ({self._state})"))
        return self._flush()

    # Replies ---------------------------------------------------------------------------------

    def _line(self, line: str) -> None:
        if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
            self._fail(
                local_reply(451, "4.5.0", f"Remote server sent a malformed reply: {line[:80]!r}")
            )
            return
        self._lines.append(line[4:])
        if len(line) > 3 and line[3] == "-":
            if len(self._lines) > MAX_REPLY_LINES:
                self._fail(local_reply(451, "4.5.0", "Remote server sent an over-long reply"))
            return
        lines, self._lines = tuple(self._lines), []
        match = _ENHANCED.match(lines[0]) if lines else None
        enhanced = ".".join(match.groups()) if match and match.group(1) == line[0] else ""
        self._reply(ServerReply(int(line[:3]), lines, enhanced))

    def _reply(self, reply: ServerReply) -> None:
        state = self._state
        if state == _GREETING:
            self.greeting = reply
            if reply.code != 220:
                self._fail(reply, "greeting", quit_first=reply.code != 421)
                return
            self._command(_EHLO, f"EHLO {self.policy.helo_name}")
        elif state == _EHLO:
            if reply.code == 250:
                self._esmtp = True
                self.extensions = _parse_extensions(reply.lines[1:])
                self._after_hello()
            elif reply.code in (500, 502) and not self.tls_active:
                self._command(_HELO, f"HELO {self.policy.helo_name}")
            else:
                self._fail(reply, "ehlo", quit_first=reply.code != 421)
        elif state == _HELO:
            if reply.code == 250:
                self.extensions = {}
                self._after_hello()
            else:
                self._fail(reply, "helo", quit_first=reply.code != 421)
        elif state == _STARTTLS:
            if reply.code == 220:
                self._state = _TLS
                self._out.append(StartTls())
            elif self.policy.tls == "required" or reply.code == 421:
                self._fail(reply, "starttls", quit_first=reply.code != 421)
            else:
                self._after_tls()
        elif state == _AUTH:
            self._auth_reply(reply)
        elif state == _TRANSACTION:
            self._transaction_reply(reply)
        elif state == _RSET:
            if reply.code == 250:
                self._dirty = False
                self._ready()
            else:
                self._fail(reply, "rset", quit_first=reply.code != 421)
        elif state == _QUIT:
            self._close()
        elif reply.code == 421:  # unsolicited: the server is closing
            self._fail(reply, "idle", quit_first=False)
        else:
            self._fail(local_reply(451, "4.5.0", f"Unexpected reply from the server: {reply}"))

    def _after_hello(self) -> None:
        policy = self.policy
        if not self.tls_active and policy.tls != "none":
            if "STARTTLS" in self.extensions:
                self._command(_STARTTLS, "STARTTLS")
                return
            if policy.tls == "required":
                refusal = local_reply(451, "4.7.4", "TLS is required, but was not offered")
                self._fail(refusal, "starttls")
                return
        self._after_tls()

    def _after_tls(self) -> None:
        policy = self.policy
        if policy.username is None or policy.password is None:
            self._ready()
            return
        if not self.tls_active and not policy.auth_without_tls:
            refusal = local_reply(451, "4.7.0", "Refusing to send credentials without TLS")
            self._fail(refusal, "auth")
            return
        offered = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in offered:
            token = f"\0{policy.username}\0{policy.password}".encode()
            self._auth_step = 2
            self._command(_AUTH, "AUTH PLAIN " + base64.b64encode(token).decode("ascii"))
        elif "LOGIN" in offered:
            self._auth_step = 0
            self._command(_AUTH, "AUTH LOGIN")
        else:
            refusal = local_reply(451, "4.7.0", "The server offers no AUTH mechanism we support")
            self._fail(refusal, "auth")

    def _auth_reply(self, reply: ServerReply) -> None:
        policy = self.policy
        if reply.code == 235:
            self._ready()
        elif reply.code == 334 and self._auth_step < 2:
            value = policy.username if self._auth_step == 0 else policy.password
            self._auth_step += 1
            self._out.append(Send(base64.b64encode((value or "").encode()) + b"\r\n"))
        else:
            if reply.code == 334:  # an unexpected challenge: cancel the exchange
                self._out.append(Send(b"*\r\n"))
            self._fail(reply, "auth", quit_first=reply.code != 421)

    def _ready(self) -> None:
        self._state = _READY
        self._out.append(Ready())

    # Transactions --------------------------------------------------------------------------

    def _refusal(self, message: OutboundMessage) -> ServerReply | None:
        size = self.extensions.get("SIZE", "")
        if size.isdigit() and int(size) > 0 and len(message.data) > int(size):
            text = f"Message too big for the remote server ({len(message.data)} > {size} octets)"
            return local_reply(552, "5.3.4", text)
        if message.smtputf8 and "SMTPUTF8" not in self.extensions:
            return local_reply(553, "5.6.7", "The remote server does not support SMTPUTF8")
        if message.binary and not {"CHUNKING", "BINARYMIME"} <= self.extensions.keys():
            return local_reply(554, "5.6.3", "The remote server does not accept binary content")
        return None

    def _mail_command(self, message: OutboundMessage) -> str:
        ext = self.extensions
        params: list[str] = []
        if "SIZE" in ext:
            params.append(f"SIZE={len(message.data)}")
        if message.binary:
            params.append("BODY=BINARYMIME")
        elif "8BITMIME" in ext and not message.data.isascii():
            params.append("BODY=8BITMIME")
        if message.smtputf8:
            params.append("SMTPUTF8")
        if "DSN" in ext:
            if message.ret:
                params.append(f"RET={message.ret}")
            if message.envid:
                params.append(f"ENVID={message.envid}")
        return " ".join([f"MAIL FROM:<{message.mail_from}>", *params])

    def _rcpt_command(self, recipient: OutboundRecipient) -> str:
        params: list[str] = []
        if "DSN" in self.extensions:
            if recipient.notify:
                params.append(f"NOTIFY={recipient.notify}")
            if recipient.orcpt:
                params.append(f"ORCPT={recipient.orcpt}")
        return " ".join([f"RCPT TO:<{recipient.address}>", *params])

    def _transaction_reply(self, reply: ServerReply) -> None:
        if reply.code == 421 and self._steps and self._steps[0][0] != "dot":
            self._fail(reply, "transaction", quit_first=False)
            return
        if not self._steps:
            self._fail(local_reply(451, "4.5.0", f"Unexpected reply from the server: {reply}"))
            return
        kind, index = self._steps.pop(0)
        message = self._message
        assert message is not None
        if kind == "rset":
            if not reply.positive:
                self._fail(reply, "transaction")
            return
        if kind == "mail":
            self._mail = reply
            if not reply.positive:
                for i in range(len(self._rcpt)):
                    self._rcpt[i] = reply
                if not self._pipelined:
                    self._finish()
                    return
            elif not self._pipelined:
                self._send_lines([self._rcpt_command(message.recipients[0])])
                self._steps.append(("rcpt", 0))
        elif kind == "rcpt":
            if self._mail is not None and self._mail.positive:
                self._rcpt[index] = reply
            if not self._pipelined:
                if index + 1 < len(message.recipients):
                    self._send_lines([self._rcpt_command(message.recipients[index + 1])])
                    self._steps.append(("rcpt", index + 1))
                elif not self._accepted():
                    self._finish()
                    return
                elif message.binary:
                    self._send_bdat(message)
                else:
                    self._send_lines(["DATA"])
                    self._steps.append(("data", 0))
            elif message.binary and not self._steps:
                if self._accepted():
                    self._send_bdat(message)
                else:
                    self._finish()
                    return
        elif kind == "data":
            if reply.code == 354:
                if self._accepted():
                    self._out.append(Send(dot_stuff(message.data)))
                    self._steps.append(("dot", 0))
                else:
                    # Pipelined DATA accepted although every RCPT failed (RFC 2920 §3.1):
                    # end the empty data; the reply does not matter.
                    self._out.append(Send(b".\r\n"))
                    self._steps.append(("dot", -1))
            else:
                self._data = reply
        elif kind in ("dot", "bdat"):
            if index >= 0:
                self._data = reply
            if reply.positive:
                self._dirty = False
        if not self._steps:
            self._finish()

    def _send_bdat(self, message: OutboundMessage) -> None:
        self._out.append(Send(f"BDAT {len(message.data)} LAST\r\n".encode() + message.data))
        self._steps.append(("bdat", 0))

    def _accepted(self) -> bool:
        return any(r is not None and r.positive for r in self._rcpt)

    def _finish(self) -> None:
        message = self._message
        assert message is not None
        results = []
        for recipient, rcpt in zip(message.recipients, self._rcpt, strict=True):
            if rcpt is None or rcpt.positive:
                final = self._data or rcpt or local_reply(451, "4.5.0", "No reply received")
            else:
                final = rcpt
            results.append(RecipientResult(recipient.address, final))
        self._out.append(Finished(TransactionResult(self._mail, tuple(results), self._data)))
        self._message = None
        self._steps = []
        self._state = _READY

    # Helpers -------------------------------------------------------------------------------

    def _command(self, state: str, line: str) -> None:
        self._state = state
        self._out.append(Send(line.encode("utf-8") + b"\r\n"))

    def _send_lines(self, lines: Sequence[str]) -> None:
        self._out.append(Send("".join(line + "\r\n" for line in lines).encode("utf-8")))

    def _fail(self, reply: ServerReply, stage: str = "", *, quit_first: bool = False) -> None:
        """End the session: the transaction in flight (if any) fails with a temporary reply
        for every recipient not yet answered, or the session reports `Failed`."""
        if self._state == _TRANSACTION and self._message is not None:
            temporary = reply if reply.temporary else local_reply(451, "4.4.2", str(reply))
            failed = list(self._rcpt)
            for i, rcpt in enumerate(failed):
                if rcpt is None or rcpt.positive:
                    failed[i] = temporary
            self._rcpt = failed
            self._data = None
            self._finish()
        else:
            self._out.append(Failed(stage or self._state, reply))
        if quit_first:
            self._out.append(Send(b"QUIT\r\n"))
        self._close()

    def _close(self) -> None:
        self._state = _CLOSED
        self._out.append(Close())

    def _flush(self) -> list[Output]:
        out, self._out = self._out, []
        return out


def _parse_extensions(lines: Sequence[str]) -> dict[str, str]:
    """EHLO keywords (upper-cased) and their parameters."""
    extensions: dict[str, str] = {}
    for line in lines:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            extensions[keyword.upper()] = params.strip()
    # Some old servers announce AUTH as "AUTH=LOGIN PLAIN".
    for keyword in list(extensions):
        if keyword.startswith("AUTH="):
            value = extensions.pop(keyword)
            extensions.setdefault("AUTH", f"{keyword[5:]} {value}".strip())
    return extensions


def extension_summary(extensions: Mapping[str, str]) -> str:
    """The extensions as one line for records and logs."""
    return " ".join(f"{k}={v}" if v else k for k, v in sorted(extensions.items()))
