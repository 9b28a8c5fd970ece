"""The platform service layer: projects, credentials, API keys, admin users, sending domains
with DNS verification and DKIM rotation, verified addresses and quota usage."""

from postroom.platform.checks import check_once, run_domain_checks
from postroom.platform.domains import DomainReport, DomainSettings, KeyRecord, RecordStatus
from postroom.platform.service import (
    UNSET,
    IssuedApiKey,
    IssuedSmtpCredential,
    PlatformService,
    Usage,
)

__all__ = [
    "UNSET",
    "DomainReport",
    "DomainSettings",
    "IssuedApiKey",
    "IssuedSmtpCredential",
    "KeyRecord",
    "PlatformService",
    "RecordStatus",
    "Usage",
    "check_once",
    "run_domain_checks",
]
