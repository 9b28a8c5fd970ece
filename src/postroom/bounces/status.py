"""SMTP status codes in bounces: find them in text, name them, and make sisimai's pseudo codes.

RFC 3463 enhanced status codes mean a reason (`STANDARD`, following sisimai's table); a
recipient whose report has no code gets a pseudo code `x.0.9yy` derived from its reason
(`pseudo_status`), as sisimai does, so that every failed recipient has a status.

Parts of this module follow sisimai (Sisimai::SMTP::Status, ::Reply, ::Error),
Copyright (C) 2014 azumakuniyuki, BSD 2-clause licence (see LICENSE.sisimai).
"""

from __future__ import annotations

import re

STANDARD: dict[str, str] = {
    "2.1.5": "delivered",
    "4.1.6": "hasmoved",
    "4.1.7": "rejected",
    "4.1.8": "rejected",
    "4.1.9": "systemerror",
    "4.2.1": "suspend",
    "4.2.2": "mailboxfull",
    "4.2.3": "exceedlimit",
    "4.2.4": "filtered",
    "4.3.1": "systemfull",
    "4.3.2": "notaccept",
    "4.3.3": "systemerror",
    "4.3.5": "systemerror",
    "4.4.1": "expired",
    "4.4.2": "networkerror",
    "4.4.4": "networkerror",
    "4.4.5": "systemfull",
    "4.4.6": "networkerror",
    "4.4.7": "expired",
    "4.5.3": "systemerror",
    "4.5.5": "systemerror",
    "4.6.0": "contenterror",
    "4.6.2": "contenterror",
    "4.6.5": "contenterror",
    "4.7.1": "blocked",
    "4.7.2": "blocked",
    "4.7.5": "securityerror",
    "4.7.6": "securityerror",
    "4.7.7": "securityerror",
    "4.7.12": "securityerror",
    "4.7.15": "securityerror",
    "4.7.16": "mesgtoobig",
    "4.7.24": "authfailure",
    "4.7.25": "requireptr",
    "5.1.0": "userunknown",
    "5.1.1": "userunknown",
    "5.1.2": "hostunknown",
    "5.1.3": "userunknown",
    "5.1.4": "filtered",
    "5.1.6": "hasmoved",
    "5.1.7": "rejected",
    "5.1.8": "rejected",
    "5.1.9": "systemerror",
    "5.1.10": "notaccept",
    "5.2.0": "filtered",
    "5.2.1": "filtered",
    "5.2.2": "mailboxfull",
    "5.2.3": "exceedlimit",
    "5.2.4": "filtered",
    "5.3.0": "systemerror",
    "5.3.1": "systemfull",
    "5.3.2": "notaccept",
    "5.3.3": "systemerror",
    "5.3.4": "mesgtoobig",
    "5.3.5": "systemerror",
    "5.4.0": "networkerror",
    "5.4.3": "systemerror",
    "5.4.4": "hostunknown",
    "5.5.3": "toomanyconn",
    "5.5.4": "systemerror",
    "5.5.5": "systemerror",
    "5.5.6": "securityerror",
    "5.6.0": "contenterror",
    "5.6.1": "contenterror",
    "5.6.2": "contenterror",
    "5.6.3": "contenterror",
    "5.6.5": "contenterror",
    "5.6.6": "contenterror",
    "5.6.7": "contenterror",
    "5.6.8": "contenterror",
    "5.6.9": "contenterror",
    "5.7.0": "securityerror",
    "5.7.1": "securityerror",
    "5.7.2": "securityerror",
    "5.7.3": "securityerror",
    "5.7.4": "securityerror",
    "5.7.5": "securityerror",
    "5.7.6": "securityerror",
    "5.7.7": "securityerror",
    "5.7.8": "securityerror",
    "5.7.9": "securityerror",
    "5.7.10": "failedstarttls",
    "5.7.11": "securityerror",
    "5.7.13": "suspend",
    "5.7.14": "securityerror",
    "5.7.15": "securityerror",
    "5.7.16": "mesgtoobig",
    "5.7.17": "hasmoved",
    "5.7.18": "hasmoved",
    "5.7.19": "securityerror",
    "5.7.20": "authfailure",
    "5.7.21": "authfailure",
    "5.7.22": "authfailure",
    "5.7.23": "authfailure",
    "5.7.24": "authfailure",
    "5.7.25": "requireptr",
    "5.7.26": "authfailure",
    "5.7.27": "notaccept",
}

# Pseudo codes (sisimai's x.0.9yy) for a reason when the report gave no status code.
_PSEUDO: dict[str, int] = {
    "undefined": 900,
    "vacation": 900,
    "onhold": 901,
    "syntaxerror": 902,
    "norelaying": 909,
    "filtered": 910,
    "userunknown": 911,
    "hostunknown": 912,
    "hasmoved": 916,
    "rejected": 918,
    "suspend": 921,
    "mailboxfull": 922,
    "exceedlimit": 923,
    "systemerror": 930,
    "systemfull": 931,
    "notaccept": 932,
    "mesgtoobig": 934,
    "mailererror": 939,
    "networkerror": 944,
    "toomanyconn": 945,
    "speeding": 946,
    "expired": 947,
    "contenterror": 960,
    "securityerror": 970,
    "blocked": 971,
    "virusdetected": 971,
    "policyviolation": 972,
    "requireptr": 973,
    "notcompliantrfc": 974,
    "badreputation": 975,
    "failedstarttls": 976,
    "authfailure": 976,
    "spamdetected": 980,
}
# Sisimai's table of temporary pseudo codes has only some reasons; others stay permanent.
_TEMPORARY_PSEUDO = frozenset(
    {
        "blocked",
        "contenterror",
        "expired",
        "filtered",
        "mailboxfull",
        "networkerror",
        "notaccept",
        "onhold",
        "rejected",
        "securityerror",
        "spamdetected",
        "systemerror",
        "systemfull",
        "toomanyconn",
        "undefined",
    }
)

_STATUS_PATTERNS = (
    re.compile(r" ?\(#([45]\.\d\.\d+)\)? ?"),
    re.compile(r"\b\d{3}[ -]['\"]?#?([45]\.\d\.\d+)\b"),
    re.compile(r"\b([45]\.\d\.\d+)\b"),
    re.compile(r"\b(2\.[0-7]\.[0-7])\b"),
)
_IPV4 = re.compile(
    r"\b(?:\d|[01]?\d\d|2[0-4]\d|25[0-5])\.(?:\d|[01]?\d\d|2[0-4]\d|25[0-5])\."
    r"(?:\d|[01]?\d\d|2[0-4]\d|25[0-5])\.(?:\d|[01]?\d\d|2[0-4]\d|25[0-5])\b"
)
_REPLY = re.compile(r"\b([45][0-5][0-9])\b")
_REPLY_OK = re.compile(r"\b(25[0-3])\b")
_WELL_FORMED = re.compile(r"[245]\.\d\.\d+")


def find_status(text: str) -> str:
    """The enhanced status code (RFC 3463) in `text`, or "" (a version number is not one)."""
    if not text:
        return ""
    for pattern in _STATUS_PATTERNS:
        for match in pattern.finditer(text):
            found = match.group(1)
            escaped = re.escape(found)
            if re.search(rf"\b(?:{escaped}\.\d{{1,3}}|\d{{1,3}}\.{escaped})\b", text):
                break  # part of a longer dotted number (an IP address, a version)
            return found
    return ""


def find_reply_code(text: str) -> str:
    """The SMTP reply code in a diagnostic text, or "" (never from an IP address)."""
    if not text or "x-unix;" in text.lower():
        return ""
    text = _IPV4.sub("***.***.***.***", text)
    match = _REPLY.search(text) or _REPLY_OK.search(text)
    return match.group(1) if match else ""


def name(status: str) -> str:
    """The reason a standard status code means, or ""."""
    if not _WELL_FORMED.fullmatch(status):
        return ""
    return STANDARD.get(status, "")


def is_permanent(text: str) -> bool | None:
    """Whether a reply text says the failure is permanent (None: it does not say)."""
    code = find_status(text) or find_reply_code(text)
    if code:
        if code[0] == "5":
            return True
        if code[0] == "4":
            return False
        return None
    lowered = text.lower()
    if "temporar" in lowered or "persistent" in lowered:
        return False
    if "permanent" in lowered:
        return True
    return None


def pseudo_status(reason: str, temporary: bool) -> str:
    """Sisimai's pseudo status code for a reason, when the report gave none."""
    number = _PSEUDO.get(reason)
    if number is None:
        return ""
    first = "4" if temporary and reason in _TEMPORARY_PSEUDO else "5"
    return f"{first}.0.{number}"
