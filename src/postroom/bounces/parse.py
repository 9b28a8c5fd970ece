"""Read a bounce, a complaint or an auto-reply: `parse_report(raw) -> Report | None`.

Three shapes are understood:

* RFC 3464 delivery status notifications (`multipart/report; report-type=delivery-status`,
  and the `message/delivery-status` part wherever it is): one recipient per per-recipient
  block, with Action, Status, Remote-MTA and Diagnostic-Code. The human-readable part fills in
  a diagnostic the machine part left out.
* RFC 5965 feedback reports (ARF, `message/feedback-report`): a complaint about the original
  message, for each Original-Rcpt-To (or the recipient found in the returned message).
* Everything else that looks like a bounce (qmail, Exim, old Sendmail, Exchange, webmail
  providers): recipients and their diagnostic text found in the body by `legacy.scan`.
  Auto-replies (RFC 3834 `Auto-Submitted: auto-replied`, vacation subjects) are `autoreply`.

A message that is none of these (an ordinary message) gives None.
"""

from __future__ import annotations

import re
from email.message import Message

from postroom.bounces.fact import finish, smtp_command
from postroom.bounces.legacy import is_autoreply, looks_like_bounce, scan
from postroom.bounces.model import Recipient, Report, ReportKind
from postroom.bounces.mta import family_of, report_reason
from postroom.bounces.reasons import Facts
from postroom.bounces.ses import read_ses
from postroom.mime.decoding import decode_bytes, header_text
from postroom.mime.tree import decode_payload, parse

_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+[A-Za-z0-9]")
_FEEDBACK_TYPES = ("abuse", "fraud", "virus", "auth-failure", "not-spam", "other", "opt-out")


def _fields(text: str) -> list[list[tuple[str, str]]]:
    """RFC 3464 / 5965 field blocks (separated by blank lines), unfolded, names lower-cased."""
    blocks: list[list[tuple[str, str]]] = []
    block: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if block:
                blocks.append(block)
                block = []
            continue
        if line[0] in " \t" and block:
            name, value = block[-1]
            block[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            block.append((name.strip().lower(), value.strip()))
    if block:
        blocks.append(block)
    return blocks


def _typed(value: str) -> str:
    """The value of a typed field ("rfc822; a@b" -> "a@b", "smtp; 550 ..." -> "550 ...")."""
    kind, sep, rest = value.partition(";")
    if sep and kind.strip() and " " not in kind.strip():
        return rest.strip()
    return value.strip()


def _address(value: str) -> str:
    match = _ADDRESS.search(_typed(value))
    return match.group(0).strip(".").lower() if match else ""


def _text_of(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/* parsed as a container
        return "\n\n".join(_text_of(p) for p in payload if isinstance(p, Message))
    return decode_bytes(decode_payload(part), part.get_content_charset())


def _part_text(part: Message) -> str:
    """The text of a message/delivery-status or feedback-report part, however it was parsed."""
    payload = part.get_payload()
    if isinstance(payload, list):
        chunks = []
        for sub in payload:
            if isinstance(sub, Message):
                chunks.append("\n".join(f"{k}: {v}" for k, v in sub.items()))
                body = sub.get_payload()
                if isinstance(body, str) and body.strip():
                    chunks.append(body)
        return "\n\n".join(chunks)
    return _text_of(part)


def _original(root: Message) -> Message | None:
    for part in root.walk():
        ctype = part.get_content_type()
        if ctype in (
            "message/rfc822",
            "message/global",
            "text/rfc822-headers",
            "message/rfc822-headers",
        ):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            if isinstance(payload, str):
                return parse(payload.encode("utf-8", "surrogateescape"))
    return None


def _human_text(root: Message) -> str:
    """The readable text of the report (first text parts, not the returned message)."""
    chunks: list[str] = []
    for part in root.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            break
        if ctype == "text/plain" or (ctype == "text/html" and not chunks):
            text = _text_of(part)
            if ctype == "text/html":
                text = re.sub(r"<[^>]+>", " ", text)
            chunks.append(text)
    return "\n".join(chunks)


def _diagnostic_from_text(text: str, address: str) -> str:
    """The sentences about `address` in the readable part (Postfix, Sendmail style)."""
    if not address:
        return ""
    lowered = text.lower()
    at = lowered.find(address)
    if at < 0:
        return ""
    tail = text[at : at + 600]
    paragraph = re.split(r"\n\s*\n", tail, maxsplit=1)[0]
    return " ".join(paragraph.split())


def _longer_from_text(diagnostic: str, context: str) -> str:
    """The readable part's version of a diagnostic when it says more: Postfix writes the
    SMTP command the reply answered there ("... (in reply to RCPT TO command)")."""
    short = " ".join(diagnostic.split())
    long = " ".join(context.split())
    at = long.lower().find(short.lower()[:60])
    if at < 0 or len(long) - at <= len(short):
        return diagnostic
    return long[at:]


def _transcript_stage(human: str, address: str, context: str) -> str:
    """What tells the SMTP command a reply answered: the recipient's paragraph, and in a
    Sendmail-style transcript the last ">>> COMMAND" before the "<<<" reply naming the
    recipient."""
    command = ""
    for line in human.splitlines():
        stripped = line.strip()
        if stripped.startswith(">>>"):
            command = stripped
        elif stripped.startswith("<<<") and address and address in stripped.lower():
            return f"{context} {command}"
    return context


# OpenSMTPD's notice (smtpd/bounce.c) opens with this sentence; its delivery-status part gives
# only a class code (x.0.0, or 4.4.7 for every delay), the cause is in the text line.
_OPENSMTPD = "this is the mailer-daemon, please do not reply to this email."


def _dsn(root: Message, status_part: Message) -> Report:
    blocks = _fields(_part_text(status_part))
    per_message = dict(blocks[0]) if blocks else {}
    human = _human_text(root)
    opensmtpd = _OPENSMTPD in " ".join(human.lower().split())
    recipients: list[Recipient] = []
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        fields = dict(block)
        address = _address(fields.get("final-recipient", "")) or _address(
            fields.get("original-recipient", "")
        )
        if not address:
            continue
        action = fields.get("action", "").split()[0].lower() if fields.get("action") else ""
        code_field = fields.get("diagnostic-code", "")
        spec, sep, _ = code_field.partition(";")
        spec = spec.strip().upper() if sep and " " not in spec.strip() else ""
        diagnostic = _typed(code_field)
        context = _diagnostic_from_text(human, address)
        if not diagnostic or len(diagnostic) < 8:
            diagnostic = context or diagnostic
        else:
            diagnostic = _longer_from_text(diagnostic, context)
        status = fields.get("status", "").split()[0] if fields.get("status") else ""
        if not re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", status):
            status = ""
        if opensmtpd and (status.endswith(".0.0") or status == "4.4.7"):
            status = ""
        remote = _typed(fields.get("remote-mta", ""))
        command = smtp_command(diagnostic) or smtp_command(
            _transcript_stage(human, address, context)
        )
        facts = Facts(
            status=status,
            diagnostic=diagnostic,
            command=command,
            action=action,
            spec=spec,
            rhost=remote or _typed(per_message.get("reporting-mta", "")),
            family=family_of(
                header_text(root.get("From")), _typed(per_message.get("reporting-mta", ""))
            ),
        )
        recipients.append(finish(address, facts, remote))
    actions = {r.action for r in recipients}
    kind: ReportKind = "bounce"
    if actions and actions <= {"delayed"}:
        kind = "delay"
    elif actions and actions <= {"delivered", "relayed", "expanded"}:
        kind = "delivery"
    return Report(
        kind,
        tuple(recipients),
        reporting_mta=_typed(per_message.get("reporting-mta", "")),
        **_original_facts(root),
    )


def _original_facts(root: Message) -> dict[str, str]:
    original = _original(root)
    if original is None:
        return {}
    return {
        "original_message_id": header_text(original.get("Message-ID")).strip().strip("<>"),
        "original_from": header_text(original.get("From")),
        "original_subject": header_text(original.get("Subject")),
    }


def _arf(root: Message, report_part: Message) -> Report:
    fields: dict[str, list[str]] = {}
    for block in _fields(_part_text(report_part)):
        for name, value in block:
            fields.setdefault(name, []).append(value)

    def first(name: str) -> str:
        values = fields.get(name)
        return values[0] if values else ""

    feedback_type = first("feedback-type").lower() or "abuse"
    if feedback_type not in _FEEDBACK_TYPES:
        feedback_type = "other"
    addresses = [_address(v) for v in fields.get("original-rcpt-to", [])]
    if not any(addresses):
        original = _original(root)
        if original is not None:
            addresses = [_address(header_text(original.get("To")))]
        if not any(addresses):
            addresses = [_address(first("removal-recipient"))]
    # A report that names no recipient still is a complaint (about the original message).
    recipients = tuple(
        Recipient(a, reason="feedback", feedback_type=feedback_type)
        for a in ([a for a in addresses if a] or [""])
    )
    return Report(
        "complaint",
        recipients,
        reporting_mta=_typed(first("reporting-mta")),
        user_agent=first("user-agent"),
        source_ip=first("source-ip"),
        arrival_date=first("arrival-date") or first("received-date"),
        **_original_facts(root),
    )


_FINAL_RECIPIENT = re.compile(r"^(final|original)-recipient:", re.IGNORECASE | re.MULTILINE)


def _whole_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").replace("\r\n", "\n")


def parse_report(raw: bytes) -> Report | None:
    """The report a message carries, or None when it is no bounce, complaint or auto-reply."""
    root = parse(raw)
    status_part = report_part = None
    for part in root.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            status_part = status_part or part
        elif ctype == "message/feedback-report":
            report_part = report_part or part
    if report_part is not None:
        return _arf(root, report_part)
    if status_part is not None:
        report = _dsn(root, status_part)
        if report.recipients:
            return report
    headers = {k.lower(): header_text(v) for k, v in root.items()}
    body = _human_text(root)
    whole = _whole_text(raw)
    if _FINAL_RECIPIENT.search(whole):  # a DSN whose MIME structure is broken
        report = _dsn(root, parse(b"\n" + whole.split("\n\n", 1)[-1].encode("utf-8", "replace")))
        if report.recipients:
            return report
    notification = read_ses(body or whole)
    if notification is not None:
        return notification
    if not body.strip():  # a MIME structure too broken to find the text parts in
        body = whole.split("\n\n", 1)[-1]
    if looks_like_bounce(headers, body):
        recipients = []
        found = scan(body, headers) or scan(whole.split("\n\n", 1)[-1], headers)
        preset = report_reason(headers)
        family = family_of(headers.get("from", ""))
        for address, diagnostic, line in found:
            command = smtp_command(diagnostic) or smtp_command(line)
            facts = Facts(diagnostic=diagnostic, command=command, reason=preset, family=family)
            recipient = finish(address, facts)
            recipients.append(recipient)
        if recipients:
            return Report("bounce", tuple(recipients), **_original_facts(root))
    if is_autoreply(headers):
        sender = _address(headers.get("from", ""))
        return Report("autoreply", (Recipient(sender, reason="vacation"),) if sender else ())
    return None
