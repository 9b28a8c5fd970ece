"""The one exception tree. Every error Postroom raises on purpose is a PostroomError.

Errors that reach an SMTP client carry the reply they should produce (code, enhanced status
code, a sentence a person understands); errors that reach an HTTP client carry a status and the
field they concern.
"""

from __future__ import annotations

from collections.abc import Mapping


class PostroomError(Exception):
    """Base of every error Postroom raises on purpose."""


class ConfigError(PostroomError):
    """The configuration is invalid; the message says which option and why."""


class StorageError(PostroomError):
    """The store failed (I/O, database down). Transient for SMTP: 451 4.3.0."""


class NotFound(PostroomError):
    """A message, part, tag or other object does not exist."""


class InvalidInput(PostroomError):
    """Bad input from a client of the API; `field` names what was wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Rejected(PostroomError):
    """The pipeline refuses a message; carries the SMTP reply to send."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(f"{code} {enhanced} {text}")
        self.code = code
        self.enhanced = enhanced
        self.text = text

    @property
    def permanent(self) -> bool:
        return self.code >= 500


class PendingDeliveries(PostroomError):
    """A delete would remove messages whose recipients are not all delivered yet; nothing was
    deleted. `pending` maps each such message id to its recipients still to deliver to;
    `field` is the request field that selected them (HTTP 409)."""

    SHOWN = 10  # messages, and recipients of each, named in the sentence (all are in `pending`)

    def __init__(self, pending: Mapping[str, tuple[str, ...]], field: str | None = None) -> None:
        self.pending = dict(pending)
        self.field = field
        deliveries = sum(len(r) for r in self.pending.values())
        count = len(self.pending)
        named = "; ".join(
            f"{mid} to {_some(rcpts, self.SHOWN)}"
            for mid, rcpts in list(self.pending.items())[: self.SHOWN]
        )
        if count > self.SHOWN:
            named += f"; and {count - self.SHOWN} more"
        one = count == 1
        super().__init__(
            f"Nothing was deleted: {count} message{'' if one else 's'} "
            f"{'has' if one else 'have'} {deliveries} "
            f"deliver{'y' if deliveries == 1 else 'ies'} pending ({named}); "
            f"{'it' if one else 'they'} can be deleted once every recipient is delivered "
            "or has failed"
        )

    @property
    def deliveries(self) -> int:
        return sum(len(r) for r in self.pending.values())


def _some(items: tuple[str, ...], shown: int) -> str:
    text = ", ".join(items[:shown])
    return text if len(items) <= shown else f"{text} and {len(items) - shown} more"
