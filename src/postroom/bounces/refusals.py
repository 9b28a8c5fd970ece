"""Postroom's own refusal kinds (core/errors.py) in the bounce vocabulary: the reason, and
whether the failure is hard, as a bounce of the same kind from another server would be read.
Events and webhooks report Postroom's refusals and remote bounces alike."""

from __future__ import annotations

from postroom.bounces.reasons import is_hard
from postroom.core.errors import TEMPORARY_KINDS, RefusalKind

REASONS: dict[RefusalKind, str] = {
    RefusalKind.AUTH_REQUIRED: "authfailure",
    RefusalKind.AUTH_INVALID: "authfailure",
    RefusalKind.AUTH_THROTTLED: "speeding",
    RefusalKind.IDENTITY_NOT_VERIFIED: "rejected",  # the sender is refused
    RefusalKind.RELAY_DENIED: "norelaying",
    RefusalKind.DESTINATION_NOT_ALLOWED: "hostunknown",
    RefusalKind.UNKNOWN_RECIPIENT: "userunknown",
    RefusalKind.DAILY_QUOTA: "exceedlimit",
    RefusalKind.RATE_LIMIT: "speeding",
    RefusalKind.CONTENT_INVALID: "notcompliantrfc",
    RefusalKind.NOT_SIGNABLE: "securityerror",
    RefusalKind.TOO_LARGE: "mesgtoobig",
    RefusalKind.PROJECT_GONE: "rejected",
    RefusalKind.TEMPORARY_FAILURE: "systemerror",
    RefusalKind.STORAGE_UNAVAILABLE: "systemfull",
    RefusalKind.SERVER_BUSY: "systemfull",
    RefusalKind.SENDING_PAUSED: "rejected",  # the sender is refused
    RefusalKind.ACCOUNT_SUSPENDED: "rejected",
    RefusalKind.INJECTED: "undefined",
}


def refusal_reason(kind: RefusalKind) -> tuple[str, bool]:
    """(reason, hard) of a refusal of this kind."""
    reason = REASONS[kind]
    status = "4.0.0" if kind in TEMPORARY_KINDS else "5.0.0"
    return reason, is_hard(reason, status)
