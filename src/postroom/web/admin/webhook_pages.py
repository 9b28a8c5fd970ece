"""The admin pages' Webhooks tab of a project: its webhooks (a warning on those Postroom
disabled, and on those failing now), a form that adds one (its secret shown once, on the page
that follows), and a page per webhook with its latest requests (status, latency, bodies), each
with a Resend button, and its actions (enable, disable, rotate the secret, delete). Forms post
with the CSRF token like every admin form; the project comes from the path only, and the
service narrows every webhook lookup to it (events/webhook_service.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from postroom.core.errors import InvalidInput
from postroom.core.webhooks import WEBHOOK_EVENT_TYPES
from postroom.events.webhook_service import WebhookService
from postroom.web.admin.routes import AdminPages, Form, _values, field, read_form

ACTIONS = ("enable", "disable", "rotate", "delete")
DONE = {
    "enabled": "Webhook enabled.",
    "disabled": "Webhook disabled.",
    "deleted": "Webhook deleted.",
    "resent": "The request is queued to be sent again.",
}
DEFAULT_TYPES = ("delivery", "bounce", "complaint")


class WebhookPages:
    def __init__(self, pages: AdminPages, webhooks: WebhookService) -> None:
        self.pages = pages
        self.webhooks = webhooks

    def _base(self, project: str) -> str:
        return f"/admin/projects/{quote(project)}/webhooks"

    async def page(
        self, request: Request, error: InvalidInput | None = None, form: Form | None = None
    ) -> Response:
        pages = self.pages
        project = await pages._project(request)
        hooks = await pages.run(self.webhooks.list, project.id)
        chosen = form.get("types", []) if form is not None else list(DEFAULT_TYPES)
        return await pages.render(
            request,
            "webhooks.html",
            400 if error else 200,
            project=project,
            tab="webhooks",
            webhooks=hooks,
            types=WEBHOOK_EVENT_TYPES,
            chosen=chosen,
            done_notice=DONE.get(request.query_params.get("done", "")),
            error=error,
            form=_values(form),
        )

    async def create(self, request: Request) -> Response:
        pages = self.pages
        project = await pages._project(request)
        form = await read_form(request)
        body: dict[str, Any] = {
            "url": field(form, "url"),
            "types": form.get("types", []),
            "include_headers": field(form, "include_headers") == "on",
            "description": field(form, "description"),
        }
        try:
            hook, secret = await pages.run(self.webhooks.create, project.id, body)
        except InvalidInput as exc:
            return await self.page(request, exc, form)
        return await self._secret(request, project, hook, secret, 201)

    async def _secret(
        self, request: Request, project: Any, hook: Any, secret: str, status: int
    ) -> Response:
        return await self.pages.render(
            request,
            "webhook_secret.html",
            status,
            project=project,
            tab="webhooks",
            webhook=hook,
            secret=secret,
            back=f"{self._base(project.id)}/{quote(hook.id)}",
        )

    async def one(self, request: Request) -> Response:
        pages = self.pages
        project = await pages._project(request)
        hook_id = request.path_params["webhook"]
        hook = await pages.run(self.webhooks.get, project.id, hook_id)  # NotFound: 404
        counts = await pages.run(self.webhooks.counts, project.id, hook_id)
        requests = await pages.run(self.webhooks.requests, project.id, hook_id, 50)
        return await pages.render(
            request,
            "webhook.html",
            project=project,
            tab="webhooks",
            webhook=hook,
            counts=counts,
            requests=requests,
            done_notice=DONE.get(request.query_params.get("done", "")),
        )

    async def act(self, request: Request) -> Response:
        pages = self.pages
        project = await pages._project(request)
        hook_id = request.path_params["webhook"]
        form = await read_form(request)
        action = field(form, "action")
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action!r}", "action")
        base = self._base(project.id)
        if action == "delete":
            await pages.run(self.webhooks.delete, project.id, hook_id)
            return pages.redirect(f"{base}?done=deleted")
        if action == "rotate":
            hook, secret = await pages.run(self.webhooks.rotate_secret, project.id, hook_id)
            return await self._secret(request, project, hook, secret, 200)
        enabled = action == "enable"
        await pages.run(self.webhooks.update, project.id, hook_id, {"enabled": enabled})
        done = "enabled" if enabled else "disabled"
        return pages.redirect(f"{base}/{quote(hook_id)}?done={done}")

    async def resend(self, request: Request) -> Response:
        pages = self.pages
        project = await pages._project(request)
        hook_id = request.path_params["webhook"]
        form = await read_form(request)
        text = field(form, "request")
        if not text.isdigit():
            raise InvalidInput("request must be a request id", "request")
        await pages.run(self.webhooks.resend, project.id, hook_id, int(text))
        return pages.redirect(f"{self._base(project.id)}/{quote(hook_id)}?done=resent")


def webhook_routes(pages: AdminPages, webhooks: WebhookService) -> list[BaseRoute]:
    handlers = WebhookPages(pages, webhooks)
    base = "/admin/projects/{project}/webhooks"
    return [
        Route(base, handlers.page, methods=["GET", "HEAD"]),
        Route(base, handlers.create, methods=["POST"]),
        Route(base + "/{webhook}", handlers.one, methods=["GET", "HEAD"]),
        Route(base + "/{webhook}/act", handlers.act, methods=["POST"]),
        Route(base + "/{webhook}/resend", handlers.resend, methods=["POST"]),
    ]
