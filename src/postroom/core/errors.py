"""The one exception tree. Every error Postroom raises on purpose is a PostroomError.

Errors that reach an SMTP client carry the reply they should produce (code, enhanced status
code, a sentence a person understands); errors that reach an HTTP client carry a status and the
field they concern.
"""

from __future__ import annotations


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
