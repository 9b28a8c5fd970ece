"""The Received: trace header a door prepends (RFC 5321 §4.4)."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from postroom.core.types import Envelope, SessionInfo


@functools.lru_cache(maxsize=64)
def _date(second: int, offset: timedelta | None) -> str:
    """RFC 5322 date-time of `second` (epoch) in the zone `offset`: one format per second."""
    zone = UTC if offset is None else timezone(offset)
    return format_datetime(datetime.fromtimestamp(second, zone))


def received_header(
    session: SessionInfo, envelope: Envelope, message_id: str, at: datetime
) -> bytes:
    helo = session.helo or "unknown"
    peer = f"[{session.peer_host}]" if session.peer_host else "unknown"
    protocol = "ESMTP" if session.esmtp else "SMTP"
    if session.tls:
        protocol += "S"
    if session.auth_user is not None:
        protocol += "A"
    lines = [f"Received: from {helo} ({peer})", f"\tby {session.server_name} (Postroom)"]
    if session.tls:
        lines.append(f"\t(using {session.tls.version} with cipher {session.tls.cipher})")
    if session.auth_user is not None:
        user = (
            session.auth_user.replace("(", "").replace(")", "").replace("\r", "").replace("\n", "")
        )
        lines.append(f"\t(authenticated as {user})")
    lines.append(f"\twith {protocol} id {message_id}")
    if len(envelope.recipients) == 1:
        lines.append(f"\tfor <{envelope.recipients[0]}>")
    lines[-1] += f"; {_date(int(at.timestamp()), at.utcoffset())}"
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace")


# What received_header writes first: "Received: from HELO ([ADDRESS])", CRLF TAB,
# "by NAME (Postroom)".
_OWN_TRACE = re.compile(
    rb"Received: from (.*) \((?:\[([0-9A-Fa-f:.]+)\]|unknown)\)\r\n\tby [^\r\n]* \(Postroom\)"
)


@dataclass(frozen=True, slots=True)
class TraceFacts:
    """The SMTP client Postroom's own Received header names: its address ("" when unknown)
    and the name it gave in HELO/EHLO ("" when none)."""

    client_ip: str
    helo: str


def read_own_received(raw: bytes) -> TraceFacts | None:
    """The facts of the Received header Postroom put first on a stored message, or None when
    the message does not start with one (it always does when a door stored it)."""
    match = _OWN_TRACE.match(raw, 0, 4096)
    if match is None:
        return None
    helo = match.group(1).decode("utf-8", "replace")
    address = (match.group(2) or b"").decode("ascii")
    try:
        address = str(ipaddress.ip_address(address)) if address else ""
    except ValueError:
        address = ""
    return TraceFacts(address, "" if helo == "unknown" else helo)
