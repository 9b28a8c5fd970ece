"""The one exception tree. Every error Postroom raises on purpose is a PostroomError.

A `Refusal` is the one way the doors and the pipeline say no to a client: a kind (what went
wrong, from a fixed vocabulary), a detail (a sentence a person understands) and whether trying
again later may succeed. No SMTP code or HTTP status is chosen here: each edge renders a refusal
from its kind (smtp/refusals.py: code, enhanced code and the detail as the text; api/errors.py:
status, Retry-After and a JSON error naming the problem). Errors that reach an HTTP client
otherwise carry the field they concern (InvalidInput).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


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


class AlreadyExists(InvalidInput):
    """Creating something whose name is taken (SES: AlreadyExistsException)."""


class LimitExceeded(InvalidInput):
    """Creating one more of something a project has the documented maximum of (SES:
    LimitExceededException)."""


class PayloadTooLarge(InvalidInput):
    """A request body exceeds the limit of its endpoint (HTTP 413); `limit` in bytes."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message, "body")
        self.limit = limit


class RefusalKind(StrEnum):
    """Why a door or the pipeline refuses. Add a kind here and a rendering at every edge."""

    AUTH_REQUIRED = "auth_required"  # no AUTH and no IP credential
    AUTH_INVALID = "auth_invalid"  # wrong user name or password, unknown or revoked key
    AUTH_THROTTLED = "auth_throttled"  # too many failed attempts from this client
    IDENTITY_NOT_VERIFIED = "identity_not_verified"  # may not send as this address
    RELAY_DENIED = "relay_denied"  # a recipient this door does not take mail for
    DESTINATION_NOT_ALLOWED = "destination_not_allowed"  # IP literal, no domain, private name
    UNKNOWN_RECIPIENT = "unknown_recipient"  # no such mailbox here
    DAILY_QUOTA = "daily_quota"  # the project's rolling 24-hour quota is used up
    RATE_LIMIT = "rate_limit"  # the project's per-second sending rate is used up
    CONTENT_INVALID = "content_invalid"  # headers or body break the rules (RFC 5322)
    NOT_SIGNABLE = "not_signable"  # the message cannot be DKIM-signed
    TOO_LARGE = "too_large"  # over the message size limit
    PROJECT_GONE = "project_gone"  # the credential's project no longer exists
    TEMPORARY_FAILURE = "temporary_failure"  # something failed on our side; try again
    STORAGE_UNAVAILABLE = "storage_unavailable"  # the store refuses writes (disk, database)
    SERVER_BUSY = "server_busy"  # the server's memory for message data is spent for now
    INJECTED = "injected"  # an error injected on purpose (Chaos); its reply code is chosen
    SENDING_PAUSED = "sending_paused"  # the reputation guard paused the project's sending
    ACCOUNT_SUSPENDED = "account_suspended"  # an admin suspended the project's sending


TEMPORARY_KINDS = frozenset(
    (
        RefusalKind.AUTH_THROTTLED,
        RefusalKind.DAILY_QUOTA,
        RefusalKind.RATE_LIMIT,
        RefusalKind.PROJECT_GONE,
        RefusalKind.TEMPORARY_FAILURE,
        RefusalKind.STORAGE_UNAVAILABLE,
        RefusalKind.SERVER_BUSY,
    )
)


class Refusal(PostroomError):
    """A door or the pipeline refuses what a client asked for.

    `detail` is the sentence shown to the client (the SMTP reply text, the HTTP error);
    `temporary` (default: by kind) says whether the same request may succeed later; `field`
    optionally names the part of the request at fault (From, Sender, body, ...);
    `retry_after` optionally says in how many seconds trying again makes sense; `code`
    is an SMTP reply code chosen on purpose (an INJECTED refusal), which the SMTP edge sends
    as it is."""

    def __init__(
        self,
        kind: RefusalKind,
        detail: str,
        *,
        temporary: bool | None = None,
        field: str | None = None,
        retry_after: float | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.kind = kind
        self.detail = detail
        self.temporary = kind in TEMPORARY_KINDS if temporary is None else temporary
        self.field = field
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"Refusal({self.kind.value}, {self.detail!r}, temporary={self.temporary})"


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


class LinkUnreachable(PostroomError):
    """The link check could not get an HTTP status for a URL; the message says why (refused
    address, connection failure, malformed answer, timeout)."""
