"""Refusals rendered as SMTP replies: code and enhanced status code chosen by kind (RFC 5321,
RFC 3463), the refusal's detail as the text.

A temporary refusal of a kind whose reply is permanent (or the other way round) keeps the
enhanced code's subject and detail and takes the class the flag asks for (451 4.x.x, 554 5.x.x).
"""

from __future__ import annotations

from postroom.core.errors import Refusal, RefusalKind
from postroom.smtp.replies import reply

REPLIES: dict[RefusalKind, tuple[int, str]] = {
    RefusalKind.AUTH_REQUIRED: (530, "5.7.0"),
    RefusalKind.AUTH_INVALID: (535, "5.7.8"),
    RefusalKind.AUTH_THROTTLED: (454, "4.7.0"),
    RefusalKind.IDENTITY_NOT_VERIFIED: (554, "5.7.1"),
    RefusalKind.RELAY_DENIED: (550, "5.7.1"),
    RefusalKind.DESTINATION_NOT_ALLOWED: (553, "5.1.2"),
    RefusalKind.UNKNOWN_RECIPIENT: (550, "5.1.1"),
    RefusalKind.DAILY_QUOTA: (454, "4.7.0"),
    RefusalKind.RATE_LIMIT: (454, "4.7.0"),
    RefusalKind.CONTENT_INVALID: (550, "5.6.0"),
    RefusalKind.NOT_SIGNABLE: (554, "5.6.0"),
    RefusalKind.TOO_LARGE: (552, "5.3.4"),
    RefusalKind.PROJECT_GONE: (451, "4.3.0"),
    RefusalKind.TEMPORARY_FAILURE: (451, "4.3.0"),
    RefusalKind.STORAGE_UNAVAILABLE: (451, "4.3.0"),
    RefusalKind.SERVER_BUSY: (452, "4.3.1"),
    RefusalKind.SENDING_PAUSED: (554, "5.7.1"),
    RefusalKind.ACCOUNT_SUSPENDED: (550, "5.7.1"),  # 550: a reply MAIL may give (RFC 5321)
    RefusalKind.INJECTED: (451, "4.0.0"),  # the refusal's own code, when it has one
}


def reply_code(refusal: Refusal) -> tuple[int, str]:
    """The reply code and enhanced status code for `refusal`."""
    if refusal.code is not None:
        return refusal.code, f"{refusal.code // 100}.0.0"
    code, enhanced = REPLIES[refusal.kind]
    if refusal.temporary and code >= 500:
        return 451, "4" + enhanced[1:]
    if not refusal.temporary and code < 500:
        return 554, "5" + enhanced[1:]
    return code, enhanced


def render(refusal: Refusal) -> bytes:
    """The whole reply line(s) for `refusal`."""
    code, enhanced = reply_code(refusal)
    return reply(code, enhanced, refusal.detail)
