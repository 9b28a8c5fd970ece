"""The admin page of capture routes (`/admin/capture-routes`): the rules that send mail of the
capture door into a capture project by SMTP user name or recipient, in the order tried
(`--capture-route` ones first, shown but not changeable here), a form to add one and a Delete
button per stored rule (CSRF-checked forms, like every admin form)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from postroom.core.errors import InvalidInput, NotFound
from postroom.platform.capture_routes import CaptureRouteService
from postroom.web.admin.routes import AdminPages, Form, _values, field, read_form

PATH = "/admin/capture-routes"
DONE = {
    "added": "Capture route added: the capture door uses it from the next message on.",
    "deleted": "Capture route deleted.",
}


class CaptureRoutePages:
    def __init__(self, pages: AdminPages, service: CaptureRouteService) -> None:
        self.pages = pages
        self.service = service

    async def page(
        self, request: Request, error: InvalidInput | None = None, form: Form | None = None
    ) -> Response:
        pages = self.pages
        found = await pages.run(self.service.list)
        projects = await pages.run(pages.service.list_projects)
        return await pages.render(
            request,
            "capture_routes.html",
            400 if error else 200,
            options=found.options,
            stored=found.stored,
            project_options=[
                (p.id, p.name if p.name == p.id else f"{p.name} ({p.id})")
                for p in projects
                if p.mode == "capture"
            ],
            names={p.id: p.name for p in projects},
            done_notice=DONE.get(request.query_params.get("done", "")),
            error=error,
            form=_values(form),
        )

    async def add(self, request: Request) -> Response:
        form = await read_form(request)
        try:
            await self.pages.run(
                self.service.add,
                field(form, "kind"),
                field(form, "pattern"),
                field(form, "project"),
            )
        except InvalidInput as exc:
            return await self.page(request, exc, form)
        return self.pages.redirect(f"{PATH}?done=added")

    async def delete(self, request: Request) -> Response:
        raw = request.path_params["id"]
        try:
            if not raw.isdigit() or len(raw) > 18:
                raise NotFound(f"no capture route {raw!r}")
            await self.pages.run(self.service.delete, int(raw))
        except NotFound as exc:
            return await self.pages.error_page(request, 404, str(exc).capitalize() + ".")
        return self.pages.redirect(f"{PATH}?done=deleted")


def capture_route_routes(pages: AdminPages, service: CaptureRouteService) -> list[BaseRoute]:
    handlers = CaptureRoutePages(pages, service)
    return [
        Route(PATH, handlers.page, methods=["GET", "HEAD"]),
        Route(PATH, handlers.add, methods=["POST"]),
        Route(PATH + "/{id}/delete", handlers.delete, methods=["POST"]),
    ]
