"""Capture routing: which capture project a message taken by the capture door goes into.

A rule is `KIND:PATTERN=PROJECT`:

- `user:PATTERN` matches the SMTP AUTH user name of the session (the capture door accepts any
  credentials and records the name), e.g. `user:staging=staging`;
- `rcpt:PATTERN` matches an envelope recipient, e.g. `rcpt:*@team-a.test=team-a`.

PATTERN is a shell-style wildcard (`*` any run of characters, `?` one character, `[...]` a
set), compared without regard to case. Rules come from `--capture-route` (in the order given)
and then from the stored rules (admin pages, `/api/v2/capture-routes`, in the order created).

How a message is routed (`route`): when a `user:` rule matches the session's user name, the
first such rule takes the whole message. Otherwise each recipient goes to the project of the
first `rcpt:` rule it matches, or to the door's own project (the default capture project)
when none does; a message whose recipients go to several projects is stored once in each,
with the envelope recipients of that project only.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from postroom.core.errors import InvalidInput

RouteKind = Literal["user", "rcpt"]
KINDS: tuple[RouteKind, ...] = ("user", "rcpt")
MAX_PATTERN = 320
_PROJECT = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class CaptureRoute:
    kind: RouteKind
    pattern: str
    project: str
    id: int | None = None  # stored rules; None for --capture-route ones
    _compiled: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = re.compile(fnmatch.translate(self.pattern.lower()), re.DOTALL)
        object.__setattr__(self, "_compiled", compiled)

    def matches(self, value: str) -> bool:
        assert self._compiled is not None
        return self._compiled.match(value.lower()) is not None

    @property
    def text(self) -> str:
        """The rule as `--capture-route` writes it."""
        return f"{self.kind}:{self.pattern}={self.project}"


def check_route(kind: object, pattern: object, project: object) -> tuple[RouteKind, str, str]:
    """The parts of a rule, checked; InvalidInput naming the field (Kind, Pattern, Project)."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be user or rcpt, got {kind!r}", "kind")
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidInput("pattern is empty: e.g. staging, or *@team-a.test", "pattern")
    text = pattern.strip()
    if len(text) > MAX_PATTERN or any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise InvalidInput(
            f"pattern must be at most {MAX_PATTERN} visible characters, without spaces",
            "pattern",
        )
    if not isinstance(project, str) or not _PROJECT.fullmatch(project.strip()):
        raise InvalidInput(
            f"project must be a project id (lower-case letters, digits and '-'), got {project!r}",
            "project",
        )
    return kind, text, project.strip()


def parse_route(text: str) -> CaptureRoute:
    """`user:staging=staging` or `rcpt:*@team-a.test=team-a`; InvalidInput when malformed."""
    kind, colon, rest = text.strip().partition(":")
    pattern, equals, project = rest.rpartition("=")
    if not colon or not equals:
        raise InvalidInput(
            f"capture route {text!r}: expected user:PATTERN=PROJECT or rcpt:PATTERN=PROJECT",
            "capture_route",
        )
    return CaptureRoute(*check_route(kind.strip().lower(), pattern, project))


def route(
    rules: Sequence[CaptureRoute],
    username: str | None,
    recipients: Sequence[str],
    default: str,
) -> dict[str, list[int]]:
    """Project -> the indexes of the recipients that go there, in first-seen order."""
    if username:
        for rule in rules:
            if rule.kind == "user" and rule.matches(username):
                return {rule.project: list(range(len(recipients)))}
    out: dict[str, list[int]] = {}
    recipient_rules = [r for r in rules if r.kind == "rcpt"]
    for index, address in enumerate(recipients):
        project = next((r.project for r in recipient_rules if r.matches(address)), default)
        out.setdefault(project, []).append(index)
    return out or {default: []}
