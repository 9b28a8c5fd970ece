"""Builds the sending API's parts (native send, templates) from what the composition root
has: the API context, the submission steps and the platform store."""

from __future__ import annotations

from typing import Any

from postroom.api.context import ApiContext
from postroom.api.idempotency import Idempotency
from postroom.api.native_send import SendingContext, routes
from postroom.api.ses_setup import key_routes, ses_key_service
from postroom.api.templates_api import routes as template_routes
from postroom.api.templates_api import template_fields
from postroom.core.clock import Clock
from postroom.core.platform import PlatformStore
from postroom.pipeline.submission import SubmissionSteps
from postroom.platform.email_templates import TemplateService
from postroom.storage.platform_store import SqlPlatformStore
from postroom.storage.sending_store import SqlSendingStore


def sending_store(platform: PlatformStore) -> SqlSendingStore | None:
    return SqlSendingStore(platform) if isinstance(platform, SqlPlatformStore) else None


def sending_routes(
    context: ApiContext, steps: SubmissionSteps, platform: PlatformStore
) -> list[Any]:
    store = sending_store(platform)
    templates = (
        TemplateService(store, context.clock, context.config.max_templates)
        if store is not None
        else None
    )

    async def render(project: str, body: dict[str, Any]) -> dict[str, Any]:
        assert templates is not None
        return await template_fields(templates, project, body)

    ctx = SendingContext(
        config=context.config,
        clock=context.clock,
        door=context.http_send,
        directory=steps.directory,
        routed=steps.routed,
        idempotency=Idempotency(store, context.clock) if store is not None else None,
        render_template=render if templates is not None else None,
    )
    extra: list[Any] = []
    if templates is not None:
        extra += template_routes(templates)
        extra += key_routes(ses_key_service(context.config, platform, context.clock))
    return [*routes(ctx), *extra]


def admin_template_routes(
    pages: Any, platform: PlatformStore, clock: Clock, max_templates: int
) -> list[Any]:
    """The admin pages' Templates tab (web/admin/template_pages.py), on the SQL store."""
    from postroom.web.admin.template_pages import template_routes

    store = sending_store(platform)
    if store is None:
        return []
    return template_routes(pages, TemplateService(store, clock, max_templates))
