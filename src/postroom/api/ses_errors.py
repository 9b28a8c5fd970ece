"""Errors of the SES-compatible API, named and shaped as Amazon SES answers them, so that AWS
SDKs raise the exception classes applications already catch.

`SesError(code, message, status)` is one such error. `from_postroom` maps Postroom's errors
(refusals from the pipeline, bad input, not found) onto SES's names for API v2 (rest-json:
`x-amzn-ErrorType` header and `{"message"}`) and v1 (query: an XML `ErrorResponse`):

* identity not verified, content invalid, not signable, too large: MessageRejected (400);
  only the envelope sender (FeedbackForwardingEmailAddress, ReturnPath) unverified:
  MailFromDomainNotVerifiedException (400);
* the project's sending paused by the reputation guard: v2 SendingPausedException, v1
  AccountSendingPausedException (400);
* the project's sending suspended by an admin (pipeline/suspension.py): v2
  AccountSuspendedException (400, as botocore's sesv2 model says); v1 has no such error
  (its model knows none), so the closest it documents: AccountSendingPausedException (400);
* daily quota, sending rate: v2 TooManyRequestsException (429), v1 Throttling (400);
* a recipient the MTA never delivers to, bad input: v2 BadRequestException, v1
  InvalidParameterValue (400);
* no such template, identity or configuration set: v2 NotFoundException (404), v1
  TemplateDoesNotExist (400) (a configuration set on send: ConfigurationSetDoesNotExist);
* a name taken: v2 AlreadyExistsException; one more than the documented maximum (100
  configuration sets per project, 10 event destinations per set, max_templates email
  templates and max_identities identities per project, 10,000 each by default, as SES):
  v2 LimitExceededException (v1: AlreadyExists, LimitExceeded);
* storage unavailable, temporary failure: ServiceUnavailable (503).
"""

from __future__ import annotations

from postroom.core.errors import (
    AlreadyExists,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
    PostroomError,
    Refusal,
    RefusalKind,
)

NAMESPACE = "http://ses.amazonaws.com/doc/2010-12-01/"

_REJECTED = frozenset(
    {
        RefusalKind.IDENTITY_NOT_VERIFIED,
        RefusalKind.CONTENT_INVALID,
        RefusalKind.NOT_SIGNABLE,
        RefusalKind.TOO_LARGE,
        RefusalKind.RELAY_DENIED,
    }
)
_THROTTLED = frozenset({RefusalKind.DAILY_QUOTA, RefusalKind.RATE_LIMIT})


class SesError(PostroomError):
    def __init__(
        self, code: str, message: str, status: int = 400, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def sender_fault(self) -> bool:
        return self.status < 500


def from_postroom(exc: PostroomError, version: int) -> SesError:
    """The SES error for one of Postroom's (version 1 or 2 of the API)."""
    if isinstance(exc, SesError):
        return exc
    if isinstance(exc, Refusal):
        if exc.kind == RefusalKind.IDENTITY_NOT_VERIFIED and exc.field == "MAIL FROM":
            return SesError("MailFromDomainNotVerifiedException", exc.detail)
        if exc.kind in _REJECTED:
            return SesError("MessageRejected", exc.detail)
        if exc.kind == RefusalKind.ACCOUNT_SUSPENDED:
            code = "AccountSuspendedException" if version == 2 else "AccountSendingPausedException"
            return SesError(code, exc.detail, 400)
        if exc.kind == RefusalKind.SENDING_PAUSED:
            code = "SendingPausedException" if version == 2 else "AccountSendingPausedException"
            return SesError(code, exc.detail, 400)
        if exc.kind in _THROTTLED:
            if version == 1:
                return SesError("Throttling", exc.detail, 400, exc.retry_after)
            return SesError("TooManyRequestsException", exc.detail, 429, exc.retry_after)
        if exc.kind in (RefusalKind.DESTINATION_NOT_ALLOWED, RefusalKind.UNKNOWN_RECIPIENT):
            code = "InvalidParameterValue" if version == 1 else "BadRequestException"
            return SesError(code, exc.detail)
        return SesError("ServiceUnavailable", exc.detail, 503, exc.retry_after)
    if isinstance(exc, PayloadTooLarge):
        return SesError("MessageRejected", str(exc))
    if isinstance(exc, NotFound):
        message = str(exc) or "not found"
        if version == 1:
            code = "TemplateDoesNotExist" if "template" in message else "InvalidParameterValue"
            return SesError(code, message)
        return SesError("NotFoundException", message, 404)
    if isinstance(exc, AlreadyExists):
        return SesError("AlreadyExists" if version == 1 else "AlreadyExistsException", str(exc))
    if isinstance(exc, LimitExceeded):
        return SesError("LimitExceeded" if version == 1 else "LimitExceededException", str(exc))
    if isinstance(exc, InvalidInput):
        message = str(exc)
        if exc.field:
            message = f"{message} ({exc.field})" if exc.field not in message else message
        return SesError("InvalidParameterValue" if version == 1 else "BadRequestException", message)
    return SesError("ServiceUnavailable", "storage unavailable, try again", 503, 5)
