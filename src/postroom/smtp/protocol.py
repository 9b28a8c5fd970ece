"""The SMTP server session as a sans-IO state machine (RFC 5321 and the extensions it offers).

`SmtpSession.feed(bytes)` returns a list of outputs for the edge to carry out: bytes to write
(`Reply`), a TLS upgrade (`StartTls`), credentials to verify (`CheckAuth`), a sender or a
recipient for the door to judge (`CheckSender`, `CheckRecipient`, only when the policy asks
for them), a message to run through the acceptance pipeline (`DeliverMessage`), or the end of
the connection (`Close`). No sockets, no asyncio, no clock: the edge measures time and calls
`timed_out()`.

While a CheckAuth, CheckSender, CheckRecipient or DeliverMessage is outstanding, input is held
inside the session and processed when the edge reports the result, so PIPELINING works: a RCPT
pipelined behind a MAIL whose check is pending is answered after it, in order. Input that
follows STARTTLS in the clear is discarded (RFC 3207 §4.2: a man in the middle must not be able
to inject commands that would run inside the TLS session).

Decisions worth knowing:

* Command lines end at CRLF; a bare LF is accepted as a line end too (lenient with old clients).
  A bare CR or a NUL inside a command line is an error (500 5.5.2).
* `max_command_line` bounds every command line including CRLF, except: MAIL and RCPT get 1024
  more octets for extension parameters (RFC 1869 §4.1.2; ENVID, ORCPT and AUTH= alone may take
  some 600), and AUTH lines and SASL responses may be 12288 octets (RFC 4954 §4).
* `MAIL FROM:` and `RCPT TO:` accept spaces between the colon and `<` (many clients send
  `MAIL FROM: <a@b>`), but the angle brackets are required: `MAIL FROM:a@b` is 501.
* Message data ends only at `<CRLF>.<CRLF>`, the start of the data counting as after a CRLF.
  Dot-unstuffing follows RFC 5321 §4.5.2 literally: a line (delimited by CRLF) that starts with
  a period and holds more characters loses that period. Bare CR/LF is judged after unstuffing,
  then rejected (550 5.6.11) or normalised to CRLF according to the policy.
* A BDAT chunk is judged on its announced size, before its octets arrive: one that would take
  the message past `max_message_size` gets `552 5.3.4` at once and the transaction ends. Its
  octets still follow (BDAT has no intermediate reply), so they are read and dropped, unless
  the chunk alone is larger than the limit: then `421` and the connection closes (`Close` with
  `linger`) rather than waiting for, say, a terabyte. Chunks refused with 503 are handled alike.
* The error count (`max_errors`) counts client mistakes: syntax, sequence, unknown commands,
  over-long lines, refused authentication, bad message content. Policy refusals (the door's
  sender and recipient checks, size,
  too many recipients, the pipeline's verdict) are not counted, but every refusal is recorded
  in `take_rejections()` for metrics.
* Message data need not be held whole: with `data_chunk` set, once the session holds more
  than that many octets of a message it hands them to the edge in `MessageData` outputs (dot-
  unstuffed, line endings as they will be stored) and `DeliverMessage` carries only the rest;
  the checks (size, NUL, bare line endings, line length) run piece by piece with the same
  verdicts (smtp/body.py). `DiscardMessage` tells the edge that what it was handed will not be
  delivered. With `check_data` the session asks the edge (`CheckData`) before it accepts DATA or
  the first BDAT chunk of a message; a refusal (say 452 4.3.1: the server's memory budget is
  spent) ends the transaction, and a refused chunk's octets are read and dropped.
* Replies carry an enhanced status code (RFC 2034/3463) except where RFC 2034 exempts them:
  the greeting, the replies to EHLO/HELO, and the intermediate replies 334 and 354.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from postroom.core.errors import ConfigError, Refusal, RefusalKind
from postroom.core.types import Envelope, TlsInfo
from postroom.smtp import replies
from postroom.smtp.address import (
    AddressError,
    ParamError,
    is_atom,
    is_xtext,
    parse_path,
    split_params,
)
from postroom.smtp.body import BodyCheck, Unstuffer
from postroom.smtp.refusals import render
from postroom.smtp.replies import multiline, reply

log = logging.getLogger("postroom.smtp")

MECHANISMS = ("PLAIN", "LOGIN")
AUTH_LINE_LIMIT = 12288  # RFC 4954 §4
PARAM_ALLOWANCE = 1024  # extra octets allowed on MAIL and RCPT lines for ESMTP parameters
MAX_ENVID = 100  # RFC 3461 §4.4
MAX_ORCPT = 500  # RFC 3461 §4.2


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """What one listener allows. Sizes in octets, times in seconds; 0 means unlimited where
    noted."""

    hostname: str
    max_command_line: int = 512
    max_text_line: int = 1000  # including CRLF; 0 = unlimited
    max_recipients: int = 1000
    max_message_size: int = 40 * 1024 * 1024
    max_errors: int = 10  # 0 = unlimited
    command_timeout: float = 300.0  # a whole command line, from its prompt (deadlines.py)
    data_timeout: float = 180.0  # silence within a data block; grace before the rate counts
    data_min_rate: float = 1024.0  # octets/s averaged over a data block past its grace; 0 = off
    session_lifetime: float = 3600.0  # whole connection; 0 = unlimited
    starttls_available: bool = False
    tls_required: bool = False
    auth_mechanisms: tuple[str, ...] = MECHANISMS
    auth_required: bool = False
    auth_without_tls: bool = False
    bare_line_endings: Literal["accept", "reject"] = "reject"
    # Ask the edge (CheckSender / CheckRecipient) before accepting MAIL / RCPT; off, every
    # syntactically valid address is accepted without a round trip.
    check_sender: bool = False
    check_recipient: bool = False
    # Ask the edge (CheckData) before accepting DATA or the first BDAT chunk of a message.
    check_data: bool = False
    # Hand message data to the edge (MessageData) whenever more than this many octets of it
    # are held; 0 = hold each message whole and hand it over in DeliverMessage.
    data_chunk: int = 0

    def __post_init__(self) -> None:
        host = self.hostname
        if not host or any(c in host for c in " \t\r\n\0"):
            raise ConfigError(f"SMTP hostname {host!r} must be a non-empty name without spaces")
        if self.max_command_line < 64:
            raise ConfigError("max_command_line must be at least 64 (RFC 5321 asks for 512)")
        if self.max_text_line < 0 or 0 < self.max_text_line < 3:
            raise ConfigError("max_text_line must be 0 (unlimited) or at least 3")
        if self.max_recipients < 1:
            raise ConfigError("max_recipients must be at least 1")
        if self.max_message_size < 1:
            raise ConfigError("max_message_size must be at least 1")
        if self.max_errors < 0:
            raise ConfigError("max_errors must be 0 (unlimited) or more")
        if self.command_timeout <= 0 or self.data_timeout <= 0:
            raise ConfigError("SMTP timeouts must be positive")
        if self.data_chunk < 0:
            raise ConfigError("data_chunk must be 0 (hold messages whole) or more")
        if self.data_min_rate < 0 or self.session_lifetime < 0:
            raise ConfigError("data_min_rate and session_lifetime must be 0 (off) or more")
        for mech in self.auth_mechanisms:
            if mech not in MECHANISMS:
                raise ConfigError(f"unsupported AUTH mechanism {mech!r} (supported: PLAIN, LOGIN)")
        if self.bare_line_endings not in ("accept", "reject"):
            raise ConfigError("bare_line_endings must be 'accept' or 'reject'")


# Outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """Bytes to write to the client (one or more complete reply lines)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class StartTls:
    """Stop reading, upgrade the connection to TLS, then call `tls_started()`."""


@dataclass(frozen=True, slots=True)
class CheckAuth:
    """Verify these credentials, then call `auth_result()`."""

    mechanism: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CheckSender:
    """May this reverse-path ("" for the null sender) start a transaction? Call
    `sender_result()` with None to accept it or with the refusal to send."""

    address: str
    params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CheckRecipient:
    """May this forward-path be added to the transaction (whose sender is `mail_from`)? Call
    `recipient_result()` with None to accept it or with the refusal to send."""

    address: str
    params: Mapping[str, str]
    mail_from: str


@dataclass(frozen=True, slots=True)
class CheckData:
    """May a message transfer (DATA, or the first BDAT chunk of a message) start now? Call
    `data_result()` with None to go on or with the refusal to send."""


@dataclass(frozen=True, slots=True)
class MessageData:
    """The next octets of the message in progress (see `DeliverMessage`)."""

    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class DiscardMessage:
    """The message whose `MessageData` the edge was handed will not be delivered: drop it."""


@dataclass(frozen=True, slots=True)
class DeliverMessage:
    """Run the message through the acceptance pipeline, then call `message_result()`.

    The message is dot-unstuffed, CRLF-terminated, without the final ".CRLF". It is `data`,
    or, when `streamed`, the `MessageData` handed over since the transaction began followed
    by `data`."""

    message_envelope: Envelope
    data: bytes = field(repr=False)
    bare_line_endings: bool = False
    streamed: bool = False


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection once the replies before it are written.

    `linger`: the client is probably still sending (the rest of a BDAT chunk that was refused
    before it arrived). Closing a socket with unread input makes the kernel send a reset, which
    can destroy the replies before the client reads them; so stop writing, read and discard
    for a moment, then close."""

    linger: bool = False


Output: TypeAlias = (
    Reply
    | StartTls
    | CheckAuth
    | CheckSender
    | CheckRecipient
    | CheckData
    | MessageData
    | DiscardMessage
    | DeliverMessage
    | Close
)

# States
_CMD = 0
_DATA = 1
_BDAT = 2
_AUTH = 3
_WAIT = 4  # CheckAuth, CheckSender, CheckRecipient or DeliverMessage outstanding: input is held
_TLS = 5  # StartTls outstanding: input is discarded
_CLOSED = 6
# What a _WAIT state waits for (besides _AUTH and _DATA)
_MAIL = 7
_RCPT = 8
_DATA_START = 9  # CheckData for DATA
_BDAT_START = 10  # CheckData for the first BDAT chunk

# SASL steps
_PLAIN = 1
_LOGIN_USER = 2
_LOGIN_PASSWORD = 3

_TERMINATOR = b"\r\n.\r\n"
_BODY_TYPES = frozenset(("7BIT", "8BITMIME", "BINARYMIME"))
_NOTIFY = frozenset(("SUCCESS", "FAILURE", "DELAY"))
_NOT_IMPLEMENTED = frozenset(("TURN", "ETRN", "ATRN", "SEND", "SOML", "SAML"))
_HTTP_VERBS = frozenset(("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT"))
_HELP_TOPICS = {
    "EHLO": "EHLO <your host name>",
    "HELO": "HELO <your host name>",
    "MAIL": "MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME|BINARYMIME] [SMTPUTF8] "
    "[RET=FULL|HDRS] [ENVID=id] [AUTH=address]",
    "RCPT": "RCPT TO:<address> [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=type;address]",
    "DATA": "DATA, then the message, ended by a line holding a single period",
    "BDAT": "BDAT <size> [LAST], followed by exactly <size> octets of the message",
    "RSET": "RSET: abandon the current mail transaction",
    "NOOP": "NOOP: do nothing",
    "QUIT": "QUIT: end the session",
    "VRFY": "VRFY <address>",
    "HELP": "HELP [command]",
    "STARTTLS": "STARTTLS: upgrade the connection to TLS",
    "AUTH": "AUTH PLAIN|LOGIN [initial-response]",
}
_HELP_ALL = multiline(
    214,
    "2.0.0",
    [
        "Postroom SMTP server. Commands:",
        "EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
        "Send HELP <command> for its syntax; see RFC 5321 for the protocol",
    ],
)
_TIMED_OUT = {
    "timeout": (421, "4.4.2", "Timeout, closing connection"),
    "too_slow": (421, "4.4.2", "Data arriving too slowly, closing connection"),
    "session_lifetime": (421, "4.4.2", "Session time limit reached, closing connection"),
    "evicted": (421, "4.7.0", "Too many connections; closing this least active one"),
}
_LOGIN_USER_PROMPT = b"334 VXNlcm5hbWU6\r\n"  # "Username:"
_LOGIN_PASSWORD_PROMPT = b"334 UGFzc3dvcmQ6\r\n"  # "Password:"
_EMPTY_CHALLENGE = b"334 \r\n"


def _b64decode(data: bytes) -> bytes | None:
    if data == b"=":
        return b""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


class SmtpSession:
    """One SMTP server session. Not thread-safe; one per connection."""

    __slots__ = (
        "_acc",
        "_auth_throttled",
        "_auth_user",
        "_bdat_active",
        "_bdat_discard",
        "_bdat_last",
        "_bdat_remaining",
        "_bdat_size",
        "_bdat_total",
        "_body",
        "_checking",
        "_chunks",
        "_close_reason",
        "_dots",
        "_dots_from",
        "_errors",
        "_esmtp",
        "_helo",
        "_hostname",
        "_inbuf",
        "_mail_from",
        "_mail_params",
        "_max_line",
        "_messages",
        "_out",
        "_outputs",
        "_overflow",
        "_pending",
        "_rcpt_params",
        "_rcpts",
        "_rejections",
        "_rejects",
        "_sasl_step",
        "_sasl_username",
        "_scan",
        "_skipping",
        "_state",
        "_steps",
        "_streamed",
        "_tls_active",
        "_unstuffer",
        "_waiting",
        "peer",
        "policy",
        "tls_info",
    )

    def __init__(self, policy: SessionPolicy, *, tls_active: bool = False, peer: str = "") -> None:
        self.policy = policy
        self.peer = peer
        self.tls_info: TlsInfo | None = None
        self._tls_active = tls_active
        self._hostname = policy.hostname
        self._max_line = policy.max_command_line
        self._helo = ""
        self._esmtp = False
        self._auth_user: str | None = None
        self._auth_throttled = False  # the door refused an AUTH as throttled in this session
        self._errors = 0
        self._messages = 0
        self._rejects = 0
        self._rejections: list[str] = []
        self._close_reason = ""
        self._state = _CMD
        self._steps = 0
        self._waiting = _CMD  # which outcome a _WAIT state expects: _AUTH, _MAIL, _RCPT, _DATA
        self._inbuf = b""  # an incomplete command line
        self._skipping = False  # discarding the rest of an over-long line
        self._pending = bytearray()  # input held while waiting
        self._out: list[bytes] = []
        self._outputs: list[Output] = []
        # mail transaction
        self._mail_from: str | None = None
        self._mail_params: dict[str, str] = {}
        self._rcpts: list[str] = []
        self._rcpt_params: list[dict[str, str]] = []
        self._checking: tuple[str, dict[str, str]] | None = None  # address and params asked
        # DATA
        self._acc = bytearray()
        self._scan = 0
        self._dots = 0
        self._dots_from = 0
        self._overflow = False
        # message data handed over in pieces (policy.data_chunk)
        self._body: BodyCheck | None = None  # the checks so far, once pieces are handed over
        self._unstuffer: Unstuffer | None = None
        self._streamed = False  # MessageData went out for the message in progress
        # BDAT
        self._chunks = bytearray()
        self._bdat_total = 0  # octets of the accepted chunks of the message in progress
        self._bdat_active = False  # a BDAT transfer is under way in this transaction
        self._bdat_remaining = 0
        self._bdat_size = 0
        self._bdat_last = False
        self._bdat_discard = False  # the chunk under way was refused: drop its octets
        # AUTH
        self._sasl_step = 0
        self._sasl_username = ""

    # Facts --------------------------------------------------------------------------------

    @property
    def helo(self) -> str:
        return self._helo

    @property
    def esmtp(self) -> bool:
        return self._esmtp

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def auth_user(self) -> str | None:
        return self._auth_user

    @property
    def closed(self) -> bool:
        return self._state == _CLOSED

    @property
    def close_reason(self) -> str:
        """Why the session closed: quit, timeout, too_many_errors, http_command ("" if open)."""
        return self._close_reason

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def messages(self) -> int:
        """Messages accepted (250 after the data) in this session."""
        return self._messages

    @property
    def rejects(self) -> int:
        """Negative replies (4xx/5xx) sent in this session."""
        return self._rejects

    @property
    def steps(self) -> int:
        """How often the session has moved towards delivering mail: the first EHLO/HELO (and
        the first after STARTTLS), AUTH, STARTTLS, an accepted MAIL or RCPT, DATA, an accepted
        BDAT chunk, a complete message. NOOP, RSET, HELP, VRFY, a repeated EHLO and refused
        commands do not count: the edge judges from this which session is least active."""
        return self._steps

    @property
    def busy(self) -> bool:
        """An output the edge must answer (CheckAuth, CheckSender, CheckRecipient,
        DeliverMessage, StartTls) is outstanding."""
        return self._state == _WAIT or self._state == _TLS

    @property
    def pending_bytes(self) -> int:
        """Input held while busy (the edge pauses reading when this grows)."""
        return len(self._pending)

    @property
    def data_buffered(self) -> int:
        """Octets of message data held for the transaction in progress (DATA or BDAT)."""
        return len(self._acc) + len(self._chunks)

    @property
    def in_data(self) -> bool:
        return self._state == _DATA or self._state == _BDAT

    @property
    def envelope(self) -> Envelope | None:
        """The mail transaction in progress, or None before MAIL."""
        if self._mail_from is None:
            return None
        return Envelope(
            self._mail_from,
            tuple(self._rcpts),
            dict(self._mail_params),
            tuple(dict(p) for p in self._rcpt_params),
        )

    def take_rejections(self) -> list[str]:
        """Reason codes of the negative replies since the last call (for metrics)."""
        taken = self._rejections
        self._rejections = []
        return taken

    def idle_timeout(self) -> float:
        """Seconds allowed for the next input (RFC 5321 §4.5.3.2)."""
        if self._state == _DATA or self._state == _BDAT:
            return self.policy.data_timeout
        return self.policy.command_timeout

    # Edge entry points -------------------------------------------------------------------

    def greeting(self) -> list[Output]:
        return [Reply(reply(220, "", f"{self._hostname} ESMTP Postroom ready"))]

    def feed(self, data: bytes) -> list[Output]:
        state = self._state
        if state >= _WAIT:
            if state == _WAIT:
                self._pending += data
            return []
        self._run(data)
        return self._flush()

    def tls_started(self, info: TlsInfo) -> list[Output]:
        """The TLS handshake is done: forget everything learnt in the clear (RFC 3207 §4.2)."""
        if self._state != _TLS:
            raise RuntimeError("tls_started() without an outstanding StartTls")
        self._tls_active = True
        self.tls_info = info
        self._helo = ""
        self._esmtp = False
        self._auth_user = None
        self._reset_transaction()
        self._inbuf = b""
        self._pending = bytearray()
        self._skipping = False
        self._state = _CMD
        return []

    def auth_result(self, username: str | None) -> list[Output]:
        """After CheckAuth: the authenticated user name, or None when the credentials are bad."""
        if not self._expect(_AUTH):
            return []
        self._state = _CMD
        if username is None:
            self._fail_raw(replies.AUTH_FAILED, "auth_failed")
        else:
            self._auth_user = username
            self._steps += 1
            self._out.append(replies.AUTH_OK)
        return self._resume()

    def auth_refused(self, refusal: Refusal) -> list[Output]:
        """After CheckAuth: the door refuses to check credentials now (say, the client failed
        too often): its refusal is sent. A client refused as throttled that tries AUTH again
        in the same session gets 421 and the connection is closed."""
        if not self._expect(_AUTH):
            return []
        self._state = _CMD
        if refusal.kind is RefusalKind.AUTH_THROTTLED:
            if self._auth_throttled:
                self._record("auth_refused")
                self._out.append(
                    reply(
                        421,
                        "4.7.0",
                        f"{self._hostname} Too many failed authentication attempts, "
                        "closing connection",
                    )
                )
                self._close("auth_refused")
                return self._flush()
            self._auth_throttled = True
        self._refuse_raw(render(refusal), "auth_refused")
        return self._resume()

    def auth_unavailable(self) -> list[Output]:
        """After CheckAuth: the credential store failed (454 4.7.0, RFC 4954 §6)."""
        if not self._expect(_AUTH):
            return []
        self._state = _CMD
        self._refuse_raw(replies.AUTH_TEMPFAIL, "auth_unavailable")
        return self._resume()

    def sender_result(self, refusal: Refusal | None) -> list[Output]:
        """After CheckSender: None accepts the sender, else the door's refusal is sent."""
        return self._check_result(_MAIL, refusal, "sender_rejected", self._accept_sender)

    def recipient_result(self, refusal: Refusal | None) -> list[Output]:
        """After CheckRecipient: None accepts the recipient, else the door's refusal is sent."""
        return self._check_result(_RCPT, refusal, "recipient_rejected", self._accept_recipient)

    def _check_result(
        self,
        expected: int,
        refusal: Refusal | None,
        reason: str,
        accept: Callable[..., None],
    ) -> list[Output]:
        if not self._expect(expected):
            return []
        self._state = _CMD
        checked = self._checking
        self._checking = None
        assert checked is not None
        if refusal is not None:
            self._refuse_raw(render(refusal), reason)
        else:
            accept(*checked)
        return self._resume()

    def data_result(self, refusal: Refusal | None) -> list[Output]:
        """After CheckData: None lets the transfer start; a refusal is sent and ends the
        transaction (a refused BDAT chunk's octets are read and dropped)."""
        if self._state == _CLOSED:
            return []
        if self._state != _WAIT or self._waiting not in (_DATA_START, _BDAT_START):
            raise RuntimeError("result reported for an output that is not outstanding")
        bdat = self._waiting == _BDAT_START
        self._state = _CMD
        if refusal is not None:
            self._reset_transaction()
            self._refuse_raw(render(refusal), "data_refused")
            if bdat:
                self._start_chunk(self._bdat_size, last=False, discard=True)
        elif bdat:
            self._accept_chunk(self._bdat_size, last=self._bdat_last)
        else:
            self._start_data()
        return self._resume()

    def message_result(self, outcome: str | Refusal) -> list[Output]:
        """After DeliverMessage: the stored id, or the pipeline's refusal."""
        if not self._expect(_DATA):
            return []
        self._state = _CMD
        self._reset_transaction()
        if isinstance(outcome, Refusal):
            reason = "message_deferred" if outcome.temporary else "message_rejected"
            self._refuse_raw(render(outcome), reason)
        else:
            self._messages += 1
            self._out.append(reply(250, "2.0.0", f"Ok: queued as {outcome}"))
        return self._resume()

    def timed_out(self, reason: str = "timeout") -> list[Output]:
        """The edge ends the session: `timeout` (a command or data block took too long),
        `too_slow` (data below the minimum rate), `session_lifetime`, or `evicted` (the server
        is full and this session was the least active). 421, then close; the client may still
        be sending, so the close lingers except after a plain timeout."""
        if self._state == _CLOSED:
            return []
        code, enhanced, text = _TIMED_OUT.get(reason, _TIMED_OUT["timeout"])
        self._record(reason)
        self._out.append(reply(code, enhanced, f"{self._hostname} {text}"))
        self._close(reason, linger=reason != "timeout")
        return self._flush()

    # Plumbing ----------------------------------------------------------------------------

    def _expect(self, waiting: int) -> bool:
        """True when the result is awaited; False when the session closed meanwhile."""
        if self._state == _CLOSED:
            return False
        if self._state != _WAIT or self._waiting != waiting:
            raise RuntimeError("result reported for an output that is not outstanding")
        return True

    def _flush(self) -> list[Output]:
        outputs = self._outputs
        if self._out:
            outputs.append(Reply(b"".join(self._out)))
            self._out = []
        self._outputs = []
        return outputs

    def _emit(self, output: Output) -> None:
        if self._out:
            self._outputs.append(Reply(b"".join(self._out)))
            self._out = []
        self._outputs.append(output)

    def _resume(self) -> list[Output]:
        if self._state < _WAIT and self._pending:  # _BDAT after CheckData
            data = bytes(self._pending)
            self._pending = bytearray()
            self._run(data)
        return self._flush()

    def _record(self, reason: str) -> None:
        self._rejects += 1
        self._rejections.append(reason)

    def _refuse(self, code: int, enhanced: str, text: str, reason: str) -> None:
        """A negative reply that is not the client's mistake (not counted as an error)."""
        self._refuse_raw(reply(code, enhanced, text), reason)

    def _refuse_raw(self, data: bytes, reason: str) -> None:
        self._out.append(data)
        self._record(reason)

    def _fail(self, code: int, enhanced: str, text: str, reason: str) -> None:
        """A negative reply to a client mistake; too many of them end the session."""
        self._fail_raw(reply(code, enhanced, text), reason)

    def _fail_raw(self, data: bytes, reason: str) -> None:
        self._out.append(data)
        self._record(reason)
        self._errors += 1
        limit = self.policy.max_errors
        if limit and self._errors >= limit:
            self._record("too_many_errors")
            self._out.append(
                reply(421, "4.7.0", f"{self._hostname} Too many errors, closing connection")
            )
            self._close("too_many_errors")

    def _close(self, reason: str, *, linger: bool = False) -> None:
        self._state = _CLOSED
        self._close_reason = reason
        self._pending = bytearray()
        self._acc = bytearray()
        self._chunks = bytearray()
        if self._body is not None or self._streamed:
            self._drop_streamed()
        self._emit(Close(linger))

    def _reset_transaction(self) -> None:
        self._mail_from = None
        self._mail_params = {}
        self._rcpts = []
        self._rcpt_params = []
        self._bdat_active = False
        self._bdat_total = 0
        self._chunks = bytearray()
        self._acc = bytearray()
        if self._body is not None or self._streamed:
            self._drop_streamed()

    def _run(self, data: bytes) -> None:
        if self._inbuf:
            data = self._inbuf + data
            self._inbuf = b""
        pos = 0
        n = len(data)
        while pos < n:
            state = self._state
            if state in (_CMD, _AUTH):
                pos = self._line(data, pos, n)
            elif state == _DATA:
                pos = self._data(data, pos)
            elif state == _BDAT:
                pos = self._bdat(data, pos, n)
            elif state == _WAIT:
                self._pending += memoryview(data)[pos:]
                return
            else:  # _TLS discards what followed STARTTLS; _CLOSED ignores everything
                return

    def _line(self, data: bytes, pos: int, n: int) -> int:
        nl = data.find(b"\n", pos)
        if self._skipping:
            if nl < 0:
                return n
            self._skipping = False
            self._line_too_long()
            return nl + 1
        if nl < 0:
            if n - pos > self._max_line and n - pos > self._line_limit(data, pos):
                self._skipping = True
            else:
                self._inbuf = data[pos:]
            return n
        if nl + 1 - pos > self._max_line and nl + 1 - pos > self._line_limit(data, pos):
            self._line_too_long()
            return nl + 1
        end = nl - 1 if nl > pos and data[nl - 1] == 13 else nl
        if self._state == _CMD:
            self._command(data[pos:end])
        else:
            self._sasl_response(data[pos:end])
        return nl + 1

    def _line_limit(self, data: bytes, pos: int) -> int:
        if self._state == _AUTH:
            return AUTH_LINE_LIMIT
        head = data[pos : pos + 5].upper()
        if head == b"AUTH ":
            return AUTH_LINE_LIMIT
        if head == b"MAIL " or head == b"RCPT ":
            return self._max_line + PARAM_ALLOWANCE
        return self._max_line

    def _line_too_long(self) -> None:
        if self._state == _AUTH:
            self._state = _CMD
        self._fail(500, "5.5.2", "Line too long", "line_too_long")

    # Commands ----------------------------------------------------------------------------

    def _command(self, line: bytes) -> None:
        if b"\0" in line:
            self._fail(500, "5.5.2", "NUL characters are not allowed in commands", "syntax")
            return
        if b"\r" in line:
            self._fail(500, "5.5.2", "A bare CR is not allowed in commands", "syntax")
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._fail(500, "5.5.2", "The command is not valid UTF-8", "syntax")
            return
        verb, _, arg = text.rstrip(" \t").partition(" ")
        verb = verb.upper()
        handler = _COMMANDS.get(verb)
        if handler is not None:
            handler(self, arg.strip(" "))
        elif verb in _NOT_IMPLEMENTED:
            self._fail(502, "5.5.1", f"{verb} is not implemented", "not_implemented")
        elif verb in _HTTP_VERBS:
            self._record("http_command")
            self._out.append(
                reply(421, "4.7.0", f"{self._hostname} This is an SMTP server, closing connection")
            )
            self._close("http_command")
        elif not verb:
            self._fail(500, "5.5.2", "Empty command", "syntax")
        else:
            self._fail(500, "5.5.2", "Command not recognised", "unknown_command")

    def _ehlo(self, arg: str) -> None:
        if not arg or " " in arg:
            self._fail(501, "5.5.4", "Syntax: EHLO <your host name>", "syntax")
            return
        self._reset_transaction()
        if not self._helo:
            self._steps += 1
        self._helo = arg
        self._esmtp = True
        policy = self.policy
        lines = [
            f"{self._hostname} Hello {arg}",
            "PIPELINING",
            f"SIZE {policy.max_message_size}",
            "8BITMIME",
            "SMTPUTF8",
            "CHUNKING",
            "BINARYMIME",
            "ENHANCEDSTATUSCODES",
            "DSN",
        ]
        if policy.starttls_available and not self._tls_active:
            lines.append("STARTTLS")
        if self._auth_allowed() and self._auth_user is None:
            lines.append("AUTH " + " ".join(policy.auth_mechanisms))
        lines.append("HELP")
        self._out.append(multiline(250, "", lines))

    def _helo_cmd(self, arg: str) -> None:
        if not arg or " " in arg:
            self._fail(501, "5.5.4", "Syntax: HELO <your host name>", "syntax")
            return
        self._reset_transaction()
        if not self._helo:
            self._steps += 1
        self._helo = arg
        self._esmtp = False
        self._out.append(reply(250, "", f"{self._hostname} Hello {arg}"))

    def _auth_allowed(self) -> bool:
        policy = self.policy
        return bool(policy.auth_mechanisms) and (self._tls_active or policy.auth_without_tls)

    def _mail(self, arg: str) -> None:
        policy = self.policy
        if not self._helo:
            self._fail(503, "5.5.1", "Send EHLO or HELO first", "bad_sequence")
            return
        if self._mail_from is not None:
            self._fail(
                503, "5.5.1", "Sender already given; send RSET to start over", "bad_sequence"
            )
            return
        if policy.tls_required and not self._tls_active:
            self._fail(530, "5.7.0", "Must issue a STARTTLS command first", "tls_required")
            return
        if policy.auth_required and self._auth_user is None:
            self._fail(530, "5.7.0", "Authentication required", "auth_required")
            return
        if arg[:5].upper() != "FROM:":
            self._fail(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]", "syntax")
            return
        try:
            path = parse_path(arg[5:].lstrip(" "), null_ok=True, postmaster_ok=False)
        except AddressError as exc:
            self._fail(501, "5.1.7", f"Bad sender address syntax: {exc}", "bad_address")
            return
        params: dict[str, str] = {}
        if path.rest:
            parsed = self._params(path.rest)
            if parsed is None or not self._check_mail_params(parsed):
                return
            params = parsed
        if path.utf8 and "SMTPUTF8" not in params:
            self._fail(
                553,
                "5.6.7",
                "The sender address holds non-ASCII characters: add the SMTPUTF8 parameter",
                "non_ascii_address",
            )
            return
        size = params.get("SIZE")
        if size is not None and int(size) > policy.max_message_size:
            self._refuse(
                552,
                "5.3.4",
                f"Message size exceeds the maximum of {policy.max_message_size} octets",
                "message_too_large",
            )
            return
        if policy.check_sender:
            self._checking = (path.address, params)
            self._state = _WAIT
            self._waiting = _MAIL
            self._emit(CheckSender(path.address, params))
            return
        self._accept_sender(path.address, params)

    def _accept_sender(self, address: str, params: dict[str, str]) -> None:
        self._mail_from = address
        self._mail_params = params
        self._steps += 1
        self._out.append(reply(250, "2.1.0", f"Sender <{address}> ok"))

    def _params(self, text: str) -> dict[str, str] | None:
        if not self._esmtp:
            self._fail(
                555, "5.5.4", "Parameters need an EHLO session (HELO was used)", "bad_parameter"
            )
            return None
        try:
            return split_params(text, utf8=True)
        except ParamError as exc:
            self._fail(501, "5.5.4", f"Syntax error in parameters: {exc}", "bad_parameter")
            return None

    def _bad_param(self, key: str, why: str) -> bool:
        self._fail(501, "5.5.4", f"Bad {key} parameter: {why}", "bad_parameter")
        return False

    def _unknown_param(self, key: str) -> bool:
        self._fail(555, "5.5.4", f"Parameter {key} is not supported", "unknown_parameter")
        return False

    def _check_mail_params(self, params: dict[str, str]) -> bool:
        for key, value in params.items():
            if key == "SIZE":
                if not (value.isascii() and value.isdigit()) or len(value) > 20:
                    return self._bad_param(key, "expected a number of octets")
            elif key == "BODY":
                body = value.upper()
                if body not in _BODY_TYPES:
                    return self._bad_param(key, "expected 7BIT, 8BITMIME or BINARYMIME")
                params[key] = body
            elif key == "SMTPUTF8":
                if value:
                    return self._bad_param(key, "it takes no value")
            elif key == "RET":
                ret = value.upper()
                if ret not in ("FULL", "HDRS"):
                    return self._bad_param(key, "expected FULL or HDRS")
                params[key] = ret
            elif key == "ENVID":
                if not is_xtext(value) or len(value) > MAX_ENVID:
                    return self._bad_param(key, "expected xtext of at most 100 characters")
            elif key == "AUTH":
                if not is_xtext(value):
                    return self._bad_param(key, "expected an xtext address or <>")
            else:
                return self._unknown_param(key)
        return True

    def _check_rcpt_params(self, params: dict[str, str]) -> bool:
        for key, value in params.items():
            if key == "NOTIFY":
                items = value.upper().split(",")
                if items == ["NEVER"]:
                    params[key] = "NEVER"
                    continue
                if not value or len(set(items)) != len(items) or not _NOTIFY.issuperset(items):
                    return self._bad_param(
                        key, "expected NEVER or a list of SUCCESS, FAILURE, DELAY"
                    )
                params[key] = ",".join(items)
            elif key == "ORCPT":
                kind, semicolon, address = value.partition(";")
                utf8 = kind.lower() == "utf-8"
                if (
                    not semicolon
                    or not is_atom(kind)
                    or not address
                    or not is_xtext(address, utf8=utf8)
                    or len(value) > MAX_ORCPT
                ):
                    return self._bad_param(key, "expected address-type;xtext")
            else:
                return self._unknown_param(key)
        return True

    def _rcpt(self, arg: str) -> None:
        policy = self.policy
        if self._mail_from is None:
            self._fail(503, "5.5.1", "Send MAIL FROM first", "bad_sequence")
            return
        if self._bdat_active:
            self._fail(503, "5.5.1", "RCPT is not allowed during a BDAT transfer", "bad_sequence")
            return
        if arg[:3].upper() != "TO:":
            self._fail(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]", "syntax")
            return
        try:
            path = parse_path(arg[3:].lstrip(" "), null_ok=False, postmaster_ok=True)
        except AddressError as exc:
            self._fail(501, "5.1.3", f"Bad recipient address syntax: {exc}", "bad_address")
            return
        params: dict[str, str] = {}
        if path.rest:
            parsed = self._params(path.rest)
            if parsed is None or not self._check_rcpt_params(parsed):
                return
            params = parsed
        if path.utf8 and "SMTPUTF8" not in self._mail_params:
            self._fail(
                553,
                "5.6.7",
                "The recipient address holds non-ASCII characters: "
                "MAIL FROM needs the SMTPUTF8 parameter",
                "non_ascii_address",
            )
            return
        if len(self._rcpts) >= policy.max_recipients:
            self._refuse(452, "4.5.3", "Too many recipients", "too_many_recipients")
            return
        if policy.check_recipient:
            self._checking = (path.address, params)
            self._state = _WAIT
            self._waiting = _RCPT
            self._emit(CheckRecipient(path.address, params, self._mail_from))
            return
        self._accept_recipient(path.address, params)

    def _accept_recipient(self, address: str, params: dict[str, str]) -> None:
        self._rcpts.append(address)
        self._rcpt_params.append(params)
        self._steps += 1
        self._out.append(reply(250, "2.1.5", f"Recipient <{address}> ok"))

    def _transaction_ready(self) -> bool:
        if self._mail_from is None:
            self._fail(503, "5.5.1", "Send MAIL FROM first", "bad_sequence")
            return False
        if not self._rcpts:
            self._fail(503, "5.5.1", "Send RCPT TO first: no valid recipients", "bad_sequence")
            return False
        return True

    def _data_cmd(self, arg: str) -> None:
        if not self._transaction_ready():
            return
        if arg:
            self._fail(501, "5.5.4", "DATA takes no arguments", "syntax")
            return
        if self._bdat_active:
            self._fail(503, "5.5.1", "DATA cannot follow BDAT in one transaction", "bad_sequence")
            return
        if self._mail_params.get("BODY") == "BINARYMIME":
            self._fail(503, "5.5.1", "BODY=BINARYMIME needs BDAT, not DATA", "bad_sequence")
            return
        if self.policy.check_data:
            self._state = _WAIT
            self._waiting = _DATA_START
            self._emit(CheckData())
            return
        self._start_data()

    def _start_data(self) -> None:
        self._acc = bytearray(b"\r\n")  # the start of the data counts as after a CRLF
        self._scan = 0
        self._dots = 0
        self._dots_from = 0
        self._overflow = False
        self._state = _DATA
        self._steps += 1
        self._out.append(replies.START_DATA)

    def _data(self, data: bytes, pos: int) -> int:
        acc = self._acc
        before = len(acc)
        acc += memoryview(data)[pos:]
        idx = acc.find(_TERMINATOR, self._scan)
        if idx >= 0:
            consumed = pos + idx + 5 - before
            self._end_data(idx)
            return consumed
        size = len(acc)
        self._scan = size - 4 if size > 4 else 0
        policy = self.policy
        limit = policy.max_message_size
        if self._overflow:
            del acc[:-4]
            self._scan = 0
        elif policy.data_chunk and size > policy.data_chunk:
            # Hand over all but the last 4 octets, which may begin the terminator.
            unstuffer = self._unstuffer
            if unstuffer is None:
                unstuffer = self._unstuffer = Unstuffer()
            self._hand_over(unstuffer.feed(bytes(acc[: size - 4])), binary=False)
            del acc[: size - 4]
            self._scan = 0
            body = self._body
            if body is not None and body.size_in > limit:
                self._overflow = True  # everything handed over is message: surely too large
                self._drop_streamed()
        elif size - 4 > limit:
            # The limit is on the unstuffed message, and the verdict must not depend on how the
            # input was split: declare overflow only when the octets that are surely message
            # (not the leading CRLF, not a ".\r" that may begin the terminator, not stuffed
            # dots) already exceed it.
            self._dots += acc.count(b"\r\n.", self._dots_from)
            self._dots_from = size - 2
            if size - 4 - self._dots > limit:
                self._overflow = True
                del acc[:-4]
                self._scan = 0
        return len(data)

    def _end_data(self, idx: int) -> None:
        self._state = _CMD
        acc = self._acc
        self._acc = bytearray()
        unstuffer = self._unstuffer
        self._unstuffer = None
        if self._overflow:
            self._too_large()
            return
        if unstuffer is not None:
            self._complete(unstuffer.feed(bytes(acc[: idx + 2]), final=True), binary=False)
            return
        body = bytes(acc[: idx + 2])
        if b"\r\n." in body:
            body = body.replace(b"\r\n.", b"\r\n")
        self._complete(body[2:], binary=False)

    def _hand_over(self, data: bytes, *, binary: bool) -> None:
        """Check the next octets of the message and hand them to the edge (MessageData)."""
        body = self._body
        if body is None:
            policy = self.policy
            body = self._body = BodyCheck(
                binary=binary,
                reject_bare=policy.bare_line_endings == "reject",
                line_limit=policy.max_text_line,
            )
        out = body.feed(data)
        if out:
            self._streamed = True
            self._emit(MessageData(out))

    def _drop_streamed(self) -> None:
        """The message in progress will not be delivered: forget its checks, and tell the edge
        to drop what it was handed."""
        self._body = None
        self._unstuffer = None
        if self._streamed:
            self._streamed = False
            self._emit(DiscardMessage())

    def _too_large(self) -> None:
        self._overflow = False
        self._reset_transaction()
        self._refuse(
            552,
            "5.3.4",
            f"Message size exceeds the maximum of {self.policy.max_message_size} octets",
            "message_too_large",
        )

    def _complete(self, message: bytes, *, binary: bool, chunked: bool = False) -> None:
        """Judge the message (its last octets when pieces were handed over before), then hand
        it to the edge."""
        policy = self.policy
        body = self._body
        streamed = self._streamed
        if body is None:
            body = BodyCheck(
                binary=binary,
                reject_bare=policy.bare_line_endings == "reject",
                line_limit=policy.max_text_line,
            )
            message = body.whole(message, chunked=chunked)
        else:
            message = body.feed(message)
            message += body.finish(chunked=chunked)
        if body.size_in > policy.max_message_size:
            # First, as when DATA overflowed while it arrived: the same reply however split.
            self._too_large()
            return
        if body.nul:
            self._reset_transaction()
            self._fail(554, "5.6.0", "The message contains NUL characters", "nul_in_data")
            return
        if body.bare and body.reject_bare:
            self._reset_transaction()
            self._fail(
                550, "5.6.11", "Bare CR or LF line endings are not allowed", "bare_line_ending"
            )
            return
        if body.too_long:
            limit = policy.max_text_line
            self._reset_transaction()
            self._fail(
                500,
                "5.5.2",
                f"Line too long: text lines may hold at most {limit - 2} characters",
                "text_line_too_long",
            )
            return
        if body.size_out > policy.max_message_size:
            self._too_large()
            return
        bare = body.bare
        self._body = None
        self._streamed = False
        envelope = Envelope(
            self._mail_from or "",
            tuple(self._rcpts),
            self._mail_params,
            tuple(self._rcpt_params),
        )
        self._state = _WAIT
        self._waiting = _DATA
        self._steps += 1
        self._emit(DeliverMessage(envelope, message, bare, streamed))

    def _bdat_cmd(self, arg: str) -> None:
        parts = arg.split()
        if (
            not parts
            or len(parts) > 2
            or not (parts[0].isascii() and parts[0].isdigit())
            or len(parts[0]) > 20
            or (len(parts) == 2 and parts[1].upper() != "LAST")
        ):
            self._fail(501, "5.5.4", "Syntax: BDAT <size> [LAST]", "syntax")
            return
        size = int(parts[0])
        limit = self.policy.max_message_size
        if self._mail_from is None:
            self._fail(503, "5.5.1", "Send MAIL FROM first", "bad_sequence")
        elif not self._rcpts:
            self._fail(503, "5.5.1", "Send RCPT TO first: no valid recipients", "bad_sequence")
        elif self._bdat_total + size > limit:
            # Judged on the announced size: no octet of a chunk that cannot fit is awaited.
            self._too_large()
        elif not self._bdat_active and self.policy.check_data:
            self._bdat_size = size
            self._bdat_last = len(parts) == 2
            self._state = _WAIT
            self._waiting = _BDAT_START
            self._emit(CheckData())
            return
        else:
            self._accept_chunk(size, last=len(parts) == 2)
            return
        # Refused before its octets arrive, which the client sends anyway (RFC 3030 §2: BDAT
        # has no intermediate reply; later chunks already pipelined are discarded, §4).
        if self._state == _CLOSED:
            return
        if size > limit:
            # Too big to skip: reading it would hold the session for as long as the client
            # likes. Say so and close (RFC 5321 §3.8), keeping the framing out of doubt.
            self._record("chunk_too_large")
            self._out.append(
                reply(
                    421,
                    "4.3.4",
                    f"{self._hostname} The rest of that {size}-octet chunk will not be read, "
                    "closing connection",
                )
            )
            self._close("chunk_too_large", linger=True)
            return
        self._start_chunk(size, last=False, discard=True)

    def _accept_chunk(self, size: int, *, last: bool) -> None:
        if not self._bdat_active:
            self._bdat_active = True
            self._chunks = bytearray()
            self._bdat_total = 0
        self._bdat_total += size
        self._start_chunk(size, last=last, discard=False)

    def _start_chunk(self, size: int, *, last: bool, discard: bool) -> None:
        self._bdat_discard = discard
        self._bdat_size = size
        self._bdat_remaining = size
        self._bdat_last = last
        self._state = _BDAT
        if size == 0:
            self._bdat_done()

    def _bdat(self, data: bytes, pos: int, n: int) -> int:
        take = min(self._bdat_remaining, n - pos)
        if not self._bdat_discard:
            chunks = self._chunks
            chunks += memoryview(data)[pos : pos + take]
            chunk = self.policy.data_chunk
            if chunk and len(chunks) > chunk:
                self._chunks = bytearray()
                binary = self._mail_params.get("BODY") == "BINARYMIME"
                self._hand_over(bytes(chunks), binary=binary)
        self._bdat_remaining -= take
        if self._bdat_remaining == 0:
            self._bdat_done()
        return pos + take

    def _bdat_done(self) -> None:
        self._state = _CMD
        if self._bdat_discard:
            self._bdat_discard = False  # its reply went out with the BDAT command
            return
        if not self._bdat_last:
            self._steps += 1
            self._out.append(reply(250, "2.0.0", f"{self._bdat_size} octets received"))
            return
        message = bytes(self._chunks)
        self._chunks = bytearray()
        binary = self._mail_params.get("BODY") == "BINARYMIME"
        self._complete(message, binary=binary, chunked=True)

    def _rset(self, arg: str) -> None:
        if arg:
            self._fail(501, "5.5.4", "RSET takes no arguments", "syntax")
            return
        self._reset_transaction()
        self._out.append(replies.RSET_OK)

    def _noop(self, arg: str) -> None:
        self._out.append(replies.NOOP_OK)

    def _quit(self, arg: str) -> None:
        if arg:
            self._fail(501, "5.5.4", "QUIT takes no arguments", "syntax")
            return
        self._out.append(reply(221, "2.0.0", f"{self._hostname} Goodbye"))
        self._close("quit")

    def _vrfy(self, arg: str) -> None:
        if not arg:
            self._fail(501, "5.5.4", "Syntax: VRFY <address>", "syntax")
            return
        self._out.append(replies.VRFY_REPLY)

    def _expn(self, arg: str) -> None:
        self._fail_raw(replies.EXPN_REPLY, "not_implemented")

    def _help(self, arg: str) -> None:
        if not arg:
            self._out.append(_HELP_ALL)
            return
        topic = _HELP_TOPICS.get(arg.upper())
        if topic is None:
            self._fail(504, "5.5.4", f"No help for {arg!r}: try HELP", "syntax")
            return
        self._out.append(reply(214, "2.0.0", topic))

    def _starttls(self, arg: str) -> None:
        if arg:
            self._fail(501, "5.5.4", "STARTTLS takes no arguments", "syntax")
            return
        if self._tls_active:
            self._fail(503, "5.5.1", "TLS is already active", "bad_sequence")
            return
        if not self.policy.starttls_available:
            self._fail(454, "4.7.0", "TLS is not available", "tls_unavailable")
            return
        self._out.append(replies.READY_FOR_TLS)
        self._state = _TLS
        self._steps += 1
        self._emit(StartTls())

    # AUTH (RFC 4954, PLAIN RFC 4616, LOGIN) -------------------------------------------------

    def _auth(self, arg: str) -> None:
        policy = self.policy
        if not policy.auth_mechanisms:
            self._fail(502, "5.5.1", "Authentication is not available", "not_implemented")
            return
        if not self._tls_active and not policy.auth_without_tls:
            self._fail(530, "5.7.0", "Must issue a STARTTLS command first", "tls_required")
            return
        if not self._esmtp:
            self._fail(503, "5.5.1", "Send EHLO first", "bad_sequence")
            return
        if self._auth_user is not None:
            self._fail(503, "5.5.1", "Already authenticated", "bad_sequence")
            return
        if self._mail_from is not None:
            self._fail(
                503, "5.5.1", "AUTH is not allowed during a mail transaction", "bad_sequence"
            )
            return
        parts = arg.split()
        if not parts or len(parts) > 2:
            self._fail(501, "5.5.4", "Syntax: AUTH <mechanism> [initial-response]", "syntax")
            return
        mechanism = parts[0].upper()
        if mechanism not in policy.auth_mechanisms:
            self._fail(
                504,
                "5.5.4",
                "Unrecognised authentication mechanism; use " + " or ".join(policy.auth_mechanisms),
                "syntax",
            )
            return
        initial = parts[1].encode("utf-8") if len(parts) == 2 else None
        if mechanism == "PLAIN":
            if initial is None:
                self._state = _AUTH
                self._sasl_step = _PLAIN
                self._out.append(_EMPTY_CHALLENGE)
            else:
                self._sasl_plain(initial)
        elif initial is None:
            self._state = _AUTH
            self._sasl_step = _LOGIN_USER
            self._out.append(_LOGIN_USER_PROMPT)
        else:
            self._sasl_login_user(initial)

    def _sasl_bad(self, why: str) -> None:
        self._state = _CMD
        self._fail(501, "5.5.2", why, "auth_malformed")

    def _sasl_response(self, line: bytes) -> None:
        if line == b"*":
            self._state = _CMD
            self._fail_raw(replies.AUTH_CANCELLED, "auth_cancelled")
            return
        step = self._sasl_step
        if step == _PLAIN:
            self._sasl_plain(line)
        elif step == _LOGIN_USER:
            self._sasl_login_user(line)
        else:
            decoded = _b64decode(line)
            if decoded is None:
                self._sasl_bad("Invalid base64 data")
                return
            try:
                password = decoded.decode("utf-8")
            except UnicodeDecodeError:
                self._sasl_bad("The password is not valid UTF-8")
                return
            self._check_auth("LOGIN", self._sasl_username, password)

    def _sasl_plain(self, response: bytes) -> None:
        decoded = _b64decode(response)
        if decoded is None:
            self._sasl_bad("Invalid base64 data")
            return
        parts = decoded.split(b"\0")
        if len(parts) != 3:
            self._sasl_bad("Malformed PLAIN response: expected authzid NUL user NUL password")
            return
        try:
            authzid, username, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            self._sasl_bad("The credentials are not valid UTF-8")
            return
        if authzid and authzid != username:
            self._state = _CMD
            self._fail_raw(replies.AUTH_FAILED, "auth_failed")
            return
        self._check_auth("PLAIN", username, password)

    def _sasl_login_user(self, response: bytes) -> None:
        decoded = _b64decode(response)
        if decoded is None:
            self._sasl_bad("Invalid base64 data")
            return
        try:
            self._sasl_username = decoded.decode("utf-8")
        except UnicodeDecodeError:
            self._sasl_bad("The user name is not valid UTF-8")
            return
        self._state = _AUTH
        self._sasl_step = _LOGIN_PASSWORD
        self._out.append(_LOGIN_PASSWORD_PROMPT)

    def _check_auth(self, mechanism: str, username: str, password: str) -> None:
        self._sasl_username = ""
        self._state = _WAIT
        self._waiting = _AUTH
        self._emit(CheckAuth(mechanism, username, password))


_COMMANDS: Mapping[str, Callable[[SmtpSession, str], None]] = {
    "EHLO": SmtpSession._ehlo,
    "HELO": SmtpSession._helo_cmd,
    "MAIL": SmtpSession._mail,
    "RCPT": SmtpSession._rcpt,
    "DATA": SmtpSession._data_cmd,
    "BDAT": SmtpSession._bdat_cmd,
    "RSET": SmtpSession._rset,
    "NOOP": SmtpSession._noop,
    "QUIT": SmtpSession._quit,
    "VRFY": SmtpSession._vrfy,
    "EXPN": SmtpSession._expn,
    "HELP": SmtpSession._help,
    "STARTTLS": SmtpSession._starttls,
    "AUTH": SmtpSession._auth,
}
