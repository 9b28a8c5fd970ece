"""Read an address verification mail as its recipient would: the link and the code in it."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

_LINK = re.compile(r"https?://\S+/confirm-address\?token=\S+")
_CODE = re.compile(r"^\s+(pva_[A-Za-z0-9_-]+)\s*$", re.MULTILINE)


def body_of(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None, "the verification mail has no text part"
    text = part.get_content()
    assert isinstance(text, str)
    return text


def link_in(raw: bytes) -> str:
    found = _LINK.findall(body_of(raw))
    assert len(found) == 1, f"expected one confirmation link, found {found}"
    return str(found[0])


def code_in(raw: bytes) -> str:
    found = _CODE.findall(body_of(raw))
    assert len(found) == 1, f"expected one code, found {found}"
    return str(found[0])


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]
