"""What particular mail servers' own wording says about a failure, before the generic rules.

Exim, qmail, Postfix, Gmail, Outlook, OpenSMTPD, Lotus Notes, Domino, Courier, Amavis, Amazon
SES and others write fixed sentences of their own (taken from their sources by sisimai's
Sisimai::Lhost::* modules, Copyright (C) 2014 azumakuniyuki, BSD 2-clause licence, see
LICENSE.sisimai). A sentence found in the diagnostic sets the reason the way sisimai's format
parsers do; the generic rules may still refine a vague one (see reasons.RETRY).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# ruff: noqa: E501  (one sentence per line)

_PHRASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "expired",
        (
            "envelope expired",
            "dns error: could not contact dns servers",
            "delivery to the following recipient has been delayed",
            "the recipient server did not accept our requests to connect",
            "retry timeout exceeded",
            "no action is required on your part",
            "retry time not reached for any host after a long failure period",
            "all hosts have been failing for a long time",
            "has been frozen",
            "was frozen on arrival",
            "could not deliver for the last",
            "host not reachable",
        ),
    ),
    ("spamdetected", (" - spam",)),
    ("virusdetected", (" - infected", "requested action not taken: virus detected")),
    ("contenterror", (" - bad header:", 'too many "received" headers')),
    ("exceedlimit", (" - message size exceeds recipient",)),
    (
        "systemerror",
        (
            " - temporary mta failure on relaying",
            " - rejected by next-hop mta on relaying",
            " - unable to relay message back to mta",
            "this domain's dns violates rfc 1035.",
            "several matches found in domino directory",
            "delivery to file forbidden",
            "delivery to pipe forbidden",
            "local delivery failed",
            "lmtp error after ",
            "bad interpreter: no such file or directory",
        ),
    ),
    (
        "hostunknown",
        (
            "host or domain name not found",
            "no such domain.",
            "all host address lookups failed permanently",
            "all relevant mx records point to non-existent hosts",
            "unrouteable address",
            "dns error: domain name not found",
            "dns error: dns server returned answer with no data",
            "as the remote domain doesnt exist",
            "invalid domain name",
            "domain does not exist",
            "sorry, i couldn't find any host ",
            "the mail could not be delivered to the recipient because the domain is not reachable",
            "unknown host",
        ),
    ),
    (
        "notaccept",
        (
            "an mx or srv record indicated no smtp service",
            "no host found for existing smtp connection",
            "null mx",
            "no mx found for domain",
            "no mx found for destination",
            "destination seem to reject all mails",
        ),
    ),
    (
        "filtered",
        (
            "mail delivery failed... user unknown",
            "cannot route mail to user",
        ),
    ),
    (
        "mailboxfull",
        (
            "the number of messages in recipient's mailbox exceeded the local limit.",
            "mailbox is full",
            "error: quota exceed",
            "as their mailbox is full",
            "disk quota exceeded",
            "user mailbox exceeds allowed size",
        ),
    ),
    (
        "networkerror",
        (
            "dns lookup failed.",
            "message has exceeded maximum hop count",
            "address family mismatch on destination mxs",
            "all routes to destination blocked",
            "bad dns lookup error code",
            "could not retrieve source address",
            "loop detected",
            "network error on destination mxs",
            "no valid route to remote mx",
            "no valid route to destination",
            "temporary failure in mx lookup",
            " had no relevant answers.",
            " responded with code nxdomain",
            "sorry, i wasn't able to establish an smtp connection",
            "sorry, i couldn't find a mail exchanger or ip address",
            "sorry. although i'm listed as a best-preference mx or a for that host",
        ),
    ),
    (
        "userunknown",
        (
            "not listed in domino directory",
            "not listed in public name & address book",
            "non répertorié dans l'annuaire domino",
            "user not listed in public name & address book",
            "because the address couldn't be found. check for typos or unnecessary spaces and try again.",
            "no mailbox here by that name",
            "does not like recipient.",
            "user not found",
            "invalid final delivery userid",
            "resolver.adr.recipientnotfound",
            "the recipient name is not recognized",
            "550 - requested action not taken: no such user here",
            "no valid recipients for this mm",
            "resolver.adr.recipnotfound",
        ),
    ),
    ("norelaying", ("due to the following smtp relay error",)),
    ("mesgtoobig", ("message size exceeds fixed maximum message size:",)),
    ("systemfull", ("requested action not taken: mailbox unavailable (not enough free space)",)),
    ("securityerror", ("could not retrieve credentials",)),
    (
        "syntaxerror",
        (
            "angle-brackets nested too deep",
            'expected word or "<"',
            "domain missing in source-routed address",
            "malformed address:",
        ),
    ),
)
_DELIVERY_ATTEMPTS = re.compile(r"\Adelivery failed \d+ attempts")
_DNS_HOST_NOT_FOUND = re.compile(r"dns lookup failure: host \S+ not found")
_UNKNOWN_USER = re.compile(r"\A(?:unknown user|invalid final delivery userid)")
# Microsoft Exchange 2000/2003 (MSEXCH:IMS) error codes in parentheses.
_EXCHANGE_CODES = {
    "000B099C": "onhold",
    "000B09AA": "onhold",
    "000B09B6": "onhold",
    "000C05A6": "userunknown",
    "00010256": "systemerror",
    "000D06B5": "systemerror",
    "00120270": "networkerror",
    "00050311": "contenterror",
    "000502CC": "contenterror",
    "000B0981": "securityerror",
    "000C0595": "filtered",
}
_EXCHANGE = re.compile(r"\(([0-9A-F]{8})\)")


_FAMILY_PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    # Outlook.com / Hotmail answer an unknown recipient with the RFC 5321 text alone.
    "outlook": (("requested action not taken: mailbox unavailable", "userunknown"),),
}
_FAMILIES = (
    (
        "outlook",
        re.compile(
            r"@(?:[\w.-]+\.)?(?:hotmail|outlook|live|msn)\.com\b|"
            r"\b(?:hotmail|outlook)\.com\Z",
            re.I,
        ),
    ),
    ("yahoo", re.compile(r"@(?:[\w.-]+\.)?yahoo\.(?:com|co\.jp)\b", re.I)),
)


def family_of(sender: str, reporting_mta: str = "") -> str:
    """Which mail system wrote a report, from its From address or reporting MTA."""
    for name, pattern in _FAMILIES:
        if pattern.search(sender) or pattern.search(reporting_mta):
            return name
    return ""


def preset_reason(diagnostic: str, command: str, family: str = "") -> str:
    """The reason a server's own sentence or the failed SMTP command gives, or ""."""
    lowered = diagnostic.lower()
    for phrase, reason in _FAMILY_PHRASES.get(family, ()):
        if phrase in lowered:
            return reason
    if command in ("HELO", "EHLO"):
        return "blocked"
    text = diagnostic.lower()
    for reason, phrases in _PHRASES:
        if any(phrase in text for phrase in phrases):
            return reason
    if _DELIVERY_ATTEMPTS.search(text):
        return "expired"
    if _DNS_HOST_NOT_FOUND.search(text):  # DragonFly Mail Agent
        return "hostunknown"
    if _UNKNOWN_USER.search(text):
        return "userunknown"
    code = _EXCHANGE.search(diagnostic)
    if code and "msexch" in text and code.group(1) in _EXCHANGE_CODES:
        return _EXCHANGE_CODES[code.group(1)]
    if command == "MAIL" and "smtp error from remote" in text:
        return "onhold"  # Exim: the sender was refused; the tests below say why
    return ""


def report_reason(headers: Mapping[str, str]) -> str:
    """A reason the kind of report itself tells: Google Groups answers a post the group
    refused (it does not exist, or the sender may not post) from googlemail.com's daemon."""
    failed = headers.get("x-failed-recipients", "").lower()
    if "mailer-daemon@googlemail.com" in headers.get("from", "").lower() and (
        "@googlegroups.com" in failed
    ):
        return "rejected"
    return ""
