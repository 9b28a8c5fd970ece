"""Helpers for driving the sans-IO session in unit tests."""

from __future__ import annotations

import re
from typing import Any

from postroom.core.errors import Refusal
from postroom.smtp.protocol import (
    CheckAuth,
    Close,
    DeliverMessage,
    Output,
    Reply,
    SessionPolicy,
    SmtpSession,
    StartTls,
)

__all__ = [
    "CheckAuth",
    "Client",
    "Close",
    "DeliverMessage",
    "Refusal",
    "StartTls",
    "make_policy",
]

_FINAL = re.compile(r"^(\d{3}) (?:(\d\.\d{1,3}\.\d{1,3}) )?")


def make_policy(**overrides: Any) -> SessionPolicy:
    values: dict[str, Any] = {"hostname": "mx.test"}
    values.update(overrides)
    return SessionPolicy(**values)


def split_replies(data: bytes) -> list[list[str]]:
    """Reply bytes into replies, each a list of its lines (without CRLF)."""
    assert data.endswith(b"\r\n"), data
    replies: list[list[str]] = []
    current: list[str] = []
    for line in data.decode("utf-8").split("\r\n")[:-1]:
        assert re.match(r"^\d{3}[ -]", line), line
        current.append(line)
        if line[3] == " ":
            replies.append(current)
            current = []
    assert not current, f"unterminated multi-line reply {current}"
    return replies


def code_of(reply_lines: list[str]) -> str:
    """'250 2.1.0' (or '354' for replies without an enhanced code) from the last line."""
    match = _FINAL.match(reply_lines[-1])
    assert match is not None, reply_lines
    return match.group(1) + (f" {match.group(2)}" if match.group(2) else "")


class Client:
    """A session plus conveniences: feed bytes, read reply codes and texts."""

    def __init__(
        self,
        policy: SessionPolicy | None = None,
        *,
        tls: bool = False,
        ehlo: bool = False,
    ) -> None:
        self.session = SmtpSession(policy or make_policy(), tls_active=tls, peer="192.0.2.7")
        self.greeting = self.session.greeting()
        self.outputs: list[Output] = []
        if ehlo:
            assert self.codes(b"EHLO client.test\r\n") == ["250"]

    def feed(self, data: bytes) -> list[Output]:
        self.outputs = self.session.feed(data)
        return self.outputs

    def replies(self, data: bytes | None = None, outputs: list[Output] | None = None) -> list[str]:
        """All replies (lines joined by newline) produced by feeding `data`."""
        if outputs is None:
            outputs = self.feed(data if data is not None else b"")
        else:
            self.outputs = outputs
        raw = b"".join(o.data for o in outputs if isinstance(o, Reply))
        return ["\n".join(r) for r in split_replies(raw)] if raw else []

    def codes(self, data: bytes | None = None, outputs: list[Output] | None = None) -> list[str]:
        return [code_of(r.split("\n")) for r in self.replies(data, outputs)]

    def last_codes(self) -> list[str]:
        return self.codes(outputs=self.outputs)

    @property
    def kinds(self) -> list[type]:
        return [type(o) for o in self.outputs]

    def delivery(self) -> DeliverMessage:
        found = [o for o in self.outputs if isinstance(o, DeliverMessage)]
        assert len(found) == 1, self.outputs
        return found[0]

    def start_transaction(self, sender: str = "a@example.com", *rcpts: str) -> None:
        assert self.codes(f"MAIL FROM:<{sender}>\r\n".encode()) == ["250 2.1.0"]
        for rcpt in rcpts or ("b@example.org",):
            assert self.codes(f"RCPT TO:<{rcpt}>\r\n".encode()) == ["250 2.1.5"]

    def start_data(self) -> None:
        self.start_transaction()
        assert self.codes(b"DATA\r\n") == ["354"]

    def send_message(self, body: bytes) -> DeliverMessage | None:
        """DATA with `body` (already dot-stuffed, including the terminator)."""
        self.start_data()
        self.feed(body)
        found = [o for o in self.outputs if isinstance(o, DeliverMessage)]
        return found[0] if found else None
