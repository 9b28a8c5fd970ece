"""The admin pages' Templates tab of a project: its email templates (newest versions), a form
that creates one or adds a version, and a preview that renders a template with sample JSON
data and sends nothing (subject and text as text, the HTML in a sandboxed frame that runs no
script). Forms post with the CSRF token like every admin form; the project comes from the path
only. The same TemplateService serves /api/v2 and the SES API (platform/email_templates.py).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from postroom.core.errors import InvalidInput, NotFound
from postroom.platform.email_templates import Rendered, TemplateService
from postroom.web.admin.routes import AdminPages, Form, _values, field, read_form


def _raw(form: Form, name: str) -> str:
    """A text area's value as typed (not stripped: line breaks matter in a template)."""
    values = form.get(name)
    return values[0].replace("\r\n", "\n") if values else ""


class TemplatePages:
    def __init__(self, pages: AdminPages, templates: TemplateService) -> None:
        self.pages = pages
        self.templates = templates

    async def page(
        self,
        request: Request,
        error: InvalidInput | None = None,
        form: Form | None = None,
        preview: Rendered | None = None,
    ) -> Response:
        pages = self.pages
        project = await pages._project(request)
        items = await pages.run(self.templates.list, project.id)
        values: dict[str, Any] = _values(form)
        if form is not None:
            values.update({k: _raw(form, k) for k in ("subject", "text", "html", "data")})
        chosen = request.query_params.get("edit", "")
        if form is None and chosen:
            try:
                current = await pages.run(self.templates.get, project.id, chosen)
            except (NotFound, InvalidInput):
                current = None
            if current is not None:
                values = {
                    "name": current.name,
                    "subject": current.subject,
                    "text": current.text,
                    "html": current.html,
                }
        done = request.query_params.get("done", "")
        return await pages.render(
            request,
            "templates.html",
            400 if error else 200,
            project=project,
            tab="templates",
            templates=items,
            error=error,
            form=values,
            preview=preview,
            saved=done if done in ("created", "updated") else None,
        )

    async def save(self, request: Request) -> Response:
        pages = self.pages
        project = await pages._project(request)
        form = await read_form(request)
        name = field(form, "name")
        content = (_raw(form, "subject").strip(), _raw(form, "text"), _raw(form, "html"))
        try:
            exists = any(t.name == name for t in await pages.run(self.templates.list, project.id))
            await pages.run(
                lambda: self.templates.save(project.id, name, *content, create=not exists)
            )
        except InvalidInput as exc:
            return await self.page(request, exc, form)
        done = "updated" if exists else "created"
        return pages.redirect(
            f"/admin/projects/{quote(project.id)}/templates?done={done}&edit={quote(name)}"
        )

    async def preview(self, request: Request) -> Response:
        pages = self.pages
        project = await pages._project(request)
        form = await read_form(request)
        try:
            text = _raw(form, "data").strip() or "{}"
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise InvalidInput(f"the sample data is not JSON: {exc}", "data") from None
            name = field(form, "name")
            saved = await pages.run(self.templates.get, project.id, name)
            # The save form shows the template previewed, ready to change.
            form = {
                **form,
                "subject": [saved.subject],
                "text": [saved.text],
                "html": [saved.html],
            }
            rendered = await self.templates.render(project.id, name, data, field="sample")
        except (InvalidInput, NotFound) as exc:
            error = exc if isinstance(exc, InvalidInput) else InvalidInput(str(exc), "name")
            return await self.page(request, error, form)
        return await self.page(request, None, form, rendered)


def template_routes(pages: AdminPages, templates: TemplateService) -> list[BaseRoute]:
    handlers = TemplatePages(pages, templates)
    base = "/admin/projects/{project}/templates"
    return [
        Route(base, handlers.page, methods=["GET", "HEAD"]),
        Route(base, handlers.save, methods=["POST"]),
        Route(base + "/preview", handlers.preview, methods=["POST"]),
    ]
