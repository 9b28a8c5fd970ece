"""The spam check: a message scored by SpamAssassin's spamd (`--spamassassin HOST:PORT`),
in Mailpit's SpamAssassinResponse shape.

The SPAMC/1.5 protocol: one REPORT request per connection (the message with its length),
one answer with `Spam: True|False ; SCORE / THRESHOLD` and the report text whose table lists
the rules that hit (points, name, description, the description wrapping onto indented lines).
`request` and `parse_answer` are pure; `check` does the I/O, bounded in time and size.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from postroom.config import HostPort

MAX_MESSAGE = 512 * 1024  # spamc's default: larger messages are not checked
MAX_ANSWER = 1024 * 1024
TIMEOUT = 30.0

_SPAM = re.compile(r"^(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)", re.IGNORECASE)
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")


@dataclass
class SpamResult:
    score: float = 0.0
    is_spam: bool = False
    rules: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "Score": self.score,
            "IsSpam": self.is_spam,
            "Rules": self.rules,
            "Error": self.error,
        }


def request(message: bytes) -> bytes:
    return b"REPORT SPAMC/1.5\r\nContent-length: %d\r\n\r\n" % len(message) + message


def parse_answer(answer: bytes) -> SpamResult:
    """spamd's answer to REPORT; a result with `error` set when it is not a good one."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(None, 2)
    if not sep or len(status) < 2 or not status[0].startswith("SPAMD/"):
        return SpamResult(error=f"spamd gave no answer to understand: {lines[0][:80]!r}")
    if status[1] != "0":
        reason = status[2] if len(status) > 2 else ""
        return SpamResult(error=f"spamd refused the check: {status[1]} {reason}".strip())
    result = SpamResult()
    found = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "spam":
            match = _SPAM.match(value.strip())
            if match:
                found = True
                result.is_spam = match.group(1).lower() in ("true", "yes")
                result.score = float(match.group(2))
    if not found:
        return SpamResult(error="spamd's answer has no Spam header")
    result.rules = parse_rules(body.decode("utf-8", "replace"))
    return result


def parse_rules(report: str) -> list[dict[str, Any]]:
    """The rules of the report's table (after the `---- ----` line)."""
    rules: list[dict[str, Any]] = []
    in_table = False
    for line in report.splitlines():
        if not in_table:
            in_table = line.startswith("----")
            continue
        if not line.strip():
            break
        match = _RULE.match(line)
        if match:
            rules.append(
                {
                    "Score": float(match.group(1)),
                    "Name": match.group(2),
                    "Description": match.group(3).strip(),
                }
            )
        elif rules and line.startswith(" "):  # a description continued
            rules[-1]["Description"] += " " + line.strip()
    return rules


def too_big(size: int) -> SpamResult:
    return SpamResult(
        error=f"the message is {size} bytes, more than the {MAX_MESSAGE} SpamAssassin is "
        "given; not checked"
    )


async def check(server: HostPort, message: bytes, timeout: float = TIMEOUT) -> SpamResult:
    """Ask spamd; a connection or protocol failure is a result with `error` (as Mailpit)."""
    if len(message) > MAX_MESSAGE:
        return too_big(len(message))
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(server.host, server.port)
            try:
                writer.write(request(message))
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                answer = await reader.read(MAX_ANSWER + 1)
                while answer and len(answer) <= MAX_ANSWER:
                    more = await reader.read(MAX_ANSWER + 1 - len(answer))
                    if not more:
                        break
                    answer += more
            finally:
                writer.close()
    except TimeoutError:
        return SpamResult(error=f"spamd at {server} did not answer within {timeout:g} s")
    except OSError as exc:
        return SpamResult(error=f"cannot reach spamd at {server}: {exc}")
    if len(answer) > MAX_ANSWER:
        return SpamResult(error=f"spamd's answer is larger than {MAX_ANSWER} bytes")
    return parse_answer(answer)
