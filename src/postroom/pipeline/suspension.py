"""An administrator's suspension of a project's sending (PlatformService.suspend_project), as
the refusal every door gives: the SMTP submission door at MAIL (and the pipeline again for the
message itself), the native send API (403), the SES-compatible API (AccountSuspendedException).
Any mode: a capture project suspended stops taking submitted mail too."""

from __future__ import annotations

from postroom.core.errors import Refusal, RefusalKind
from postroom.core.platform import Project

ACCOUNT_SUSPENDED = "Account suspended: an administrator has suspended sending for this project"


def suspension_refusal(project: Project) -> Refusal | None:
    """The refusal of the project's messages while it is suspended, naming the admin's reason
    when one was given; None when it may send."""
    if project.suspended is None:
        return None
    detail = ACCOUNT_SUSPENDED
    if project.suspend_reason:
        detail += f" ({project.suspend_reason})"
    return Refusal(RefusalKind.ACCOUNT_SUSPENDED, detail)
