"""Remote hosts with a vocabulary of their own: their reply codes and sentences -> a reason.

Chosen by the remote MTA's name (or the recipient's domain). The tables follow sisimai's
Sisimai::Rhost::* modules, Copyright (C) 2014 azumakuniyuki, BSD 2-clause licence (see
LICENSE.sisimai).
"""

from __future__ import annotations

# ruff: noqa: E501  (tables of remote servers' sentences, kept one per line)
import re
from collections.abc import Callable

Rule = Callable[[str, str, str], str]  # (status, reply code, diagnostic) -> reason or ""

_GOOGLE: dict[str, tuple[tuple[str, str, str], ...]] = {
    "blocked": (
        ("421", "4.7.0", "ip not in whitelist for rcpt domain, closing connection."),
        (
            "421",
            "4.7.0",
            "our system has detected an unusual rate of unsolicited mail originating from your ip address",
        ),
        ("421", "4.7.0", "try again later, closing connection."),
        ("501", "5.5.4", "helo/ehlo argument is invalid"),
        (
            "550",
            "5.7.1",
            "our system has detected an unusual rate of unsolicited mail originating from your ip address",
        ),
        (
            "550",
            "5.7.1",
            "the ip you're using to send mail is not authorized to send email directly to our servers",
        ),
    ),
    "requireptr": (
        ("550", "5.7.25", "the ip address sending this message does not have a ptr record setup"),
        ("421", "4.7.0", "the ip address sending this message does not have a ptr record setup"),
        ("550", "5.7.1", "the ip address sending this message does not have a ptr record setup"),
        (
            "421",
            "4.7.23",
            "the sending ip address for this message does not have a ptr record setup",
        ),
    ),
    "authfailure": (
        ("550", "5.7.26", "is not accepted due to domain's dmarc policy"),
        ("550", "5.7.1", "fails to pass authentication checks"),
        ("550", "5.7.26", "fails to pass authentication checks"),
        (
            "550",
            "5.7.26",
            "this message fails to pass spf checks for an spf record with a hard fail",
        ),
        ("550", "5.7.26", "this mail is unauthenticated"),
        ("421", "4.7.26", "this mail has been rate limited because it is unauthenticated"),
    ),
    "badreputation": (
        (
            "550",
            "5.7.1",
            "this message is likely suspicious due to the very low reputation of the sending ip address",
        ),
        (
            "421",
            "4.7.0",
            "this message is suspicious due to the very low reputation of the sending ip address",
        ),
    ),
    "contenterror": (("554", "5.6.0", "mail message is malformed. not accepted"),),
    "exceedlimit": (("552", "5.2.3", "your message exceeded google's message size limits"),),
    "expired": (("451", "4.4.2", "timeout - closing connection"),),
    "mailboxfull": (
        ("452", "4.2.2", "the email account that you tried to reach is over quota"),
        ("552", "5.2.2", "the email account that you tried to reach is over quota"),
        ("550", "5.7.1", "email quota exceeded"),
    ),
    "networkerror": (("554", "5.6.0", "message exceeded 50 hops, this may indicate a mail loop"),),
    "norelaying": (("550", "5.7.0", "mail relay denied"),),
    "notcompliantrfc": (
        ("550", "5.7.1", "this message is not rfc 5322 compliant"),
        (
            "550",
            "5.7.1",
            "messages missing a valid address in from: header, or having no from: header, are not accepted",
        ),
    ),
    "policyviolation": (
        (
            "550",
            "5.7.1",
            "the user or domain that you are sending to (or from) has a policy that prohibited",
        ),
        ("552", "5.7.0", "our system detected an illegal attachment on your message"),
        (
            "552",
            "5.7.0",
            "this message was blocked because its content presents a potential security issue",
        ),
    ),
    "rejected": (
        ("550", "5.7.0", "mail sending denied"),
        ("550", "5.7.1", "unauthenticated email is not accepted from this domain"),
    ),
    "securityerror": (
        ("501", "5.5.2", "cannot decode response"),
        ("530", "5.5.1", "authentication required."),
        ("535", "5.7.1", "application-specific password required"),
        ("535", "5.7.1", "please log in with your web browser and then try again"),
        ("535", "5.7.1", "username and password not accepted"),
        ("550", "5.7.1", "invalid credentials for relay"),
    ),
    "failedstarttls": (
        ("421", "4.7.0", "tls required for rcpt domain, closing connection"),
        ("530", "5.7.0", "must issue a starttls command first"),
    ),
    "spamdetected": (
        ("550", "5.7.1", "our system has detected that this message is likely unsolicited mail"),
    ),
    "suspend": (("550", "5.2.1", "the email account that you tried to reach is disabled"),),
    "syntaxerror": (
        ("451", "4.5.0", "smtp protocol violation, visit rfc 2821"),
        ("454", "4.5.0", "smtp protocol violation, no commands allowed to pipeline after starttls"),
        ("454", "5.5.1", "starttls may not be repeated"),
        ("502", "5.5.1", "too many unrecognized commands, goodbye"),
        ("502", "5.5.1", "unimplemented command"),
        ("502", "5.5.1", "unrecognized command"),
        ("503", "5.5.1", "ehlo/helo first"),
        ("503", "5.5.1", "mail first"),
        ("503", "5.5.1", "rcpt first"),
        ("503", "5.7.0", "no identity changes permitted"),
        ("504", "5.7.4", "unrecognized authentication type"),
        ("535", "5.5.4", "optional argument not permitted for that auth mode"),
        ("554", "5.7.0", "too many unauthenticated commands"),
        ("555", "5.5.2", "syntax error"),
    ),
    "systemerror": (
        ("421", "4.3.0", "temporary system problem"),
        ("421", "4.7.0", "temporary system problem"),
        ("421", "4.4.5", "server busy"),
        ("451", "4.3.0", "mail server temporarily rejected message"),
        ("454", "4.7.0", "cannot authenticate due to temporary system problem"),
        ("452", "4.5.3", "domain policy size per transaction exceeded"),
    ),
    "speeding": (
        ("450", "4.2.1", "is receiving mail too quickly"),
        (
            "450",
            "4.2.1",
            "is receiving mail at a rate that prevents additional messages from being delivered",
        ),
        (
            "550",
            "5.2.1",
            "is receiving mail at a rate that prevents additional messages from being delivered",
        ),
    ),
    "toomanyconn": (
        ("451", "4.3.0", "multiple destination domains per transaction is unsupported"),
        ("452", "4.5.3", "your message has too many recipients"),
        ("450", "4.2.1", "peak smtp relay limit exceeded for customer"),
        ("550", "5.4.5", "daily smtp relay limit exceeded for user"),
        ("550", "5.4.5", "daily sending quota exceeded"),
        ("550", "5.7.1", "daily smtp relay limit exceeded for customer"),
    ),
    "userunknown": (
        ("550", "5.1.1", "the email account that you tried to reach does not exist"),
        ("553", "5.1.2", "we weren't able to find the recipient domain"),
    ),
}


def _google(status: str, reply: str, diagnostic: str) -> str:
    if not reply or not diagnostic or not re.fullmatch(r"[245]\.\d\.\d+", status):
        return ""
    text = diagnostic.lower()
    for reason, rows in _GOOGLE.items():
        for code, enhanced, phrase in rows:
            if phrase in text and code[1:] == reply[1:] and enhanced[1:] == status[1:]:
                return reason
    return ""


_FRANCE = {
    "101": "blocked",
    "102": "blocked",
    "103": "blocked",
    "104": "toomanyconn",
    "305": "securityerror",
    "401": "blocked",
    "402": "securityerror",
    "403": "rejected",
    "405": "rejected",
    "415": "rejected",
    "416": "userunknown",
    "417": "mailboxfull",
    "418": "userunknown",
    "420": "suspend",
    "421": "rejected",
    "426": "suspend",
    "505": "systemerror",
    "506": "spamdetected",
    "510": "blocked",
    "514": "mesgtoobig",
    "517": "policyviolation",
    "630": "policyviolation",
    "999": "blocked",
}


def _france(status: str, reply: str, diagnostic: str) -> str:
    match = re.search(r"\b(LPN|LPNAAA|OFR|OUK)(_[0-9]{3}|[0-9]{3}[-_][0-9]{3})\b", diagnostic, re.I)
    if not match:
        return ""
    return _FRANCE.get((match.group(1) + match.group(2))[-3:], "")


_GODADDY_CODES = {
    "IB103": "blocked",
    "IB104": "blocked",
    "IB105": "blocked",
    "IB106": "blocked",
    "IB007": "toomanyconn",
    "IB101": "expired",
    "IB108": "requireptr",
    "IB110": "blocked",
    "IB111": "blocked",
    "IB112": "blocked",
    "IB113": "blocked",
    "IB212": "spamdetected",
    "IB401": "securityerror",
    "IB501": "rejected",
    "IB502": "rejected",
    "IB504": "speeding",
    "IB506": "rejected",
    "IB508": "rejected",
    "IB510": "toomanyconn",
    "IB607": "speeding",
    "IB705": "virusdetected",
}
_GODADDY_TEXT = (
    ("blocked", "www.spamhaus.org/query/bl?ip="),
    ("blocked", "554 RBL Reject."),
    ("expired", "Delivery timeout"),
    ("expired", "451 Sorry, I wasn't able to establish an SMTP connection."),
    ("suspend", "Account disabled"),
    ("mailboxfull", "Account storage limit"),
    ("userunknown", "Account does not exist"),
    ("userunknown", "550 Recipient not found."),
)


def _godaddy(status: str, reply: str, diagnostic: str) -> str:
    match = re.search(r"\s(IB\d{3})\b", diagnostic)
    if match:
        return _GODADDY_CODES.get(match.group(1), "")
    return next((reason for reason, text in _GODADDY_TEXT if text in diagnostic), "")


_TENCENT = (
    ("dmarc check failed", "authfailure"),
    ("spf check failed", "authfailure"),
    ("suspected spam ip", "blocked"),
    ("mail is rejected by recipients", "filtered"),
    ("message too large", "mesgtoobig"),
    ("mail content denied", "spamdetected"),
    ("spam is embedded in the email", "spamdetected"),
    ("suspected spam", "spamdetected"),
    ("bad address syntax", "syntaxerror"),
    ("connection denied", "toomanyconn"),
    ("connection frequency limited", "toomanyconn"),
    ("domain frequency limited", "toomanyconn"),
    ("ip frequency limited", "toomanyconn"),
    ("sender frequency limited", "toomanyconn"),
    ("mailbox unavailable or access denied", "toomanyconn"),
    ("mailbox not found", "userunknown"),
)


def _tencent(status: str, reply: str, diagnostic: str) -> str:
    text = diagnostic.lower()
    return next((reason for phrase, reason in _TENCENT if phrase in text), "")


def _docomo(status: str, reply: str, diagnostic: str) -> str:
    text = diagnostic.lower()
    if status in ("5.1.1", "5.0.911"):
        return "userunknown"
    if status == "5.2.0":
        return "filtered"
    if "552 too much mail data" in text:
        return "mailboxfull"
    if "552 too many recipients" in text:
        return "toomanyconn"
    if "503 bad sequence of commands" in text or "504 command parameter not implemented" in text:
        return "syntaxerror"
    return ""


def _kddi(status: str, reply: str, diagnostic: str) -> str:
    if "550 : User unknown" in diagnostic:
        return "filtered"
    if ">: User unknown" in diagnostic:
        return "userunknown"
    return ""


_SPECTRUM = {
    1000: "blocked",
    1010: "rejected",
    1090: "systemerror",
    1260: "networkerror",
    1500: "rejected",
    1520: "rejected",
    1530: "mesgtoobig",
    1540: "toomanyconn",
    1550: "toomanyconn",
    1560: "policyviolation",
}
_SPECTRUM_RANGES = (
    (1020, 1080, "rejected"),
    (1100, 1150, "blocked"),
    (1160, 1190, "policyviolation"),
    (1200, 1210, "blocked"),
    (1220, 1250, "blocked"),
    (1300, 1340, "toomanyconn"),
    (1350, 1490, "toomanyconn"),
)


def _spectrum(status: str, reply: str, diagnostic: str) -> str:
    match = re.search(r"AUP#[-A-Za-z]*(\d{4})", diagnostic)
    number = int(match.group(1)) if match else 0
    if number in _SPECTRUM:
        return _SPECTRUM[number]
    return next((r for low, high, r in _SPECTRUM_RANGES if low <= number <= high), "")


_IUA = {
    "1": "norelaying",
    "2": "userunknown",
    "3": "suspend",
    "4": "mailboxfull",
    "5": "toomanyconn",
    "6": "norelaying",
    "7": "blocked",
    "8": "rejected",
    "9": "blocked",
    "10": "filtered",
}


def _iua(status: str, reply: str, diagnostic: str) -> str:
    match = re.search(r"\.i\.ua/err/(\d+)", diagnostic.lower())
    return _IUA.get(match.group(1), "") if match else ""


_MIMECAST: tuple[tuple[str, int, str], ...] = (
    ("blocked", 421, "sender address blocked"),
    ("blocked", 451, "recipient temporarily unavailable"),
    ("blocked", 451, "ip temporarily blacklisted"),
    ("blocked", 451, "internal resources are temporarily unavailable"),
    ("badreputation", 550, "local ct ip reputation - (reject)"),
    ("authfailure", 550, "spf sender invalid - envelope rejected"),
    ("authfailure", 550, "dkim sender invalid - envelope rejected"),
    ("authfailure", 550, "dmarc sender invalid - envelope rejected"),
    ("mesgtoobig", 554, "maximum email size exceeded"),
    ("networkerror", 554, "mail loop detected"),
    ("norelaying", 451, "open relay not allowed"),
    ("notaccept", 451, "account inbounds disabled"),
    ("onhold", 451, "account outbounds disabled"),
    ("onhold", 451, "hostname is not authorized"),
    ("onhold", 550, "journal message past expiration"),
    ("policyviolation", 550, "anti-spoofing policy - inbound not allowed"),
    ("policyviolation", 550, "rejected by header-based anti-spoofing policy"),
    ("policyviolation", 550, "message bounced due to content examination policy"),
    ("policyviolation", 554, "host network not allowed"),
    ("rejected", 550, "administrative prohibition envelope blocked"),
    ("rejected", 550, "envelope blocked – user entry"),
    ("rejected", 550, "envelope blocked – user domain entry"),
    ("rejected", 550, "rejected by header-based manually blocked senders"),
    ("rejected", 550, "rejected by header-based blocked senders"),
    ("rejected", 550, "envelope rejected - block policy for envelope from address"),
    ("securityerror", 535, "incorrect authentication data"),
    ("securityerror", 550, "submitter failed to disabled"),
    ("failedstarttls", 553, "this route requires encryption (tls)"),
    ("failedstarttls", 553, "this route requires tls version 1.2 or greater"),
    ("securityerror", 553, "this route requires high-strength ciphers"),
    ("securityerror", 554, "configuration is invalid for this certificate"),
    ("systemerror", 451, "unable to process connection at this time"),
    ("systemerror", 451, "message ended early"),
    ("systemerror", 451, "unable to process command"),
    ("systemerror", 451, "unable to process an email at this time"),
    ("toomanyconn", 451, "account service is temporarily unavailable"),
    ("toomanyconn", 452, "too many recipients"),
    ("toomanyconn", 550, "exceeding outbound thread limit"),
    ("userunknown", 501, "invalid address"),
    ("userunknown", 503, "user unknown"),
    ("userunknown", 550, "invalid recipient"),
    ("virusdetected", 554, "email rejected due to security policies"),
)


def _mimecast(status: str, reply: str, diagnostic: str) -> str:
    if not diagnostic or not re.fullmatch(r"[245]\d\d", reply):
        return ""
    text = diagnostic.lower()
    code = int(reply)
    return next((r for r, c, phrase in _MIMECAST if c == code and phrase in text), "")


_COX_CODES = {
    "CXBL": "blocked",
    "CXTHRT": "securityerror",
    "CXMJ": "securityerror",
    "CXDNS": "requireptr",
    "CXSNDR": "rejected",
    "CXSMTP": "rejected",
    "CXCNCT": "toomanyconn",
    "CXMXRT": "toomanyconn",
    "CDRBL": "blocked",
    "URLBL011": "spamdetected",
    "URLBL101": "spamdetected",
    "URLBL110": "spamdetected",
    "URLBL1001": "spamdetected",
}
_COX_TEXT = (
    ("requireptr", "rejected - no rDNS"),
    ("blocked", "cox too many bad commands from"),
    ("requireptr", "DNS check failure - try again later"),
    ("blocked", "Too many invalid recipients"),
    ("notaccept", "ESMTP server temporarily not available"),
    ("policyviolation", "ESMTP no data before greeting"),
    ("policyviolation", "attachment extension is forbidden"),
    ("rejected", "sender rejected"),
    ("toomanyconn", "too many sessions from"),
    ("toomanyconn", "requested action aborted: try again later"),
    ("toomanyconn", "Message threshold exceeded"),
    ("userunknown", "recipient rejected"),
)


def _cox(status: str, reply: str, diagnostic: str) -> str:
    match = re.search(r"AUP#([0-9A-Z]+)", diagnostic)
    if match:
        code = match.group(1)
        if code in _COX_CODES:
            return _COX_CODES[code]
        if code.startswith("IPBL"):
            return "blocked"
    return next((reason for reason, text in _COX_TEXT if text in diagnostic), "")


def _aol(status: str, reply: str, diagnostic: str) -> str:
    text = diagnostic.lower()
    if "type=mx: malformed or unexpected name server reply" in text:
        return "notaccept"  # AOL's resolver: the domain has no usable MX
    if "host or domain name not found" in text:
        return "hostunknown"
    return ""


_HOSTS: tuple[tuple[re.Pattern[str], Rule], ...] = (
    (re.compile(r"\.mx\.aol\.com\Z"), _aol),
    (re.compile(r"cox\.net"), _cox),
    (re.compile(r"\b(?:laposte\.net|(?:orange|wanadoo)\.fr)\Z"), _france),
    (re.compile(r"\A(?:smtp|mailstore1)\.secureserver\.net\Z"), _godaddy),
    (re.compile(r"(?:aspmx|gmail-smtp-in)\.l\.google\.com\Z"), _google),
    (re.compile(r"\.email\.ua\Z"), _iua),
    (re.compile(r"\.(?:ezweb\.ne\.jp|au\.com)\Z"), _kddi),
    (re.compile(r"\.mimecast\.com\Z"), _mimecast),
    (re.compile(r"mfsmax\.docomo\.ne\.jp\Z"), _docomo),
    (re.compile(r"charter\.net"), _spectrum),
    (re.compile(r"mx[0-9]+\.qq\.com\Z"), _tencent),
)


def rule_for(host: str) -> Rule | None:
    host = host.lower().strip(".[]")
    if not host:
        return None
    return next((rule for pattern, rule in _HOSTS if pattern.search(host)), None)


def reason(remote_host: str, destination: str, status: str, reply: str, diagnostic: str) -> str:
    """The reason the remote host's (or the destination domain's) own vocabulary gives, or ""."""
    rule = rule_for(remote_host) or rule_for(destination)
    return rule(status, reply, diagnostic) if rule else ""
