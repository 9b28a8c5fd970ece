"""Why a recipient bounced: a reason from the diagnostic text, else from the status code.

The text is tried first because receivers put the truth there and a generic code around it
(`550 5.2.1 <a@b>... User Unknown` is an unknown user, not a disabled mailbox). Patterns are
tried in order, most specific first; the first reason whose pattern matches wins. When no text
matches, the RFC 3463 status decides; `undefined` when neither says anything.
"""

from __future__ import annotations

import re

from postroom.bounces.model import HARD_REASONS

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY_CODE = re.compile(r"(?<![\d.#-])([245][0-5]\d)(?=[ -]|$)")


def _any(*phrases: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in phrases), re.IGNORECASE)


# (reason, pattern), most specific first.
_TEXT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "authfailure",
        _any(
            r"\bspf\b.{0,40}(fail|check|record|reject)",
            r"(fail|did not pass|reject).{0,40}\b(spf|dkim|dmarc)\b",
            r"\bdmarc\b",
            r"\bdkim\b.{0,40}(fail|invalid|missing|signature)",
            r"sender.{0,20}not authorized to send",
            r"5\.7\.(2[3-9]|509|51[0-5])\b",
            r"unauthenticated email",
            r"authentication (checks?|results?) (fail|did)",
        ),
    ),
    (
        "requireptr",
        _any(
            r"\bptr\b",
            r"reverse (dns|lookup|look-up|hostname)",
            r"\brdns\b",
            r"cannot find your (reverse )?hostname",
            r"(no|missing|does not have) (a )?(valid )?(reverse|host ?name) ",
            r"(ip|address).{0,30}(has no|without) (ptr|dns name)",
            r"client host rejected: cannot find your hostname",
            r"unresolvable (client )?host ?name",
            r"hostname.{0,30}does not resolve",
        ),
    ),
    (
        "virusdetected",
        _any(r"\bvirus", r"malware", r"infected", r"malicious (content|attachment|software)"),
    ),
    (
        "spamdetected",
        _any(
            r"\bspam\b(?!haus)",
            r"spam (content|message|detected|score)",
            r"message (looks|considered|classified|identified) (like|as) (spam|junk|bulk)",
            r"\bjunk mail\b",
            r"\bu[cb]e\b",
            r"content rejected",
            r"unsolicited",
            r"content (was |is )?(identified|detected) as spam",
            r"bulk mail",
        ),
    ),
    (
        "notcompliantrfc",
        _any(
            r"rfc ?(2822|5322|822|5321)",
            r"not (rfc|standards?)[- ]compliant",
            r"duplicate (header|message-id)",
            r"missing (required )?(header|message-id|date)",
            r"(header|headers) (are|is) (malformed|invalid|not compliant)",
            r"multiple (addresses in )?from",
        ),
    ),
    (
        "badreputation",
        _any(r"reputation", r"sender score", r"sending ip.{0,30}(low|poor)"),
    ),
    (
        "policyviolation",
        _any(r"for policy reasons", r"policy violation", r"violates? .{0,30}polic"),
    ),
    (
        "speeding",
        _any(r"receiving mail (at a rate|too quickly)", r"sent to too many recipients"),
    ),
    (
        "toomanyconn",
        _any(r"(connection|ip) frequency limited", r"too many (connections|recipients)"),
    ),
    (
        "securityerror",
        _any(
            r"must (issue|use) (a )?starttls",
            r"(tls|encryption|starttls) (is |was )?required",
            r"authentication required",
            r"must authenticate",
            r"insecure (connection|mechanism)",
            r"certificate",
            r"5\.7\.9\b",
            r"(message|mail) (rejected|blocked) (for|due to) security",
            r"security (policy|reasons|violation)",
        ),
    ),
    (
        "failedstarttls",
        _any(r"starttls.{0,30}fail", r"tls (negotiation|handshake) fail"),
    ),
    (
        "norelaying",
        _any(
            r"relay(ing)? (access )?(denied|not (permitted|allowed))",
            r"(not|unable|cannot|can't|isn't allowed to) (permitted to )?relay",
            r"not (a )?(local|gateway).{0,20}relay",
            r"we do not relay",
            r"relay not permitted",
            r"no relaying",
            r"open relay",
        ),
    ),
    (
        "hasmoved",
        _any(
            r"has moved", r"address (has )?changed", r"no longer (valid|in use|at)", r"\b5\.1\.6\b"
        ),
    ),
    (
        "notaccept",
        _any(
            r"null mx",
            r"does not accept (e-?)?mail",
            r"(domain|host|server) (does not|doesn't) (accept|receive) (mail|email|messages)",
            r"not accepting (any )?(mail|messages)",
            r"5\.1\.10\b",
        ),
    ),
    (
        "hostunknown",
        _any(
            r"host (or domain name )?(not found|unknown)",
            r"unknown host",
            r"domain (name )?(not found|does not exist|unknown|not exist)",
            r"no such (domain|host)",
            r"name service error",
            r"unrouteable (mail )?domain",
            r"(unknown|invalid|unroutable) (recipient )?domain",
            r"\bnxdomain\b",
            r"recipient domain.{0,40}(not|invalid|unknown)",
            r"dns (error|lookup).{0,40}(domain|not found)",
            r"no (valid )?mx",
            r"couldn't find any host",
        ),
    ),
    (
        "suspend",
        _any(
            r"(account|mailbox|user|recipient|address)( is| has been| was)? "
            r"(disabled|suspended|deactivated|inactive|locked|frozen|blocked|closed|expired)",
            r"(disabled|suspended|inactive|deactivated|closed) (account|mailbox|user)",
            r"not (an )?active (account|mailbox|user)",
            r"is not active",
            r"inactive (account|mailbox|user|recipient)",
            r"temporarily (disabled|deactivated)",
        ),
    ),
    (
        "mailboxfull",
        _any(
            r"mail ?box (is |was )?(full|over ?quota|exceeded)",
            r"(over|exceeded|exceeds|exceeding|reached).{0,20}(quota|storage|disk|mailbox size)",
            r"quota (exceeded|exceed|full|violation)",
            r"(insufficient|not enough) (disk )?(space|storage)",
            r"(mailbox|storage|disk) (size )?(limit|allocation) (exceeded|reached)",
            r"full mail ?box",
            r"too many messages (in|on) (the )?(mailbox|account)",
            r"user is over",
            r"mailfolder is full",
            r"\bquota\b",
        ),
    ),
    (
        "exceedlimit",
        _any(
            r"exceeds? (the )?(message |administrative |recipient'?s? )?(size )?limit"
            r"(?! for (this|the) (server|system))",
            r"message (length|size) exceeds (administrative|the recipient)",
        ),
    ),
    (
        "mesgtoobig",
        _any(
            r"message (is )?too (big|large|long)",
            r"message size exceeds",
            r"size (limit|restriction).{0,20}(exceeded|exceeds)",
            r"exceeds (the )?maximum (message )?size",
            r"mail too big",
            r"message file too big",
        ),
    ),
    (
        "userunknown",
        _any(
            r"user (is )?unknown",
            r"unknown (user|recipient|local ?part|mailbox|address|account)",
            r"no such (user|mailbox|recipient|account|address|person)",
            r"(user|recipient|mailbox|account|address|addressee)( name)? "
            r"(does not|doesn't|did not) exist",
            r"(user|recipient|mailbox|account|address|addressee) (not found|unknown|invalid)",
            r"(invalid|bad|unknown|non-?existent) "
            r"(recipient|mailbox|destination mailbox|user|address)",
            r"recipient (address )?rejected",
            r"not a (valid|known) (user|recipient|mailbox)",
            r"no mailbox (here|by that name)",
            r"mailbox (unavailable|not available|does not exist|not exist)",
            r"undeliverable address",
            r"unrouteable address",
            r"addressee unknown",
            r"user doesn't have a",
            r"the email account that you tried to reach does not exist",
            r"no such (address|user) here",
            r"unknown or illegal alias",
            r"recipient no longer",
            r"address (lookup|verification) failed",
            r"user not local",
            r"unknown address error",
            r"invalid address",
            r"5\.1\.1\b",
            r"said:\s*550[ -]5\.1\.1",
        ),
    ),
    (
        "rejected",
        _any(
            r"sender (address )?(rejected|denied|refused|blocked|invalid|unknown|verify failed)",
            r"(domain of )?sender address (rejected|does not exist|unknown)",
            r"(rejected|refused|denied).{0,20}sender",
            r"sender (was )?rejected",
            r"envelope (sender|from)",
            r"(from|sender) (address )?(is )?not (allowed|permitted|accepted)",
            r"access denied",
            r"(your|the) (sender|from) (address|domain)",
            r"mail from .{0,60}(rejected|refused|denied)",
            r"\b5\.1\.[78]\b",
            r"bogus mail from",
            r"invalid sender",
        ),
    ),
    (
        "blocked",
        _any(
            r"blacklist|blocklist|block list|black list|denylist",
            r"\b(rbl|dnsbl|spamhaus|spamcop|sorbs|barracuda)\b",
            r"listed (in|on|at)",
            r"client host.{0,40}(rejected|blocked|refused)",
            r"(your|the|sending|client) (ip|host|server|network)(address)?.{0,40}"
            r"(blocked|rejected|refused|banned|denied|not allowed)",
            r"(ip|host|address|connection).{0,20}(has been |is |was )?(blocked|banned|refused)",
            r"blocked",
            r"connection (refused|rejected|denied)",
            r"not allowed to (send|connect)",
            r"access denied",
            r"go away",
        ),
    ),
    (
        "toomanyconn",
        _any(
            r"too many (concurrent |simultaneous )?(connections|sessions)",
            r"connection (limit|rate limit)",
            r"too many (messages|recipients) in (this|one) (session|connection)",
        ),
    ),
    (
        "speeding",
        _any(
            r"rate (limit|control)",
            r"too fast",
            r"(sending|receiving|message) rate",
            r"too many (messages|emails|mails)",
            r"(mail|messages) (sent|received) too quickly",
            r"throttl",
        ),
    ),
    (
        "policyviolation",
        _any(
            r"polic(y|ies)",
            r"violat",
            r"prohibited",
            r"not allowed",
            r"administrative(ly)? (prohibited|denied)",
        ),
    ),
    (
        "filtered",
        _any(
            r"(delivery|mail) (is )?not authori[sz]ed",
            r"refused by (the )?recipient",
            r"rejected by (the )?(user|recipient)",
            r"recipient (has )?(rejected|refused|blocked)",
            r"does not accept mail from",
            r"(message|mail|content) (was )?(filtered|rejected|refused)",
            r"filter",
            r"user (has )?(rejected|refused|blocked)",
            r"not accepting mail from",
        ),
    ),
    (
        "expired",
        _any(
            r"(delivery|retry|queue) (time|timeout|period) (expired|exceeded)",
            r"(message|mail) (has )?(expired|timed out)",
            r"retry timeout exceeded",
            r"too long in (the )?queue",
            r"could not be delivered (for|within|in)",
            r"giving up",
            r"delays? exceeded",
            r"\b[45]\.4\.7\b",
            r"(have|has) not been delivered.{0,60}(days|hours)",
            r"still (undelivered|not delivered|trying)",
            r"delivery (is )?delayed",
            r"will (continue|keep) (to )?(try|trying|retry)",
        ),
    ),
    (
        "networkerror",
        _any(
            r"connection (timed out|timeout|reset|lost|closed|dropped)",
            r"(lost|dropped) connection",
            r"network (is )?unreachable",
            r"no route to host",
            r"timed out while",
            r"timeout (while|waiting)",
            r"host (is )?unreachable",
            r"could not connect",
            r"unable to connect",
            r"connect(ion)? (to .{0,60})?failed",
            r"(dns|name server) (timeout|failure|error)",
            r"temporary (dns|lookup) failure",
            r"mx.{0,30}(unreachable|not reachable)",
            r"mail loop|too many hops|loops back to myself|routing loop",
        ),
    ),
    (
        "systemfull",
        _any(
            r"system (is )?full",
            r"insufficient system (storage|resources)",
            r"out of (disk )?space",
        ),
    ),
    (
        "mailererror",
        _any(
            r"mailer (error|failed)",
            r"x-unix;",
            r"command (died|failed|output)",
            r"exit (code|status)",
            r"procmail|maildrop|\bpipe\b|permission denied",
        ),
    ),
    (
        "syntaxerror",
        _any(
            r"syntax error",
            r"command (not )?(unrecognized|recognized|understood)",
            r"bad sequence of commands",
            r"need (mail|rcpt)( command)?",
            r"unknown command",
        ),
    ),
    (
        "systemerror",
        _any(
            r"system (error|failure|problem)",
            r"internal (server )?error",
            r"local (error|problem)",
            r"server (configuration|misconfigur|error)",
            r"temporar(il)?y (local )?(problem|failure|error|unavailable)",
            r"try again later",
            r"service (not |un)available",
            r"resources",
            r"i/o error",
        ),
    ),
    ("contenterror", _any(r"content", r"mime", r"encoding", r"attachment")),
)

# RFC 3463 status -> reason when the text says nothing recognisable.
_STATUS_REASONS = {
    "1.1": "userunknown",
    "1.2": "hostunknown",
    "1.3": "userunknown",
    "1.4": "userunknown",
    "1.5": "userunknown",
    "1.6": "hasmoved",
    "1.7": "rejected",
    "1.8": "rejected",
    "1.10": "notaccept",
    "2.0": "filtered",
    "2.1": "suspend",
    "2.2": "mailboxfull",
    "2.3": "exceedlimit",
    "2.4": "systemerror",
    "3.0": "systemerror",
    "3.1": "systemfull",
    "3.2": "systemerror",
    "3.3": "systemerror",
    "3.4": "mesgtoobig",
    "3.5": "systemerror",
    "4.0": "networkerror",
    "4.1": "networkerror",
    "4.2": "networkerror",
    "4.3": "systemerror",
    "4.4": "networkerror",
    "4.5": "networkerror",
    "4.6": "networkerror",
    "4.7": "expired",
    "5.0": "syntaxerror",
    "5.1": "syntaxerror",
    "5.2": "syntaxerror",
    "5.3": "syntaxerror",
    "5.4": "syntaxerror",
    "5.5": "syntaxerror",
    "6.0": "contenterror",
    "6.1": "contenterror",
    "6.2": "contenterror",
    "6.3": "contenterror",
    "6.4": "contenterror",
    "6.5": "contenterror",
    "6.6": "contenterror",
    "6.7": "contenterror",
    "7.0": "securityerror",
    "7.1": "rejected",
    "7.2": "securityerror",
    "7.3": "securityerror",
    "7.4": "securityerror",
    "7.5": "securityerror",
    "7.6": "securityerror",
    "7.7": "securityerror",
    "7.8": "securityerror",
    "7.9": "securityerror",
    "7.13": "suspend",
    "7.17": "suspend",
    "7.18": "suspend",
    "7.25": "requireptr",
    "7.26": "authfailure",
    "7.27": "notaccept",
}


def find_status(text: str) -> str:
    """The first enhanced status code (RFC 3463) in `text`, or ""."""
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def find_reply_code(text: str) -> str:
    """The first SMTP reply code in a diagnostic text, or ""."""
    match = _REPLY_CODE.search(text)
    return match.group(1) if match else ""


def reason_from_text(text: str) -> str:
    if not text:
        return ""
    for reason, pattern in _TEXT_RULES:
        if pattern.search(text):
            return reason
    return ""


def reason_from_status(status: str) -> str:
    parts = status.split(".")
    if len(parts) != 3 or parts[0] not in ("4", "5"):
        return ""
    return _STATUS_REASONS.get(f"{parts[1]}.{parts[2]}", "")


_STAGE = re.compile(
    r"in reply to (?P<postfix>mail from|rcpt to|data|end of data)|"
    r"after (?P<exim>mail from|rcpt to|data|end of data|initial connection|helo|ehlo)|"
    r">>> (?P<sendmail>mail from|rcpt to|data|helo|ehlo)",
    re.IGNORECASE,
)


def smtp_stage(text: str) -> str:
    """The SMTP command a diagnostic was the answer to: mail, rcpt, data, connect or ""."""
    match = _STAGE.search(text)
    if not match:
        return ""
    word = (match.group("postfix") or match.group("exim") or match.group("sendmail")).lower()
    if word in ("data", "end of data"):
        return "data"
    if word in ("initial connection", "helo", "ehlo"):
        return "connect"
    return word.split()[0]


_GAVE_UP = frozenset({"networkerror", "systemerror", "undefined", "expired", ""})


def classify(status: str, diagnostic: str, action: str = "", context: str = "") -> str:
    """The reason for one recipient. `context` is the report's own text about the recipient
    (a transcript, a paragraph), read for the SMTP command the diagnostic answered."""
    action = action.lower()
    if action in ("delivered", "relayed", "expanded") or status.startswith("2."):
        return "delivered"
    reason = _classify(status, diagnostic, action)
    stage = smtp_stage(diagnostic) or smtp_stage(context)
    if stage == "data" and reason == "userunknown":
        return "filtered"  # the recipient was accepted, then the message refused
    if stage == "mail" and reason in ("userunknown", "undefined", "filtered", "systemerror"):
        return "rejected"  # the sender was refused
    if stage == "connect" and reason in ("undefined", "systemerror", "mailboxfull"):
        return "blocked"
    if action == "failed" and status.startswith("4") and reason in _GAVE_UP:
        return "expired"  # temporary failures until the sender gave up
    return reason


def _classify(status: str, diagnostic: str, action: str) -> str:
    specific = reason_from_status(status) if status and status[2:] not in ("0.0",) else ""
    if specific in ("hostunknown", "mailboxfull", "hasmoved", "notaccept", "authfailure"):
        # Codes precise enough to trust over wording.
        text_reason = reason_from_text(diagnostic)
        if text_reason in ("", "userunknown", "rejected", "blocked", "filtered", "systemerror"):
            return (
                specific
                if text_reason != "userunknown" or specific != "hostunknown"
                else text_reason
            )
        return text_reason
    reason = reason_from_text(diagnostic) or specific
    if not reason and action == "delayed":
        return "expired"
    return reason or "undefined"


def is_hard(reason: str, status: str, reply_code: str) -> bool:
    permanent = status.startswith("5") or (not status and reply_code.startswith("5"))
    return permanent and reason in HARD_REASONS
