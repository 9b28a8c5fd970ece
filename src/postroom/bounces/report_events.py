"""The events a bounce or complaint report means for the event log (what the inbound MX door
writes when a report comes back to a VERP return path): a `bounce` per failed recipient, a
`complaint` per complained-of recipient. Delays, success notices and auto-replies change no
delivery: they make no event.

A bounce's detail has the reply (`code`, `enhanced`, `text`), `reason`, `hard`, SES's
`bounceType` and `bounceSubType`, the `remote_mta` and `reporting_mta`, and `async` true (it
came back later, rather than as the delivery worker's SMTP reply); the suppression feed turns
hard ones into suppression entries. A complaint's has `feedback_type`, `user_agent`,
`arrival_date` and `source_ip`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postroom.bounces.model import Report
from postroom.bounces.ses_types import bounce_type
from postroom.core.events import NewEvent

_TEXT = 1000


def report_events(
    report: Report,
    project: str,
    when: datetime,
    message_id: str | None = None,
    recipient: str | None = None,
) -> list[NewEvent]:
    """The events of `report` for `project`'s message `message_id`. With `recipient` (the one
    the VERP return path names) only that recipient's lines count, and a report naming none
    of its recipients is taken to be about it."""
    lines = list(report.recipients)
    if recipient is not None:
        mine = [r for r in lines if r.address.lower() == recipient.lower()]
        lines = mine or [r for r in lines[:1]]
    out: list[NewEvent] = []
    if report.kind == "complaint":
        for line in lines:
            detail: dict[str, Any] = {
                "feedback_type": line.feedback_type or "abuse",
                "user_agent": report.user_agent,
                "arrival_date": report.arrival_date,
                "source_ip": report.source_ip,
            }
            address = recipient or line.address or None
            out.append(NewEvent(project, "complaint", when, message_id, address, detail))
        return out
    if report.kind != "bounce":
        return out
    for line in lines:
        if line.reason == "delivered" or line.action in ("delayed", "delivered", "relayed"):
            continue
        kind, sub = bounce_type(line.reason, line.hard)
        detail = {
            "code": int(line.reply_code) if line.reply_code.isdigit() else None,
            "enhanced": line.status,
            "text": line.diagnostic[:_TEXT],
            "reason": line.reason,
            "hard": line.hard,
            "bounceType": kind,
            "bounceSubType": sub,
            "remote_mta": line.remote_mta,
            "reporting_mta": report.reporting_mta,
            "async": True,
        }
        address = recipient if recipient is not None else line.address
        out.append(NewEvent(project, "bounce", when, message_id, address, detail))
    return out
