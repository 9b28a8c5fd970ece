"""Managing a project's webhooks (the API, the CLI and the admin pages share this).

The secret is generated here (events/signing.py: `whsec_` and 32 random bytes), returned once,
in the answer that creates the webhook or rotates its secret, and stored sealed (AES-GCM under
the data directory's sealing.key: storage/sealing.py), never in clear and never shown again.
Like an SES access key's secret: whoever lost it rotates it (the old one stops signing at once).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput
from postroom.core.ids import new_id
from postroom.core.webhooks import (
    OutboxItem,
    RequestRecord,
    Webhook,
    check_types,
    check_url,
)
from postroom.events.signing import new_secret
from postroom.events.webhook_worker import secret_context
from postroom.storage.sealing import SecretBox
from postroom.storage.webhooks import SqlWebhookStore

MAX_DESCRIPTION = 500
FIELDS = ("url", "types", "enabled", "include_headers", "description")


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", name)
    return value


def _description(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("description must be a string", "description")
    if len(value) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description is longer than {MAX_DESCRIPTION} characters", "description"
        )
    return value


class WebhookService:
    def __init__(
        self,
        store: SqlWebhookStore,
        box: SecretBox,
        clock: Clock,
        allow_private: bool = False,
        project_exists: Callable[[str], object] | None = None,
    ) -> None:
        """`project_exists(project)` raises NotFound for an unknown project (reads of an
        unknown project's webhooks are a 404, not an empty list)."""
        self.store = store
        self.box = box
        self.clock = clock
        self.allow_private = allow_private
        self._project_exists = project_exists

    def _project(self, project: str) -> None:
        if self._project_exists is not None:
            self._project_exists(project)

    def create(self, project: str, body: dict[str, Any]) -> tuple[Webhook, str]:
        """A new webhook from `body` (url, types, and optionally enabled, include_headers,
        description) and its secret (returned only here)."""
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", unknown[0])
        self._project(project)
        now = self.clock.now()
        hook = Webhook(
            id=new_id(now),
            project=project,
            url=check_url(body.get("url"), self.allow_private),
            types=check_types(body.get("types")),
            enabled=_bool(body.get("enabled", True), "enabled"),
            include_headers=_bool(body.get("include_headers", False), "include_headers"),
            created=now,
            description=_description(body.get("description", "")),
        )
        secret = new_secret()
        stored = self.store.create(hook, self.box.seal(secret, secret_context(hook.id)))
        return stored, secret

    def list(self, project: str) -> builtins.list[Webhook]:
        self._project(project)
        return self.store.list(project)

    def get(self, project: str, webhook_id: str) -> Webhook:
        self._project(project)
        return self.store.get(project, webhook_id)

    def update(self, project: str, webhook_id: str, body: dict[str, Any]) -> Webhook:
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", unknown[0])
        changes: dict[str, Any] = {}
        if "url" in body:
            changes["url"] = check_url(body["url"], self.allow_private)
        if "types" in body:
            changes["types"] = check_types(body["types"])
        for name in ("enabled", "include_headers"):
            if name in body:
                changes[name] = _bool(body[name], name)
        if "description" in body:
            changes["description"] = _description(body["description"])
        self._project(project)
        return self.store.update(project, webhook_id, **changes)

    def rotate_secret(self, project: str, webhook_id: str) -> tuple[Webhook, str]:
        """A new secret for the webhook (returned only here); the old one is forgotten."""
        self._project(project)
        self.store.get(project, webhook_id)
        secret = new_secret()
        sealed = self.box.seal(secret, secret_context(webhook_id))
        return self.store.update(project, webhook_id, secret=sealed), secret

    def delete(self, project: str, webhook_id: str) -> None:
        self._project(project)
        self.store.delete(project, webhook_id)

    def requests(
        self, project: str, webhook_id: str, limit: int = 50, before: int | None = None
    ) -> builtins.list[RequestRecord]:
        self._project(project)
        return self.store.requests(project, webhook_id, limit, before)

    def resend(self, project: str, webhook_id: str, request_id: int) -> OutboxItem:
        self._project(project)
        return self.store.resend(project, webhook_id, request_id, self.clock.now())

    def counts(self, project: str, webhook_id: str) -> dict[str, int]:
        self._project(project)
        self.store.get(project, webhook_id)
        return self.store.counts(project, webhook_id)


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def webhook_view(hook: Webhook, secret: str | None = None) -> dict[str, Any]:
    """The JSON shape of a webhook; `secret` only in the answer that made it."""
    out: dict[str, Any] = {
        "id": hook.id,
        "project": hook.project,
        "url": hook.url,
        "types": list(hook.types),
        "enabled": hook.enabled,
        "include_headers": hook.include_headers,
        "description": hook.description,
        "created": _time(hook.created),
        "failing_since": _time(hook.failing_since),
        "disabled_reason": hook.disabled_reason,
    }
    if secret is not None:
        out["secret"] = secret
    return out


def request_view(record: RequestRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "event_id": record.event_id,
        "outbox_id": record.outbox_id,
        "time": _time(record.time),
        "status_code": record.status_code,
        "latency_ms": record.latency_ms,
        "succeeded": record.succeeded,
        "error": record.error,
        "request_body": record.request_body,
        "response_body": record.response_body,
    }


__all__ = ["WebhookService", "request_view", "webhook_view"]
