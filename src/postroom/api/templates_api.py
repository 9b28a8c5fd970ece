"""Templates in the management API: `/api/v2/projects/{project}/templates`.

`GET` lists the newest version of each; `POST {name, subject, text, html}` creates version 1;
`GET .../{name}` reads the newest (`?version=N` an older one); `PUT .../{name}` with the same
fields adds a version; `DELETE .../{name}` removes every version; `POST .../{name}/preview
{data, version?}` renders without sending. A send names a template with
`"template": {"id": NAME, "version"?: N, "data": {...}}` (`template_fields`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.mailpit import json_body
from postroom.core.errors import InvalidInput
from postroom.core.sending import Template
from postroom.platform.email_templates import TemplateService, check_name

PREFIX = "/api/v2/projects/{project}/templates"


def view(template: Template) -> dict[str, Any]:
    return {
        "project": template.project_id,
        "name": template.name,
        "version": template.version,
        "subject": template.subject,
        "text": template.text,
        "html": template.html,
        "created": template.created.isoformat().replace("+00:00", "Z"),
    }


def _version(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{field} must be a positive integer", field)
    return value


def _content(body: dict[str, Any]) -> tuple[str, str, str]:
    values = []
    for part in ("subject", "text", "html"):
        value = body.get(part, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidInput(f"{part} must be a string", part)
        values.append(value)
    unknown = set(body) - {"name", "subject", "text", "html"}
    if unknown:
        raise InvalidInput(f"unknown field {sorted(unknown)[0]!r}", sorted(unknown)[0])
    return values[0], values[1], values[2]


async def template_fields(
    service: TemplateService, project: str, body: dict[str, Any]
) -> dict[str, Any]:
    """A send request with `template` turned into one with subject, text and html."""
    spec = body["template"]
    if not isinstance(spec, dict):
        raise InvalidInput("template must be an object with id, version and data", "template")
    unknown = set(spec) - {"id", "version", "data"}
    if unknown:
        raise InvalidInput(f"template has an unknown field {sorted(unknown)[0]!r}", "template")
    for part in ("subject", "text", "html", "raw"):
        if body.get(part) is not None:
            raise InvalidInput(f"{part} cannot be given with a template", part)
    name = check_name(spec.get("id"), "template.id")
    version = _version(spec.get("version"), "template.version")
    rendered = await service.render(project, name, spec.get("data", {}), version)
    fields = {k: v for k, v in body.items() if k != "template"}
    fields.update(subject=rendered.subject, text=rendered.text, html=rendered.html)
    return fields


def routes(service: TemplateService) -> list[BaseRoute]:
    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def p(request: Request) -> str:
        value: str = request.path_params["project"]
        return value

    def n(request: Request) -> str:
        value: str = request.path_params["name"]
        return value

    async def collection(request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            name = check_name(body.get("name"))
            template = await run(service.save, p(request), name, *_content(body), create=True)
            return JSONResponse(view(template), status_code=201)
        items = await run(service.list, p(request))
        return JSONResponse({"project": p(request), "templates": [view(t) for t in items]})

    async def member(request: Request) -> Response:
        if request.method == "PUT":
            body = await json_body(request)
            if "name" in body and body["name"] != n(request):
                raise InvalidInput("name cannot be changed", "name")
            template = await run(
                service.save, p(request), n(request), *_content(body), create=False
            )
            return JSONResponse(view(template))
        if request.method == "DELETE":
            await run(service.delete, p(request), n(request))
            return JSONResponse({"deleted": n(request)})
        version = _version(request.query_params.get("version"), "version")
        return JSONResponse(view(await run(service.get, p(request), n(request), version)))

    async def preview(request: Request) -> Response:
        body = await json_body(request)
        unknown = set(body) - {"data", "version"}
        if unknown:
            raise InvalidInput(f"unknown field {sorted(unknown)[0]!r}", sorted(unknown)[0])
        version = _version(body.get("version"), "version")
        rendered = await service.render(
            p(request), n(request), body.get("data", {}), version, field=""
        )
        return JSONResponse(
            {
                "name": rendered.template.name,
                "version": rendered.template.version,
                "subject": rendered.subject,
                "text": rendered.text,
                "html": rendered.html,
            }
        )

    return [
        Route(PREFIX, collection, methods=["GET", "POST"]),
        Route(f"{PREFIX}/{{name}}", member, methods=["GET", "PUT", "DELETE"]),
        Route(f"{PREFIX}/{{name}}/preview", preview, methods=["POST"]),
    ]
