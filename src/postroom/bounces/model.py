"""What a bounce, complaint or auto-reply says, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ReportKind = Literal["bounce", "delay", "delivery", "complaint", "autoreply"]

# Reasons (the vocabulary bounce processors share): why a recipient was not reached.
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient a report speaks of.

    `status` is the enhanced status code (RFC 3463) where one is known, `reply_code` the SMTP
    reply code found in the diagnostic ("" if none), `reason` the classification, `hard`
    whether the address should not be tried again (a permanent failure of the address itself).
    """

    address: str
    action: str = ""  # failed, delayed, delivered, relayed, expanded ("" when not said)
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    reason: str = ""
    hard: bool = False
    remote_mta: str = ""
    feedback_type: str = ""  # complaints: abuse, fraud, virus, auth-failure, not-spam, other


@dataclass(frozen=True, slots=True)
class Report:
    kind: ReportKind
    recipients: tuple[Recipient, ...]
    reporting_mta: str = ""
    original_message_id: str = ""
    original_from: str = ""
    original_subject: str = ""
    user_agent: str = ""  # complaints
    source_ip: str = ""  # complaints
    arrival_date: str = ""  # complaints
