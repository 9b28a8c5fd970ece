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

    SHOWN = 10  # messages named in the sentence (all are in `pending`)

    def __init__(self, pending: Mapping[str, tuple[str, ...]], field: str | None = None) -> None:
        self.pending = dict(pending)
        self.field = field
        deliveries = sum(len(r) for r in self.pending.values())
        count = len(self.pending)
        named = "; ".join(
            f"{mid} to {', '.join(rcpts)}"
            for mid, rcpts in list(self.pending.items())[: self.SHOWN]
        )
        if count > self.SHOWN:
            named += f"; and {count - self.SHOWN} more"
        super().__init__(
            f"nothing was deleted: {count} message{'s' if count != 1 else ''} "
            f"{'have' if count != 1 else 'has'} {deliveries} "
            f"deliver{'ies' if deliveries != 1 else 'y'} pending ({named}); "
            "they can be deleted once delivered or failed"
        )

    @property
    def deliveries(self) -> int:
        return sum(len(r) for r in self.pending.values())
