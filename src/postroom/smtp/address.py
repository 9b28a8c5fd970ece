"""Envelope address and ESMTP parameter syntax (RFC 5321 §4.1.2, RFC 6531, RFC 3461 xtext).

`parse_path` takes what follows `MAIL FROM:` / `RCPT TO:` and returns the mailbox (source route
stripped) and the parameter text after the closing `>`. It raises `AddressError` with a reason a
person understands. Length limit: the path is at most 256 octets including `<` and `>`
(RFC 5321 §4.5.3.1.3); the local part is not limited separately (VERP addresses often exceed 64).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from postroom.core.errors import PostroomError

_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_UTF8 = "\u0080-\U0010ffff"

_DOT_STRING = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_DOT_STRING_UTF8 = re.compile(rf"[{_ATEXT}{_UTF8}]+(?:\.[{_ATEXT}{_UTF8}]+)*")
# qtextSMTP = %d32-33 / %d35-91 / %d93-126 ; quoted-pairSMTP = "\" %d32-126
_QUOTED = re.compile(r'"(?:[ !#-\[\]-~]|\\[ -~])*"')
_QUOTED_UTF8 = re.compile(rf'"(?:[ !#-\[\]-~{_UTF8}]|\\[ -~])*"')
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_LABEL_UTF8 = rf"[A-Za-z0-9{_UTF8}](?:[A-Za-z0-9{_UTF8}-]*[A-Za-z0-9{_UTF8}])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DOMAIN_UTF8 = re.compile(rf"{_LABEL_UTF8}(?:\.{_LABEL_UTF8})*")
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?:[!-Z^-~]+")
# A-d-l = At-domain *( "," At-domain ) ":"  (the domain may be an address literal)
_AT_DOMAIN = r"@(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[!-Z^-~]*\])"
_ROUTE = re.compile(rf"{_AT_DOMAIN}(?:,{_AT_DOMAIN})*:")

# esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# esmtp-value = 1*(%d33-60 / %d62-126), RFC 6531 adds UTF8-non-ascii
_VALUE = re.compile(r"[!-<>-~]+")
_VALUE_UTF8 = re.compile(rf"[!-<>-~{_UTF8}]+")
# xtext = *( xchar / hexchar ): xchar is %d33-42 / %d44-60 / %d62-126, hexchar is "+" 2HEX
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})+")
_XTEXT_UTF8 = re.compile(rf"(?:[!-*,-<>-~{_UTF8}]|\+[0-9A-F]{{2}})+")
_ATOM = re.compile(rf"[{_ATEXT}]+")

MAX_PATH = 256

# The common case in one match: <dot-string@domain> optionally followed by parameters.
_SIMPLE_PATH = re.compile(rf"<([{_ATEXT}]+(?:\.[{_ATEXT}]+)*@{_LABEL}(?:\.{_LABEL})*)>(?: +(.*))?")


class AddressError(PostroomError, ValueError):
    """The address is not valid; the message says why, for the SMTP reply."""


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed reverse- or forward-path."""

    address: str  # "" for the null reverse-path <>
    rest: str  # the text after ">", parameters separated by spaces
    utf8: bool  # the address holds non-ASCII characters


def split_path(text: str) -> tuple[str, str]:
    """Split `<...> params` into the text between the brackets and what follows.

    Quoted local parts may hold `>`; a backslash quotes the next character inside quotes.
    """
    if not text.startswith("<"):
        raise AddressError("the address must be enclosed in <>")
    if '"' not in text:
        end = text.find(">")
    else:
        end = -1
        quoted = False
        i = 1
        n = len(text)
        while i < n:
            c = text[i]
            if quoted:
                if c == "\\":
                    i += 2
                    continue
                if c == '"':
                    quoted = False
            elif c == '"':
                quoted = True
            elif c == ">":
                end = i
                break
            i += 1
    if end < 0:
        raise AddressError("the address has no closing >")
    rest = text[end + 1 :]
    if rest and rest[0] != " ":
        raise AddressError("unexpected text after the closing >")
    return text[1:end], rest.strip(" ")


def check_mailbox(mailbox: str, *, utf8: bool) -> None:
    """Raise AddressError unless `mailbox` is `local-part@domain` (RFC 5321; RFC 6531 if utf8)."""
    local, at, domain = mailbox.rpartition("@")
    if not at:
        raise AddressError("the address has no @domain part")
    if not local:
        raise AddressError("the address has an empty local part")
    if local[0] == '"':
        pattern = _QUOTED_UTF8 if utf8 else _QUOTED
        if pattern.fullmatch(local) is None:
            raise AddressError("the quoted local part is malformed")
    else:
        pattern = _DOT_STRING_UTF8 if utf8 else _DOT_STRING
        if pattern.fullmatch(local) is None:
            raise AddressError("the local part holds characters that are not allowed")
    check_domain(domain, utf8=utf8)


def check_domain(domain: str, *, utf8: bool) -> None:
    if not domain:
        raise AddressError("the domain is empty")
    if domain[0] == "[":
        _check_literal(domain)
        return
    pattern = _DOMAIN_UTF8 if utf8 else _DOMAIN
    if pattern.fullmatch(domain) is None:
        raise AddressError("the domain is not a valid host name")
    if len(domain) > 255 or any(len(label) > 63 for label in domain.split(".")):
        raise AddressError("the domain is too long")


def _labels_fit(address: str) -> bool:
    domain = address.rpartition("@")[2]
    return (
        len(address) <= MAX_PATH - 2
        and len(domain) <= 255
        and all(len(label) <= 63 for label in domain.split("."))
    )


def _check_literal(literal: str) -> None:
    if literal[-1] != "]":
        raise AddressError("the address literal has no closing ]")
    inner = literal[1:-1]
    try:
        if inner[:5].upper() == "IPV6:":
            ipaddress.IPv6Address(inner[5:])
            return
        if inner[:1].isdigit() and ":" not in inner:
            ipaddress.IPv4Address(inner)
            return
    except ValueError:
        raise AddressError("the address literal is not a valid IP address") from None
    if _GENERAL_LITERAL.fullmatch(inner) is None:
        raise AddressError("the address literal is malformed")


def parse_path(text: str, *, null_ok: bool, postmaster_ok: bool) -> Path:
    """Parse `<mailbox> [params]`: null path `<>` when `null_ok`, bare `<postmaster>` when
    `postmaster_ok`; a source route (`<@a,@b:user@c>`) is accepted and dropped."""
    simple = _SIMPLE_PATH.fullmatch(text)
    if simple is not None:
        address = simple.group(1)
        if len(address) <= 64 or _labels_fit(address):
            return Path(address, (simple.group(2) or "").strip(" "), False)
    inner, rest = split_path(text)
    if not inner:
        if null_ok:
            return Path("", rest, False)
        raise AddressError("the null address <> is not allowed here")
    if len(inner) > MAX_PATH - 2 or (
        not inner.isascii() and len(inner.encode("utf-8")) > MAX_PATH - 2
    ):
        raise AddressError("the address is longer than 256 octets")
    if inner[0] == "@":
        route = _ROUTE.match(inner)
        if route is None:
            raise AddressError("the source route is malformed")
        inner = inner[route.end() :]
        if not inner:
            raise AddressError("the source route is not followed by an address")
    utf8 = not inner.isascii()
    if postmaster_ok and inner.lower() == "postmaster":
        return Path(inner, rest, False)
    check_mailbox(inner, utf8=utf8)
    return Path(inner, rest, utf8)


class ParamError(PostroomError, ValueError):
    """A malformed parameter (501 5.5.4)."""


def split_params(text: str, *, utf8: bool) -> dict[str, str]:
    """`KEY[=VALUE] ...` into a dict with upper-cased keys; values kept as sent.

    A keyword without value maps to "". Raises ParamError on bad syntax or duplicates.
    """
    params: dict[str, str] = {}
    if not text:
        return params
    value_pattern = _VALUE_UTF8 if utf8 else _VALUE
    for item in text.split(" "):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if _KEYWORD.fullmatch(key) is None:
            raise ParamError(f"malformed parameter {item!r}")
        if eq and value_pattern.fullmatch(value) is None:
            raise ParamError(f"malformed value for parameter {key.upper()}")
        key = key.upper()
        if key in params:
            raise ParamError(f"parameter {key} given twice")
        params[key] = value
    return params


def is_xtext(value: str, *, utf8: bool = False) -> bool:
    return (_XTEXT_UTF8 if utf8 else _XTEXT).fullmatch(value) is not None


def is_atom(value: str) -> bool:
    return _ATOM.fullmatch(value) is not None
