"""The platform service layer: projects, credentials, API keys, admin users, sending domains
with DNS verification and DKIM rotation, verified addresses and quota usage.

The names below are loaded on first use, so that the command line's parser (which imports
`postroom.platform.commands`) stays quick to start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from postroom.platform.checks import check_once
    from postroom.platform.domains import DomainReport, DomainSettings, KeyRecord, RecordStatus
    from postroom.platform.service import (
        UNSET,
        IssuedApiKey,
        IssuedSmtpCredential,
        PlatformService,
        Usage,
    )

_EXPORTS = {
    "UNSET": "service",
    "DomainReport": "domains",
    "DomainSettings": "domains",
    "IssuedApiKey": "service",
    "IssuedSmtpCredential": "service",
    "KeyRecord": "domains",
    "PlatformService": "service",
    "RecordStatus": "domains",
    "Usage": "service",
    "check_once": "checks",
}

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
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'postroom.platform' has no attribute {name!r}")
    return getattr(importlib.import_module(f"postroom.platform.{module}"), name)
