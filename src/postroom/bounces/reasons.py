"""Classify one recipient of a bounce (or one synchronous SMTP reply): the reason, from
sisimai's taxonomy, and whether the bounce is hard.

`classify(facts)` follows sisimai's decision procedure (Sisimai::Reason->get and
->anotherone, and each reason's `true`): a reason a format parser already set wins unless it is
one of the vague ones; then the remote host's own vocabulary (`rhost`); then, in a fixed order,
each reason's test of the status code, the SMTP command the reply answered and the wording;
then the status code alone; then the action. Parts follow sisimai, Copyright (C) 2014
azumakuniyuki, BSD 2-clause licence (see LICENSE.sisimai).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from postroom.bounces import rhost
from postroom.bounces.command import smtp_command
from postroom.bounces.phrases import NOT_REJECTED, PATTERNS, PHRASES
from postroom.bounces.status import find_reply_code, find_status, name

# Reasons that a format parser or a first guess may set but a closer look may replace.
RETRY = frozenset(
    {
        "undefined",
        "onhold",
        "systemerror",
        "securityerror",
        "networkerror",
        "hostunknown",
        "userunknown",
    }
)
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved"})
NOT_BOUNCES = frozenset({"delivered", "feedback", "vacation"})

_COMPILED = {reason: re.compile(text, re.VERBOSE) for reason, text in PATTERNS.items()}


@dataclass(slots=True)
class Facts:
    """What is known of one recipient's failure. `command` is the SMTP command the reply
    answered (EHLO, HELO, MAIL, RCPT, DATA, QUIT, STARTTLS or ""), `spec` the diagnostic type
    (SMTP, X-UNIX, X-POSTFIX...), `reason` a reason a format parser already decided, `family`
    the mail system that wrote the report when it has wording of its own."""

    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    command: str = ""
    action: str = ""
    spec: str = ""
    reason: str = ""
    rhost: str = ""
    destination: str = ""
    family: str = ""  # the reporting system when known: "outlook", "yahoo", ...

    @property
    def text(self) -> str:
        return self.diagnostic.lower()


def matches(reason: str, text: str) -> bool:
    """Whether the lower-cased `text` is worded like `reason`."""
    if reason == "rejected" and any(p in text for p in NOT_REJECTED):
        return False
    phrases = PHRASES.get(reason)
    if phrases and any(p in text for p in phrases):
        return True
    pattern = _COMPILED.get(reason)
    return bool(pattern and pattern.search(text))


def _named(facts: Facts) -> str:
    return name(facts.status)


def _simple(reason: str) -> Callable[[Facts], bool]:
    def test(facts: Facts) -> bool:
        return facts.reason == reason or _named(facts) == reason or matches(reason, facts.text)

    return test


def _hasmoved(facts: Facts) -> bool:
    return facts.reason == "hasmoved" or matches("hasmoved", facts.text)


def _suspend(facts: Facts) -> bool:
    return facts.reason == "suspend" or matches("suspend", facts.text)


def _mesgtoobig(facts: Facts) -> bool:
    if facts.reason == "mesgtoobig":
        return True
    named = _named(facts)
    if named == "mesgtoobig":
        return True
    if named == "exceedlimit" or facts.status == "5.2.3":
        return False
    return matches("mesgtoobig", facts.text)


def _norelaying(facts: Facts) -> bool:
    if facts.reason in ("securityerror", "systemerror", "undefined"):
        return False
    if facts.command in ("CONN", "EHLO", "HELO"):
        return False
    return matches("norelaying", facts.text)


def _userunknown(facts: Facts) -> bool:
    if facts.reason == "userunknown":
        return True
    named = _named(facts)
    if named == "suspend":
        return False
    if named == "userunknown":
        others = ("norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept")
        return not any(matches(other, facts.text) for other in others)
    if facts.command == "RCPT":
        return matches("userunknown", facts.text)
    return False


def _filtered(facts: Facts) -> bool:
    if facts.reason == "filtered":
        return True
    named = _named(facts)
    if named == "suspend":
        return False
    if named == "filtered":
        return matches("userunknown", facts.text) or matches("filtered", facts.text)
    if facts.command in ("CONN", "EHLO", "HELO", "MAIL", "RCPT"):
        return False
    return matches("filtered", facts.text) or matches("userunknown", facts.text)


def _rejected(facts: Facts) -> bool:
    if facts.reason == "rejected":
        return True
    named = _named(facts) or "undefined"
    if named == "rejected":
        return True
    if facts.command == "MAIL":
        return matches("rejected", facts.text)
    if facts.command == "DATA":
        return named != "userunknown" and matches("rejected", facts.text)
    if named in ("onhold", "undefined", "securityerror", "systemerror"):
        return matches("rejected", facts.text)
    return False


def _hostunknown(facts: Facts) -> bool:
    if facts.reason == "hostunknown":
        return True
    if _named(facts) == "hostunknown":
        return not matches("networkerror", facts.text)
    return matches("hostunknown", facts.text)


def _spamdetected(facts: Facts) -> bool:
    if facts.reason == "spamdetected" or _named(facts) == "spamdetected":
        return True
    if facts.command in ("CONN", "EHLO", "HELO", "MAIL", "RCPT"):
        return False
    return matches("spamdetected", facts.text)


def _notcompliantrfc(facts: Facts) -> bool:
    return facts.reason == "notcompliantrfc" or matches("notcompliantrfc", facts.text)


_TESTS: tuple[tuple[str, Callable[[Facts], bool]], ...] = (
    ("mailboxfull", _simple("mailboxfull")),
    ("mesgtoobig", _mesgtoobig),
    ("exceedlimit", _simple("exceedlimit")),
    ("suspend", _suspend),
    ("hasmoved", _hasmoved),
    ("norelaying", _norelaying),
    ("authfailure", _simple("authfailure")),
    ("userunknown", _userunknown),
    ("filtered", _filtered),
    ("requireptr", _simple("requireptr")),
    ("notcompliantrfc", _notcompliantrfc),
    ("badreputation", _simple("badreputation")),
    ("rejected", _rejected),
    ("hostunknown", _hostunknown),
    ("spamdetected", _spamdetected),
    ("speeding", _simple("speeding")),
    ("toomanyconn", _simple("toomanyconn")),
    ("blocked", _simple("blocked")),
)
# The wording alone, for what the tests above left open.
_WORDING_ORDER = (
    "mailboxfull",
    "authfailure",
    "badreputation",
    "speeding",
    "spamdetected",
    "virusdetected",
    "policyviolation",
    "norelaying",
    "systemerror",
    "networkerror",
    "suspend",
    "expired",
    "contenterror",
    "systemfull",
    "notaccept",
    "failedstarttls",
    "securityerror",
    "mailererror",
)
# Reading a bare diagnostic (no status, no command): the wording in this order.
_MATCH_ORDER = (
    "mailboxfull",
    "mesgtoobig",
    "exceedlimit",
    "suspend",
    "userunknown",
    "filtered",
    "rejected",
    "hostunknown",
    "spamdetected",
    "speeding",
    "toomanyconn",
    "blocked",
    "authfailure",
    "failedstarttls",
    "securityerror",
    "systemerror",
    "networkerror",
    "expired",
    "contenterror",
    "hasmoved",
    "systemfull",
    "notaccept",
    "mailererror",
    "norelaying",
)


def _another(facts: Facts) -> str:
    if facts.reason:  # a format parser's reason that no closer test confirmed or replaced
        return facts.reason
    status = facts.status
    reason = name(status)
    if reason and reason not in RETRY and reason != "expired" and facts.spec == "SMTP":
        return reason
    text = facts.text
    for candidate in _WORDING_ORDER:
        if matches(candidate, text):
            return candidate
    if facts.command == "STARTTLS":
        return "failedstarttls"
    if reason:
        return reason
    if status[:3] in ("4.6", "5.6"):
        return "contenterror"
    if status[:3] in ("4.7", "5.7"):
        return "securityerror"
    if facts.spec in ("X-UNIX", "X-POSTFIX"):
        return "mailererror"
    if re.fullmatch(r"[45]0[0-7]", facts.reply_code):
        return "syntaxerror"
    if facts.action in ("delayed", "expired"):
        return "expired"
    if facts.command in ("EHLO", "HELO"):
        return "blocked"
    return ""


def _get(facts: Facts) -> str:
    if facts.reason and facts.reason not in RETRY:
        return facts.reason
    if facts.status.startswith("2."):
        return "delivered"
    if facts.spec in ("SMTP", ""):
        for reason, test in _TESTS:
            if test(facts):
                return reason
    reason = _another(facts)
    if reason and reason != "undefined":
        return reason
    if facts.action == "delayed":
        return "expired"
    if matches("vacation", facts.text):
        return "vacation"
    if facts.diagnostic:
        return "onhold"
    return "undefined"


def classify_facts(facts: Facts) -> str:
    """The reason for one recipient (sisimai's vocabulary)."""
    if facts.action in ("delivered", "relayed", "expanded"):
        return "delivered"
    if facts.reason and facts.reason not in RETRY:
        return facts.reason
    by_host = rhost.reason(
        facts.rhost, facts.destination, facts.status, facts.reply_code, facts.diagnostic
    )
    if by_host:
        return by_host
    return _get(facts) or "undefined"


def match_text(text: str) -> str:
    """The reason a bare reply text reads as (no status, no command known)."""
    lowered = text.lower()
    for reason in _MATCH_ORDER:
        if matches(reason, lowered):
            return reason
    if re.match(r"\s*x-unix;", lowered):
        return "mailererror"
    return name(find_status(text)) or "undefined"


def is_hard(reason: str, status: str, reply_code: str = "") -> bool:
    """Whether the address itself should not be tried again (sisimai's hardbounce): the
    address does not exist or has moved, or the domain takes no mail (with a 5xx code)."""
    if reason in HARD_REASONS:
        return True
    if reason != "notaccept":
        return False
    return not (status or reply_code).startswith("4")


def classify(status: str, diagnostic: str, action: str = "", context: str = "") -> str:
    """The reason for a status code and a reply text (a delivery worker's SMTP reply, or one
    recipient of a report); `context` is more text about it that may tell the SMTP command."""
    found = find_status(diagnostic)
    if found and (not status or re.fullmatch(r"[45]\.[1-9]\.[1-9]", found)):
        status = found
    facts = Facts(
        status=status,
        reply_code=find_reply_code(diagnostic),
        diagnostic=" ".join(diagnostic.split()),
        command=smtp_command(diagnostic) or smtp_command(context),
        action=action.lower(),
        spec="SMTP",
    )
    return classify_facts(facts)


__all__ = [
    "Facts",
    "classify",
    "classify_facts",
    "find_reply_code",
    "find_status",
    "is_hard",
    "match_text",
]
