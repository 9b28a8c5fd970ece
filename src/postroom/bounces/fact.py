"""From what a report says of one recipient to the classified `Recipient` (sisimai's
Sisimai::Fact / Sisimai::Data->make): codes found in the diagnostic, the reason, a pseudo status
when the report gave none, and hard or soft. The same function classifies the synchronous SMTP
replies the delivery workers get (`classify_reply`)."""

from __future__ import annotations

import re

from postroom.bounces.command import smtp_command
from postroom.bounces.model import Recipient
from postroom.bounces.mta import preset_reason
from postroom.bounces.reasons import NOT_BOUNCES, Facts, classify_facts, is_hard
from postroom.bounces.status import find_reply_code, find_status, is_permanent, pseudo_status

_SPECIFIC = re.compile(r"[45]\.[1-9]\.[1-9]")
_QUOTED_ADDRESS = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
_COMMANDS = frozenset({"EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT", "STARTTLS"})
# An expiry notice that quotes the reply of the last attempt ("554 4.4.7 Message expired:
# unable to deliver in 840 minutes.<421 4.4.2 Connection timed out>", Amazon SES and WorkMail):
# the quoted reply tells why the message expired.
_EXPIRED_WITH_LAST_REPLY = re.compile(
    r"message expired\b[^<>]*<\s*(?P<reply>[45]\d\d)[ -](?P<status>[45]\.\d{1,3}\.\d{1,3})\b",
    re.IGNORECASE,
)


def _without_repeated_codes(text: str, status: str, reply: str) -> str:
    """A multi-line reply joined into one ("550-5.7.1 ... 550-5.7.1 ...") without the codes
    repeated at each line, so that its sentences can be read."""
    count = 0
    if status:
        count += len(re.findall(rf"\b{re.escape(status)}\b", text))
    if reply:
        count += len(re.findall(rf"\b{reply}\b", text))
    if count <= 2:
        return text
    escaped = re.escape(status) if status else "(?!)"
    for pattern in (
        rf";?\s{reply}[- ](?:{escaped})?" if reply else "",
        rf";?\s[45]\d\d[- ](?:{escaped})?",
        rf";?\s{reply}[- ](?:[45]\.\d\.\d+)?" if reply else "",
    ):
        if pattern:
            text = re.sub(pattern, " ", text)
    text = re.sub(r"<html>.+</html>", "", text, flags=re.IGNORECASE)
    return " ".join(text.split())


def finish(address: str, facts: Facts, remote_mta: str = "", feedback_type: str = "") -> Recipient:
    diagnostic = " ".join(facts.diagnostic.split())
    facts.diagnostic = diagnostic
    last = _EXPIRED_WITH_LAST_REPLY.search(diagnostic)
    if last:
        facts.status, facts.reply_code = last.group("status"), last.group("reply")
        facts.reason = facts.reason or "expired"
    elif diagnostic:
        found = find_status(diagnostic)
        vague = not facts.status or facts.status.endswith(".0.0")
        if (found and _SPECIFIC.fullmatch(found)) or (found[:1] in ("4", "5") and vague):
            facts.status = found
        reply = find_reply_code(diagnostic)
        facts.reply_code = facts.reply_code or reply
        facts.diagnostic = diagnostic = _without_repeated_codes(diagnostic, found, reply)
    if not facts.spec:
        if facts.reason == "mailererror":
            facts.spec = "X-UNIX"
        elif facts.reason not in ("feedback", "vacation"):
            facts.spec = "SMTP"
    if facts.command not in _COMMANDS:
        facts.command = ""
    if not facts.command and facts.family == "yahoo" and _QUOTED_ADDRESS.search(diagnostic):
        facts.command = "RCPT"  # Yahoo quotes the remote reply to RCPT TO, address and all
    if not facts.reason:
        facts.reason = preset_reason(diagnostic, facts.command, facts.family)
    first_reason = facts.reason
    if not facts.action:
        if facts.reason == "expired":
            facts.action = "delayed"
        elif facts.status[:1] in ("4", "5"):
            facts.action = "failed"
    if not facts.destination and "@" in address:
        facts.destination = address.rsplit("@", 1)[1]
    reason = classify_facts(facts)
    status, reply_code = facts.status, facts.reply_code
    if reason in NOT_BOUNCES:
        if reason != "delivered":
            reply_code = ""
        return Recipient(
            address,
            facts.action,
            status,
            reply_code,
            diagnostic,
            reason,
            False,
            remote_mta,
            feedback_type,
        )
    if not status:
        permanent = is_permanent(f"{reply_code} {diagnostic}".strip())
        status = pseudo_status(first_reason or reason, temporary=permanent is False)
    if reply_code and status and reply_code[0] != status[0]:
        reply_code = ""
    return Recipient(
        address,
        facts.action,
        status,
        reply_code,
        diagnostic,
        reason,
        is_hard(reason, status),
        remote_mta,
        feedback_type,
    )


def classify_reply(reply: str, command: str = "") -> Recipient:
    """Classify one SMTP reply a delivery attempt got ("550 5.1.1 No such user") after
    `command` (MAIL, RCPT, DATA...): the same reasons and hard/soft as a bounce."""
    return finish("", Facts(diagnostic=reply, command=command.upper() or smtp_command(reply)))


__all__ = ["classify_reply", "finish", "smtp_command"]
