"""The management API, `/api/v2`: projects, SMTP and IP credentials, API keys, sending domains
(records, verification, DKIM rotation), sender addresses (pending until the link or code
mailed to them is used: platform/address_proof.py) and quota usage.

JSON in and out; errors are `{"Error": ..., "Field": ...}` with a 4xx status (the
application's PostroomError handler, api/errors.py). Bodies are the shapes of
postroom.platform.views: DKIM private keys, digests and hashes never appear; an SMTP password
or API key token only in the response that creates it. `GET /api/v2/openapi.json` describes
every endpoint (api/openapi_v2.py).

Authentication (admin session or an API key with the `manage` scope) is put in front of these
routes by whoever mounts them (api/auth.py's AuthGate, which also keeps a key to its own
project); the handlers take the service from the ManagementContext they are built with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api.auth import key_project, open_mode_live_refusal, principal_of
from postroom.api.mailpit import json_body
from postroom.core.errors import InvalidInput
from postroom.platform import views
from postroom.platform.address_mail import AddressVerifier
from postroom.platform.service import UNSET, PlatformService

__all__ = ["PREFIX", "ManagementContext", "routes"]

PREFIX = "/api/v2"
T = TypeVar("T")
Json = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class ManagementContext:
    service: PlatformService
    # Adds addresses and mails their verification (None: adding addresses is refused).
    verifier: AddressVerifier | None = None


def _text(body: Json, key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{key} is required", key)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string", key)
    return value


def _list(body: Json, key: str) -> list[Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInput(f"{key} must be an array of strings", key)
    return value


def _json(data: Json, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def routes(ctx: ManagementContext) -> list[BaseRoute]:
    """The /api/v2 routes, bound to `ctx`'s service."""
    service = ctx.service

    async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def p(request: Request, name: str = "project") -> str:
        value: str = request.path_params[name]
        return value

    def lister(
        list_items: Callable[[str], list[T]], key: str, view: Callable[[T], Json]
    ) -> Handler:
        """GET a project's collection: {"project": id, key: [view(item), ...]}."""

        async def handler(request: Request) -> Response:
            items = await run(list_items, p(request))
            return _json({"project": p(request), key: [view(x) for x in items]})

        return handler

    def deleter(delete: Callable[[str, str], object], param: str) -> Handler:
        """DELETE a project's member named by the path parameter `param`: {"deleted": it}."""

        async def handler(request: Request) -> Response:
            member = p(request, param)
            await run(delete, p(request), member)
            return _json({"deleted": member})

        return handler

    # -- projects ----------------------------------------------------------------------

    async def list_projects(request: Request) -> Response:
        items = await run(service.list_projects)
        only = key_project(request)  # an API key sees its own project only
        return _json({"projects": [views.project(x) for x in items if only in (None, x.id)]})

    def open_mode(request: Request) -> bool:
        return principal_of(request).kind == "open"

    async def create_project(request: Request) -> Response:
        body = await json_body(request)
        if open_mode(request) and body.get("mode") == "live":
            return open_mode_live_refusal("live projects cannot be created through the API")
        project = await run(
            service.create_project,
            _text(body, "id", required=True),
            _text(body, "name"),
            _text(body, "mode") or "capture",
            body.get("daily_quota"),
            body.get("rate_limit"),
        )
        return _json(views.project(project), 201)

    async def get_project(request: Request) -> Response:
        return _json(views.project(await run(service.get_project, p(request))))

    async def update_project(request: Request) -> Response:
        body = await json_body(request)
        changes: dict[str, Any] = {}
        for key in ("name", "mode"):
            if key in body:
                changes[key] = _text(body, key, required=True)
        for key in ("daily_quota", "rate_limit"):
            changes[key] = body.get(key, UNSET)
        unknown = set(body) - {"name", "mode", "daily_quota", "rate_limit"}
        if unknown:
            field = sorted(unknown)[0]
            raise InvalidInput(f"{field} cannot be changed", field)
        if open_mode(request):
            current = await run(service.get_project, p(request))
            if current.mode == "live" or changes.get("mode") == "live":
                return open_mode_live_refusal(
                    "live projects cannot be changed, nor capture projects made live, "
                    "through the API"
                )
        project = await run(service.update_project, p(request), **changes)
        return _json(views.project(project))

    async def delete_project(request: Request) -> Response:
        if open_mode(request) and (await run(service.get_project, p(request))).mode == "live":
            return open_mode_live_refusal("live projects cannot be deleted through the API")
        await run(service.delete_project, p(request))
        return _json({"deleted": p(request)})

    async def usage(request: Request) -> Response:
        return _json(views.usage(p(request), await run(service.usage, p(request))))

    # -- SMTP credentials --------------------------------------------------------------

    list_credentials = lister(service.list_smtp_credentials, "credentials", views.smtp_credential)

    async def create_credential(request: Request) -> Response:
        body = await json_body(request)
        issued = await run(
            service.create_smtp_credential,
            p(request),
            _text(body, "username"),
            _list(body, "allowed_from") or (),
        )
        return _json(views.issued_smtp_credential(issued), 201)

    delete_credential = deleter(service.delete_smtp_credential, "credential")

    # -- IP credentials ----------------------------------------------------------------

    list_ip = lister(service.list_ip_credentials, "credentials", views.ip_credential)

    async def create_ip(request: Request) -> Response:
        body = await json_body(request)
        network = _text(body, "network", required=True)
        credential = await run(service.create_ip_credential, p(request), network)
        return _json(views.ip_credential(credential), 201)

    delete_ip = deleter(service.delete_ip_credential, "credential")

    # -- API keys ----------------------------------------------------------------------

    list_keys = lister(service.list_api_keys, "api_keys", views.api_key)

    async def create_key(request: Request) -> Response:
        body = await json_body(request)
        issued = await run(
            service.create_api_key,
            p(request),
            _text(body, "name", required=True),
            _list(body, "scopes") or ["send"],
        )
        return _json(views.issued_api_key(issued), 201)

    delete_key = deleter(service.delete_api_key, "key_id")

    # -- domains -----------------------------------------------------------------------

    list_domains = lister(service.list_domains, "domains", views.domain)

    async def add_domain(request: Request) -> Response:
        body = await json_body(request)
        report = await run(
            lambda: service.add_domain(
                p(request),
                _text(body, "domain", required=True) or "",
                algorithm=_text(body, "algorithm"),
                private_key=_text(body, "private_key"),
                selector=_text(body, "selector"),
            )
        )
        return _json(views.domain_report(report), 201)

    async def get_domain(request: Request) -> Response:
        report = await run(service.records, p(request), p(request, "domain"))
        return _json(views.domain_report(report))

    delete_domain = deleter(service.delete_domain, "domain")

    async def verify_domain(request: Request) -> Response:
        report = await service.verify(p(request), p(request, "domain"))
        return _json(views.domain_report(report))

    async def rotate_domain(request: Request) -> Response:
        body = await json_body(request)
        key = await run(
            lambda: service.rotate(
                p(request),
                p(request, "domain"),
                algorithm=_text(body, "algorithm"),
                private_key=_text(body, "private_key"),
                selector=_text(body, "selector"),
            )
        )
        return _json(
            {"project": p(request), "domain": p(request, "domain"), "key": views.dkim_key(key)},
            201,
        )

    async def activate_domain(request: Request) -> Response:
        body = await json_body(request)
        selector = _text(body, "selector", required=True) or ""
        domain = await service.activate(p(request), p(request, "domain"), selector)
        return _json(views.domain(domain))

    # -- address identities (pending until the mailed link or code is used) -------------

    list_addresses = lister(service.list_addresses, "addresses", views.address_identity)

    def verifier() -> AddressVerifier:
        if ctx.verifier is None:
            raise InvalidInput("this server cannot send verification mail", "address")
        return ctx.verifier

    async def add_address(request: Request) -> Response:
        body = await json_body(request)
        address = _text(body, "address", required=True) or ""
        entry = await verifier().add(p(request), address)
        return _json(views.address_identity(entry), 201)

    async def confirm_address(request: Request) -> Response:
        body = await json_body(request)
        code = _text(body, "code", required=True)
        entry = await run(
            lambda: service.confirm_address(
                code, "code", project_id=p(request), address=p(request, "address")
            )
        )
        return _json(views.address_identity(entry))

    async def resend_address(request: Request) -> Response:
        entry = await verifier().resend(p(request), p(request, "address"))
        return _json(views.address_identity(entry))

    delete_address = deleter(service.delete_address, "address")

    async def openapi(request: Request) -> Response:
        from postroom.api.openapi_v2 import document

        return _json(document())

    project = f"{PREFIX}/projects/{{project}}"
    domain = f"{project}/domains/{{domain}}"
    table: list[tuple[str, str, Handler]] = [
        ("GET", f"{PREFIX}/openapi.json", openapi),
        ("GET", f"{PREFIX}/projects", list_projects),
        ("POST", f"{PREFIX}/projects", create_project),
        ("GET", project, get_project),
        ("PATCH", project, update_project),
        ("DELETE", project, delete_project),
        ("GET", f"{project}/usage", usage),
        ("GET", f"{project}/smtp-credentials", list_credentials),
        ("POST", f"{project}/smtp-credentials", create_credential),
        ("DELETE", f"{project}/smtp-credentials/{{credential}}", delete_credential),
        ("GET", f"{project}/ip-credentials", list_ip),
        ("POST", f"{project}/ip-credentials", create_ip),
        ("DELETE", f"{project}/ip-credentials/{{credential:path}}", delete_ip),
        ("GET", f"{project}/api-keys", list_keys),
        ("POST", f"{project}/api-keys", create_key),
        ("DELETE", f"{project}/api-keys/{{key_id}}", delete_key),
        ("GET", f"{project}/domains", list_domains),
        ("POST", f"{project}/domains", add_domain),
        ("GET", domain, get_domain),
        ("DELETE", domain, delete_domain),
        ("GET", f"{domain}/records", get_domain),
        ("POST", f"{domain}/verify", verify_domain),
        ("POST", f"{domain}/rotate", rotate_domain),
        ("POST", f"{domain}/activate", activate_domain),
        ("GET", f"{project}/verified-addresses", list_addresses),
        ("POST", f"{project}/verified-addresses", add_address),
        ("DELETE", f"{project}/verified-addresses/{{address}}", delete_address),
        ("POST", f"{project}/verified-addresses/{{address}}/confirm", confirm_address),
        ("POST", f"{project}/verified-addresses/{{address}}/resend", resend_address),
    ]
    by_path: dict[str, dict[str, Handler]] = {}
    for method, path, handler in table:
        by_path.setdefault(path, {})[method] = handler
    return [
        Route(path, _dispatch(handlers), methods=list(handlers))
        for path, handlers in by_path.items()
    ]


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    """One Route per path (so that a wrong method is a 405, not a 404)."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return endpoint
