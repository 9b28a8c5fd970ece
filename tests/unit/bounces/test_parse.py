"""Reading bounces, complaints and auto-replies."""

from __future__ import annotations

import json

import pytest

from postroom.bounces.fact import finish, smtp_command
from postroom.bounces.parse import parse_report
from postroom.bounces.reasons import Facts
from postroom.bounces.status import find_reply_code, find_status

DSN = b"""From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: bounces+abc@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

<gone@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1 <gone@example.net>:
    Recipient address rejected: User unknown (in reply to RCPT TO command)

<full@example.net>: host mx.example.net[192.0.2.1] said: 452 4.2.2 Mailbox full
    (in reply to RCPT TO command)

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected:
    User unknown

Final-Recipient: rfc822; full@example.net
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

--B
Content-Type: message/rfc822

Message-ID: <original-1@example.com>
From: App <app@example.com>
Subject: Welcome

Hi
--B--
"""

ARF = b"""From: fbl@isp.example
To: abuse@example.com
Subject: Complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F"

--F
Content-Type: text/plain

A complaint.
--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeISP-FBL/2.0
Version: 1
Source-IP: 192.0.2.9
Original-Rcpt-To: <reader@isp.example>
Arrival-Date: Thu, 3 Dec 2026 10:00:00 +0000

--F
Content-Type: message/rfc822

Message-ID: <newsletter-7@example.com>
From: news@example.com
To: reader@isp.example
Subject: News

Body
--F--
"""

QMAIL = b"""From: MAILER-DAEMON@mail.example.org
To: sender@example.org
Subject: failure notice

Hi. This is the qmail-send program at mail.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@example.net>:
192.0.2.5 does not like recipient.
Remote host said: 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown
Giving up on 192.0.2.5.

--- Below this line is a copy of the message.

From: sender@example.org
To: nobody@example.net
Subject: hello
"""

VACATION = b"""From: colleague@example.net
To: sender@example.com
Subject: Out of office: hello
Auto-Submitted: auto-replied

I am away until Monday.
"""


def test_dsn_recipients_status_reason_and_original() -> None:
    report = parse_report(DSN)
    assert report is not None and report.kind == "bounce"
    gone, full = report.recipients
    assert (gone.address, gone.action, gone.status, gone.reply_code) == (
        "gone@example.net",
        "failed",
        "5.1.1",
        "550",
    )
    assert gone.reason == "userunknown" and gone.hard and gone.remote_mta == "mx.example.net"
    assert (full.action, full.status, full.reason, full.hard) == (
        "delayed",
        "4.2.2",
        "mailboxfull",
        False,
    )
    assert report.reporting_mta == "mx.example.com"
    assert report.original_message_id == "original-1@example.com"
    assert report.original_subject == "Welcome"


def test_arf_complaint() -> None:
    report = parse_report(ARF)
    assert report is not None and report.kind == "complaint"
    (recipient,) = report.recipients
    assert (recipient.address, recipient.reason, recipient.feedback_type) == (
        "reader@isp.example",
        "feedback",
        "abuse",
    )
    assert (report.user_agent, report.source_ip) == ("SomeISP-FBL/2.0", "192.0.2.9")
    assert report.original_message_id == "newsletter-7@example.com"


def test_qmail_style_bounce_without_dsn() -> None:
    report = parse_report(QMAIL)
    assert report is not None and report.kind == "bounce"
    (recipient,) = report.recipients
    assert recipient.address == "nobody@example.net"
    assert (recipient.status, recipient.reply_code, recipient.reason, recipient.hard) == (
        "5.1.1",
        "550",
        "userunknown",
        True,
    )


def test_autoreply_and_ordinary_mail() -> None:
    report = parse_report(VACATION)
    assert report is not None and report.kind == "autoreply"
    assert report.recipients[0].reason == "vacation"
    assert parse_report(b"From: a@example.com\r\nSubject: hi\r\n\r\nJust mail.\r\n") is None
    assert parse_report(b"") is None


@pytest.mark.parametrize(
    ("status", "text", "command", "action", "reason", "hard"),
    [
        ("5.1.1", "550 5.1.1 No such user here", "RCPT", "failed", "userunknown", True),
        (
            "",
            "550 Requested action not taken: mailbox unavailable",
            "RCPT",
            "",
            "userunknown",
            True,
        ),
        ("5.1.2", "Host or domain name not found", "", "failed", "hostunknown", True),
        ("5.1.10", "", "", "failed", "notaccept", True),
        ("4.3.2", "", "", "failed", "notaccept", False),
        ("5.2.2", "552 Quota exceeded", "RCPT", "failed", "mailboxfull", False),
        (
            "5.7.1",
            "554 5.7.1 client host blocked using zen.spamhaus.org",
            "RCPT",
            "",
            "blocked",
            False,
        ),
        (
            "5.7.26",
            "Unauthenticated email from example.com is not accepted due to DMARC policy",
            "DATA",
            "failed",
            "authfailure",
            False,
        ),
        ("5.7.1", "550 5.7.1 Message rejected as spam", "DATA", "failed", "spamdetected", False),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", "DATA", "", "mesgtoobig", False),
        ("4.4.7", "", "", "delayed", "expired", False),
        ("", "550 User unknown", "DATA", "failed", "filtered", False),
        ("", "550 5.7.25 Reverse DNS validation failed", "MAIL", "", "requireptr", False),
        ("2.0.0", "250 ok", "", "delivered", "delivered", False),
        ("5.5.2", "", "", "failed", "syntaxerror", False),
        ("", "something nobody can read", "", "failed", "onhold", False),
    ],
)
def test_classification(
    status: str, text: str, command: str, action: str, reason: str, hard: bool
) -> None:
    facts = Facts(status=status, diagnostic=text, command=command, action=action)
    if status == "5.5.2":
        facts.reply_code = "501"
    recipient = finish("someone@example.net", facts)
    assert (recipient.reason, recipient.hard) == (reason, hard)


def test_pseudo_status_when_the_report_gives_none() -> None:
    gone = finish("x@example.net", Facts(diagnostic="550 Unknown user", command="RCPT"))
    assert (gone.status, gone.reply_code, gone.reason) == ("5.0.911", "550", "userunknown")
    later = finish("x@example.net", Facts(diagnostic="451 mailbox full, try later"))
    assert (later.status, later.reason) == ("4.0.922", "mailboxfull")


def test_codes_and_command_in_text() -> None:
    assert find_status("said: 550-5.7.1 [1.2.3.4] blocked") == "5.7.1"
    assert find_status("version 1.2.3.4 only") == ""
    # The remote reply's own code wins over a relay's generic one before it (Amazon SES).
    assert find_status("5.1.0 - Unknown address error 550-'5.2.2 <a@b.example>... Full'") == "5.2.2"
    assert find_reply_code("host said: 451-4.3.0 try later") == "451"
    assert find_reply_code("port 2525 refused") == ""
    assert find_reply_code("from 192.168.250.1 refused") == ""
    assert smtp_command("(in reply to RCPT TO command)") == "RCPT"
    assert smtp_command("SMTP error from remote mail server after end of data") == "DATA"
    assert smtp_command("192.0.2.5 does not like recipient.") == "RCPT"
    assert smtp_command("nothing said") == ""


SES_BOUNCE = (
    b"From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n"
    b"Content-Type: text/plain; charset=UTF-8\n\n"
    b'{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",'
    b'"bouncedRecipients":[{"emailAddress":"Gone@Example.net","action":"failed","status":"5.1.1",'
    b'"diagnosticCode":"smtp; 550 5.1.1 user unknown"},{"emailAddress":"full@example.net",'
    b'"action":"failed","status":"5.2.2","diagnosticCode":"smtp; 552 5.2.2 Mailbox full"}],'
    b'"reportingMTA":"dsn; a1.smtp-out.amazonses.com"},"mail":{"messageId":"m-1","source":"a@!\n'
    b' example.com"}}\n\n--\nIf you wish to stop receiving notifications...\n'
)


def test_ses_notifications_mailed_by_sns() -> None:
    report = parse_report(SES_BOUNCE)
    assert report is not None and report.kind == "bounce"
    gone, full = report.recipients
    assert (gone.address, gone.status, gone.reply_code, gone.reason, gone.hard) == (
        "gone@example.net",
        "5.1.1",
        "550",
        "userunknown",
        True,
    )
    assert (full.reason, full.hard) == ("mailboxfull", False)
    assert report.original_message_id == "m-1" and report.original_from == "a@example.com"
    envelope = {
        "Type": "Notification",
        "Message": json.dumps(
            {
                "notificationType": "Complaint",
                "complaint": {
                    "complainedRecipients": [{"emailAddress": "reader@example.org"}],
                    "complaintFeedbackType": "abuse",
                    "userAgent": "ISP",
                },
                "mail": {"messageId": "m-2", "source": "a@example.com"},
            }
        ),
    }
    raw = b"From: x@example.com\nSubject: n\n\n" + json.dumps(envelope).encode()
    complaint = parse_report(raw)
    assert complaint is not None and complaint.kind == "complaint"
    assert complaint.recipients[0].address == "reader@example.org"
    assert complaint.recipients[0].feedback_type == "abuse" and complaint.user_agent == "ISP"
    assert parse_report(b'From: x@example.com\nSubject: n\n\n{"notificationType": [}') is None
