"""The Received: trace header a door prepends (RFC 5321 §4.4)."""

from __future__ import annotations

import functools
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
