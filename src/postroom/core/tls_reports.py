"""The vocabulary of SMTP TLS Reporting (RFC 8460), shared by the delivery worker, which
counts sessions, and the store, which adds them up (delivery/tls_reports.py)."""

from __future__ import annotations

from dataclasses import dataclass

SUCCESS = "success"
RESULT_TYPES = (
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
)


@dataclass(frozen=True, slots=True)
class Session:
    """The key of one count: one policy domain's sessions of one day with one outcome."""

    day: str  # YYYY-MM-DD (UTC)
    domain: str
    policy_type: str  # "sts" or "no-policy-found"
    policy_id: str  # the MTA-STS policy's id ("" without one)
    mx_host: str
    sending_ip: str
    receiving_ip: str
    result_type: str  # "success" or an RFC 8460 result type
