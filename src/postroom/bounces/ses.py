"""Amazon SES notifications (bounce, complaint, delivery) as JSON, by email through SNS, as a
bare SNS message or as SES event publishing: the same `Report` as a DSN or an ARF report.

SNS wraps long lines of the JSON it mails ("!" then a newline and a space); they are joined
before reading. The classification of each bounced recipient goes through the same rules as
any other report, the status and diagnostic SES gives being the remote server's answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from postroom.bounces.fact import finish, smtp_command
from postroom.bounces.model import Recipient, Report
from postroom.bounces.reasons import Facts

_WRAP = re.compile(r"!\r?\n ")
_FEEDBACK_TYPES = ("abuse", "fraud", "virus", "auth-failure", "not-spam", "other")


def _document(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(_WRAP.sub("", text[start : end + 1]))
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("Message"), str):  # an SNS envelope
        try:
            value = json.loads(value["Message"])
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def read_ses(text: str) -> Report | None:
    """The report an SES notification carries, or None when `text` is not one."""
    if "notificationType" not in text and "eventType" not in text:
        return None
    document = _document(text)
    if document is None:
        return None
    kind = _text(document.get("notificationType") or document.get("eventType")).lower()
    found = document.get("mail")
    mail: dict[str, Any] = found if isinstance(found, dict) else {}
    message_id = _text(mail.get("messageId"))
    source = _text(mail.get("source"))
    if kind == "bounce" and isinstance(document.get("bounce"), dict):
        bounce = document["bounce"]
        transient = _text(bounce.get("bounceType")) == "Transient"
        recipients = []
        for item in bounce.get("bouncedRecipients") or []:
            if not isinstance(item, dict):
                continue
            diagnostic = _text(item.get("diagnosticCode"))
            spec, sep, rest = diagnostic.partition(";")
            if sep and " " not in spec.strip():
                diagnostic = rest.strip()
            facts = Facts(
                status=_text(item.get("status")),
                diagnostic=diagnostic,
                command=smtp_command(diagnostic),
                action=_text(item.get("action")) or ("delayed" if transient else "failed"),
            )
            recipients.append(finish(_text(item.get("emailAddress")).lower(), facts))
        return Report(
            "bounce",
            tuple(recipients),
            reporting_mta=_text(bounce.get("reportingMTA")).partition(";")[2].strip(),
            original_message_id=message_id,
            original_from=source,
        )
    if kind == "complaint" and isinstance(document.get("complaint"), dict):
        complaint = document["complaint"]
        feedback = _text(complaint.get("complaintFeedbackType")).lower() or "abuse"
        if feedback not in _FEEDBACK_TYPES:
            feedback = "other"
        addresses = [
            _text(item.get("emailAddress")).lower()
            for item in complaint.get("complainedRecipients") or []
            if isinstance(item, dict)
        ]
        return Report(
            "complaint",
            tuple(
                Recipient(a, reason="feedback", feedback_type=feedback) for a in addresses or [""]
            ),
            original_message_id=message_id,
            original_from=source,
            user_agent=_text(complaint.get("userAgent")),
            arrival_date=_text(complaint.get("arrivalDate")),
        )
    if kind == "delivery" and isinstance(document.get("delivery"), dict):
        delivery = document["delivery"]
        reply = _text(delivery.get("smtpResponse"))
        return Report(
            "delivery",
            tuple(
                finish(
                    _text(a).lower(), Facts(diagnostic=reply, action="delivered", status="2.0.0")
                )
                for a in delivery.get("recipients") or []
            ),
            reporting_mta=_text(delivery.get("reportingMTA")),
            original_message_id=message_id,
            original_from=source,
        )
    return None
