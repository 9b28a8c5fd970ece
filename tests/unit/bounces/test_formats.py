"""Bounces written the way common servers write them today, none taken from the shared corpus:
the classifier must read formats, not remember samples."""

from __future__ import annotations

import pytest

from postroom.bounces.parse import parse_report


def dsn(human: str, fields: str, reporter: str = "mx.example.com") -> bytes:
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@{reporter}>\r\n"
        "To: bounces+tok@rp.example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\n"
        f"{human}\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; {reporter}\r\n\r\n{fields}\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: app@example.com\r\nTo: x@example.net\r\nSubject: Hello\r\n"
        "Message-ID: <m1@example.com>\r\n\r\n--b--\r\n"
    ).encode()


def text_bounce(sender: str, subject: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: app@example.com\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    ).encode()


CASES = [
    (
        "microsoft 365, recipient not found",
        dsn(
            "Your message to someone@contoso.example couldn't be delivered.",
            "Final-Recipient: rfc822; someone@contoso.example\r\nAction: failed\r\n"
            "Status: 5.1.10\r\nRemote-MTA: dns; contoso-example.mail.protection.outlook.com\r\n"
            "Diagnostic-Code: smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
            "someone@contoso.example not found by SMTP address lookup",
            "AM0PR01MB0001.eurprd01.prod.exchangelabs.com",
        ),
        "someone@contoso.example",
        ("5.1.10", "550", "userunknown", True),
    ),
    (
        "gmail, no such account, multi-line reply",
        dsn(
            "** Address not found **",
            "Final-Recipient: rfc822; nobody.here@gmail.example\r\nAction: failed\r\n"
            "Status: 5.1.1\r\nRemote-MTA: dns; gmail-smtp-in.l.google.com. (192.0.2.27)\r\n"
            "Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does\r\n"
            " not exist. Please try 550-5.1.1 double-checking the recipient's email\r\n"
            " address for typos or 550-5.1.1 unnecessary spaces. For more information,\r\n"
            " go to 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si2 - gsmtp",
        ),
        "nobody.here@gmail.example",
        ("5.1.1", "550", "userunknown", True),
    ),
    (
        "postfix, refused as spam after the data",
        dsn(
            "<reader@example.org>: host mx.example.org[192.0.2.9] said: 554 5.7.1 Message "
            "rejected as spam (in reply to end of DATA command)",
            "Final-Recipient: rfc822; reader@example.org\r\nAction: failed\r\nStatus: 5.7.1\r\n"
            "Diagnostic-Code: smtp; 554 5.7.1 Message rejected as spam",
        ),
        "reader@example.org",
        ("5.7.1", "554", "spamdetected", False),
    ),
    (
        "postfix, delayed: connection timed out",
        dsn(
            "<slow@example.net>: connect to mx.example.net[192.0.2.7]:25: Connection timed out",
            "Final-Recipient: rfc822; slow@example.net\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
            "Diagnostic-Code: X-Postfix; connect to mx.example.net[192.0.2.7]:25: Connection "
            "timed out",
        ),
        "slow@example.net",
        ("4.4.1", "", "expired", False),
    ),
    (
        "postfix, mailbox full in the local delivery",
        dsn(
            "<full@example.org>: maildir delivery failed: userdisk quota exceeded",
            "Final-Recipient: rfc822; full@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\n"
            "Diagnostic-Code: x-unix; maildir delivery failed: userdisk quota exceeded",
        ),
        "full@example.org",
        ("5.2.2", "", "mailboxfull", False),
    ),
    (
        "exim, over quota at RCPT",
        text_bounce(
            "Mail Delivery System <Mailer-Daemon@mail.example.com>",
            "Mail delivery failed: returning message to sender",
            "This message was created automatically by mail delivery software.\r\n\r\n"
            "A message that you sent could not be delivered to one or more of its\r\n"
            "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
            "  busy@example.org\r\n"
            "    host mx.example.org [192.0.2.1]\r\n"
            "    SMTP error from remote mail server after RCPT TO:<busy@example.org>:\r\n"
            "    552 5.2.2 Mailbox quota exceeded for this user\r\n\r\n"
            "------ This is a copy of the message, including all the headers. ------\r\n",
        ),
        "busy@example.org",
        ("5.2.2", "552", "mailboxfull", False),
    ),
    (
        "qmail, no such domain",
        text_bounce(
            "MAILER-DAEMON@mail.example.com",
            "failure notice",
            "Hi. This is the qmail-send program at mail.example.com.\r\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
            "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
            "<who@nowhere.example>:\r\n"
            "Sorry, I couldn't find any host named nowhere.example. (#5.1.2)\r\n\r\n"
            "--- Below this line is a copy of the message.\r\n",
        ),
        "who@nowhere.example",
        ("5.1.2", "", "hostunknown", True),
    ),
    (
        "sendmail, blocked by a DNSBL",
        dsn(
            "   ----- Transcript of session follows -----\r\n"
            "... while talking to mx.example.net.:\r\n>>> MAIL From:<app@example.com>\r\n"
            "<<< 554 5.7.1 Service unavailable; Client host [192.0.2.5] blocked using "
            "zen.spamhaus.org\r\n554 5.0.0 Service unavailable",
            "Final-Recipient: RFC822; friend@example.net\r\nAction: failed\r\nStatus: 5.7.1\r\n"
            "Diagnostic-Code: SMTP; 554 5.7.1 Service unavailable; Client host [192.0.2.5] "
            "blocked using zen.spamhaus.org",
        ),
        "friend@example.net",
        ("5.7.1", "554", "blocked", False),
    ),
    (
        "amazon ses, expired after the last attempt timed out",
        dsn(
            "An error occurred while trying to deliver the mail to the following recipients:",
            "Final-Recipient: rfc822; late@slow.example\r\nAction: failed\r\nStatus: 4.4.7\r\n"
            "Diagnostic-Code: smtp; 554 4.4.7 Message expired: unable to deliver in 720 "
            "minutes.<421 4.4.2 Connection dropped>",
            "b224-11.smtp-out.eu-west-1.amazonses.com",
        ),
        "late@slow.example",
        ("4.4.2", "421", "expired", False),
    ),
    (
        "opensmtpd, class code only in the status part, the cause in the text",
        dsn(
            "    Hi!\r\n\r\n    This is the MAILER-DAEMON, please DO NOT REPLY to this email."
            "\r\n\r\n    An error has occurred while attempting to deliver a message for\r\n"
            "    the following list of recipients:\r\n\r\nsomeone@nomx.example: No MX found "
            "for destination\r\n",
            "Final-Recipient: rfc822; someone@nomx.example\r\nAction: failed\r\nStatus: 5.0.0",
            "relay.example.org",
        ),
        "someone@nomx.example",
        ("5.0.932", "", "notaccept", True),
    ),
    (
        "exim, sender refused at MAIL FROM: the pseudo code of the parser's first reason",
        text_bounce(
            "Mail Delivery System <Mailer-Daemon@mx.example.org>",
            "Mail delivery failed: returning message to sender",
            "This message was created automatically by mail delivery software.\r\n\r\n"
            "A message that you sent could not be delivered to one or more of its\r\n"
            "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
            "  who@ptr.example\r\n"
            "    host mx.ptr.example [192.0.2.9]\r\n"
            "    SMTP error from remote mail server after MAIL FROM:<app@example.com>:\r\n"
            "    550 All mail servers must have a PTR record with a valid reverse DNS entry\r\n",
        ),
        "who@ptr.example",
        ("5.0.901", "550", "requireptr", False),
    ),
]


@pytest.mark.parametrize(("name", "raw", "address", "expected"), CASES, ids=[c[0] for c in CASES])
def test_common_formats(name: str, raw: bytes, address: str, expected: tuple[object, ...]) -> None:
    report = parse_report(raw)
    assert report is not None and report.kind in ("bounce", "delay"), name
    (recipient,) = report.recipients
    assert recipient.address == address
    got = (recipient.status, recipient.reply_code, recipient.reason, recipient.hard)
    assert got == expected, recipient.diagnostic


def test_an_out_of_office_reply_is_no_bounce() -> None:
    raw = text_bounce(
        "Pat <pat@example.org>",
        "Automatic reply: Hello",
        "I am out of the office until Monday with limited access to email.",
    ).replace(b"\r\n\r\n", b"\r\nAuto-Submitted: auto-replied\r\n\r\n", 1)
    report = parse_report(raw)
    assert report is not None and report.kind == "autoreply"
    assert report.recipients[0].reason == "vacation"
