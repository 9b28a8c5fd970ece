"""The classifier's reasons named as SES names bounces."""

from __future__ import annotations

from postroom.bounces.ses_types import bounce_type, suppressed_type


def test_bounce_types() -> None:
    assert bounce_type("userunknown", True) == ("Permanent", "NoEmail")
    assert bounce_type("notaccept", True) == ("Permanent", "General")
    assert bounce_type("mailboxfull", False) == ("Transient", "MailboxFull")
    assert bounce_type("mesgtoobig", False) == ("Transient", "MessageTooLarge")
    assert bounce_type("spamdetected", False) == ("Transient", "ContentRejected")
    assert bounce_type("virusdetected", False, attachment=True) == (
        "Transient",
        "AttachmentRejected",
    )
    assert bounce_type("blocked", False) == ("Transient", "General")
    assert bounce_type("undefined", False) == ("Undetermined", "Undetermined")
    assert suppressed_type("project") == ("Permanent", "Suppressed")
    assert suppressed_type("account") == ("Permanent", "OnAccountSuppressionList")
