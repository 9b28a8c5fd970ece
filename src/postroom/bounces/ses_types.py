"""A classified recipient as SES names it: bounceType (Permanent, Transient, Undetermined) and
bounceSubType, for webhook payloads that follow SES's event fields.

Permanent: the address will not work (`hard`); `NoEmail` when it or its domain does not exist,
`General` otherwise. Transient: `MailboxFull`, `MessageTooLarge`, `ContentRejected` (spam,
virus, policy, content), `AttachmentRejected`, else `General`. A reason nothing can be said
of (`undefined`, `onhold`) is `Undetermined`. Suppressed recipients (never attempted) are
`Permanent`/`Suppressed` or `OnAccountSuppressionList` for the account-wide list.
"""

from __future__ import annotations

_NO_EMAIL = frozenset({"userunknown", "hostunknown", "hasmoved"})
_TRANSIENT = {
    "mailboxfull": "MailboxFull",
    "mesgtoobig": "MessageTooLarge",
    "exceedlimit": "MessageTooLarge",
    "spamdetected": "ContentRejected",
    "virusdetected": "ContentRejected",
    "contenterror": "ContentRejected",
    "policyviolation": "ContentRejected",
    "notcompliantrfc": "ContentRejected",
}


def bounce_type(reason: str, hard: bool, *, attachment: bool = False) -> tuple[str, str]:
    """(bounceType, bounceSubType) of one bounced recipient."""
    if reason in ("undefined", "onhold", ""):
        return ("Undetermined", "Undetermined")
    if hard:
        return ("Permanent", "NoEmail" if reason in _NO_EMAIL else "General")
    if attachment and reason in ("virusdetected", "policyviolation", "contenterror"):
        return ("Transient", "AttachmentRejected")
    return ("Transient", _TRANSIENT.get(reason, "General"))


def suppressed_type(scope: str) -> tuple[str, str]:
    """(bounceType, bounceSubType) of a recipient left out by a suppression list."""
    return ("Permanent", "OnAccountSuppressionList" if scope == "account" else "Suppressed")
