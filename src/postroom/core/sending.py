"""Sending over HTTP: email templates, idempotency records and SES access keys, and their port.

A template is stored per project under a name, in versions: every update adds a version, the
newest one is used unless a send names another. An idempotency record remembers the first
answer to a native send request for 24 hours. An SES access key pair is a public key id and a
secret that must be kept (sealed, storage/sealing.py) because AWS Signature Version 4 needs
the secret itself to check a signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Template:
    project_id: str
    name: str
    version: int
    subject: str
    text: str
    html: str
    created: datetime


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What a previous request with the same key did: `status` and `response` are None while
    it is still running."""

    fingerprint: str
    created: datetime
    status: int | None
    response: str | None


@dataclass(frozen=True, slots=True)
class SesKey:
    id: str  # the access key id, public ("AKPR...")
    project_id: str
    sealed_secret: str = field(repr=False)
    created: datetime
    last_used: datetime | None = None


class SendingStore(Protocol):
    """Persistence of templates, idempotency records and SES keys. Synchronous; lookups raise
    core.errors.NotFound, duplicates core.errors.InvalidInput naming the field."""

    def claim_idempotency(
        self,
        project_id: str,
        key: str,
        fingerprint: str,
        now: datetime,
        since: datetime,
        stale: datetime | None = None,
    ) -> IdempotencyRecord | None:
        """Record a new request under `key` (None: this caller owns it now) or return the
        record of the earlier one; records created before `since` are replaced, and so are
        unanswered ones created before `stale` (their request died with its process)."""
        ...

    def finish_idempotency(self, project_id: str, key: str, status: int, response: str) -> None: ...
    def release_idempotency(self, project_id: str, key: str) -> None: ...

    def save_template(
        self,
        project_id: str,
        name: str,
        content: tuple[str, str, str],
        now: datetime,
        *,
        create: bool,
        limit: int | None = None,
    ) -> Template:
        """Add a version (subject, text, html) of template `name`: the first one when `create`
        (InvalidInput when it exists), the next one otherwise (NotFound when it does not).
        LimitExceeded when a new name would make the project have more than `limit`."""
        ...

    def get_template(self, project_id: str, name: str, version: int | None = None) -> Template: ...
    def list_templates(self, project_id: str) -> list[Template]: ...
    def delete_template(self, project_id: str, name: str) -> None: ...

    def add_ses_key(self, key: SesKey) -> None: ...
    def ses_key(self, key_id: str) -> SesKey: ...
    def list_ses_keys(self, project_id: str) -> list[SesKey]: ...
    def delete_ses_key(self, project_id: str, key_id: str) -> None: ...
    def touch_ses_key(self, key_id: str, when: datetime) -> None: ...

    def send_points(self, project_id: str, since: datetime, step: int) -> list[tuple[int, int]]:
        """Recipients accepted since `since`, summed per `step` seconds: (start second,
        count) in time order (the send counters the quotas use)."""
        ...
