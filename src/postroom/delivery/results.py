"""What a delivery result tells the event log: the reply, the remote MTA, hard or soft, the reason.

One function per question, so that the worker, the queue actions and the notices read a
result the same way. The reason comes from the bounce classifier (bounces/reasons.py), the same
vocabulary asynchronous bounces get.
"""

from __future__ import annotations

from typing import Any

from postroom.bounces.reasons import classify, is_hard
from postroom.smtp.client_protocol import ServerReply


def reply_detail(reply: ServerReply, mx: str = "", ip: str = "") -> dict[str, Any]:
    """The event detail of a reply from `mx` (host name) at `ip`: `code`, `enhanced`,
    `text` (the full reply text, lines joined), `remote_mta`, `remote_ip`, `local` (true when
    Postroom decided the reply itself: routing, connection or TLS failures); for a failure
    also `hard` (a permanent failure of the address itself: do not send again) and `reason`."""
    detail: dict[str, Any] = {
        "code": reply.code,
        "enhanced": reply.enhanced,
        "text": reply.text,
        "remote_mta": mx,
        "remote_ip": ip,
        "local": reply.local,
    }
    if not reply.positive:
        reason = classify(reply.enhanced, str(reply))
        detail["reason"] = reason
        detail["hard"] = is_hard(reason, reply.enhanced, str(reply.code))
    return detail


def expired_detail(last: ServerReply, mx: str = "", ip: str = "") -> dict[str, Any]:
    """The detail of a recipient that failed because its queue lifetime ran out: 5.4.7, with
    the last temporary reply it got."""
    detail = reply_detail(last, mx, ip)
    detail.update(
        code=550,
        enhanced="5.4.7",
        text=f"Delivery time expired; last error: {last}",
        reason="expired",
        hard=False,
        last_code=last.code,
        last_enhanced=last.enhanced,
    )
    return detail
