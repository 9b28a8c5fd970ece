"""SMTP reply formatting (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 5248).

A reply is `code SP enhanced SP text CRLF`; a multi-line reply uses `code-` on every line but
the last. Text never contains CR or LF: any line break in the text becomes a new reply line.
No reply line exceeds 512 octets with its CRLF (RFC 5321 §4.5.3.1.5): a longer text (say, one
quoting a client's over-long argument) is cut at a character boundary and ends in "...".
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_LINE = 512  # octets, CRLF included (RFC 5321 §4.5.3.1.5)


def reply(code: int, enhanced: str, text: str) -> bytes:
    """One reply, possibly multi-line when `text` holds line breaks.

    `enhanced` may be "" for the replies RFC 2034 exempts (greeting, EHLO/HELO, 334, 354).
    """
    prefix = f"{code} {enhanced} " if enhanced else f"{code} "
    if "\n" not in text and "\r" not in text:
        line = (prefix + text + "\r\n").encode("utf-8")
        return line if len(line) <= MAX_LINE else _clip(line)
    parts = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return multiline(code, enhanced, parts)


def multiline(code: int, enhanced: str, lines: Sequence[str]) -> bytes:
    """A multi-line reply: every line carries the code (and enhanced code when given)."""
    if not lines:
        lines = [""]
    mark = f" {enhanced}" if enhanced else ""
    out = [f"{code}-{enhanced + ' ' if enhanced else ''}{line}\r\n" for line in lines[:-1]]
    out.append(f"{code}{mark} {lines[-1]}\r\n")
    data = "".join(out).encode("utf-8")
    if len(data) <= MAX_LINE or all(len(line.encode()) <= MAX_LINE for line in out):
        return data
    return b"".join(_clip(line.encode("utf-8")) for line in out)


def _clip(line: bytes) -> bytes:
    """`line` (ending in CRLF) cut to MAX_LINE octets, at a UTF-8 character boundary."""
    if len(line) <= MAX_LINE:
        return line
    head = line[: MAX_LINE - 5].decode("utf-8", "ignore").encode("utf-8")
    return head + b"...\r\n"


# Replies sent on the hot path, pre-encoded.
OK = reply(250, "2.0.0", "Ok")
NOOP_OK = OK
RSET_OK = reply(250, "2.0.0", "Ok: transaction reset")
START_DATA = reply(354, "", "End data with <CR><LF>.<CR><LF>")
VRFY_REPLY = reply(
    252, "2.5.0", "Cannot verify the user, but will accept the message and attempt delivery"
)
EXPN_REPLY = reply(502, "5.5.1", "EXPN is not supported")
AUTH_OK = reply(235, "2.7.0", "Authentication successful")
AUTH_FAILED = reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_TEMPFAIL = reply(454, "4.7.0", "Temporary authentication failure, please try again later")
AUTH_CANCELLED = reply(501, "5.0.0", "Authentication cancelled")
READY_FOR_TLS = reply(220, "2.0.0", "Ready to start TLS")
