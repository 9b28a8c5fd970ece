"""Server-rendered admin pages: `/login`, `/logout` and `/admin/...`.

Plain HTML forms posted to the server, each with the CSRF token in a hidden field (the gate in
api/auth.py checks it before any handler runs); a successful post redirects (303) to a page
that shows what changed, except the two that create a secret (SMTP password, API key), which
show it once on the response itself and never again. The one script (`admin.js`) adds copy
buttons and confirmations; every page works without it. Like the inbox, the pages obey the
default Content-Security-Policy: no inline script or style.

Errors of input come back on the same page, with the values typed, in a `role="alert"` box.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from postroom import __version__
from postroom.api.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Authenticator,
    LoginRefused,
    principal_of,
    safe_next,
)
from postroom.config import Config, HostPort
from postroom.core.errors import InvalidInput, NotFound, Refusal
from postroom.core.platform import DEFAULT_PROJECT, Project
from postroom.core.suppression import REASONS as SUPPRESSION_REASONS
from postroom.core.suppression import SuppressionQuery, check_reason
from postroom.platform.address_mail import CONFIRM_PATH, AddressVerifier
from postroom.platform.domains import DomainReport
from postroom.platform.service import UNSET, PlatformService, Usage
from postroom.suppression.service import SuppressionList
from postroom.web.routes import STATIC_DIR as INBOX_STATIC_DIR
from postroom.web.routes import TEMPLATE_DIR as INBOX_TEMPLATES
from postroom.web.routes import load_static, theme_of, who

__all__ = ["STATIC_PREFIX", "AdminPages", "routes"]

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"
STATIC_PREFIX = "/admin/static"
T = TypeVar("T")
Form = dict[str, list[str]]
Handler = Callable[[Request], Awaitable[Response]]

# The inbox's colour palette, served here too: the admin pages are public before login, the
# inbox's static files are not.
PALETTE = INBOX_STATIC_DIR / "palette.css"
TOPBAR_CSS = INBOX_STATIC_DIR / "topbar.css"  # the top bar both share (templates/_topbar.html)
THEME_JS = INBOX_STATIC_DIR / "theme.js"  # its theme switch

# ?done=<code> after a redirect: fixed sentences, never text from the request.
NOTICES = {
    "suppressed": "Address added to the suppression list: it is not mailed from now on.",
    "imported": "Addresses imported into the suppression list.",
    "unsuppressed": "Address removed from the suppression list: mail to it is delivered again.",
    "logged-out": "You are logged out.",
    "project-created": "Project created. Add SMTP credentials, API keys or a sending domain below.",
    "project-saved": "Project settings saved.",
    "project-deleted": "Project deleted.",
    "project-suspended": "Sending suspended: every door refuses this project's mail from now on.",
    "project-resumed": "Suspension lifted: the project may send again.",
    "credential-deleted": "SMTP credential deleted: it no longer authenticates.",
    "ip-added": "IP credential added.",
    "ip-deleted": "IP credential deleted.",
    "key-deleted": "API key revoked.",
    "domain-added": "Domain added. Publish the records below, then check DNS.",
    "domain-deleted": "Domain deleted.",
    "domain-checked": "DNS checked: each record's status is below.",
    "key-rotated": "New DKIM key created: publish its record below, then activate it.",
    "key-activated": "DKIM key activated: it signs from now on.",
    "address-added": "Address added, pending: a verification mail went to it. The project may "
    "send as it once someone who reads that mailbox confirms.",
    "address-resent": "A new verification mail went to the address; the earlier link no "
    "longer works.",
    "address-deleted": "Address deleted.",
}

RECORD_LABELS = {
    "verification": "Ownership",
    "dkim": "DKIM",
    "spf": "SPF",
    "dmarc": "DMARC",
    "return_path_mx": "Return-Path MX",
    "return_path_spf": "Return-Path SPF",
    "inbound_mx": "Inbound MX",
}

STATUS_LABELS = {
    "ok": "OK",
    "missing": "Missing",
    "mismatch": "Wrong value",
    "error": "DNS error",
    "unchecked": "Not checked yet",
}


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "never"


async def read_form(request: Request) -> Form:
    """An application/x-www-form-urlencoded body (the only kind these pages post)."""
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8", "body") from None
    return parse_qs(text, keep_blank_values=True, max_num_fields=1000)


def field(form: Form, name: str) -> str:
    values = form.get(name)
    return values[0].strip() if values else ""


def number(form: Form, name: str, label: str) -> int | None:
    """A quota field: empty for no limit, else a whole number."""
    text = field(form, name).replace("_", "").replace(",", "")
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput(f"{label} must be a whole number, or empty for no limit", name)
    return int(text)


def words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


@dataclass
class ProjectRow:
    project: Project
    usage: Usage | None

    @property
    def remaining(self) -> int | None:
        if self.usage is None or self.usage.daily_quota is None:
            return None
        return max(0, self.usage.daily_quota - self.usage.sent_24h)


class AdminPages:
    """The handlers, bound to the platform service and the authenticator."""

    def __init__(
        self,
        service: PlatformService,
        auth: Authenticator,
        config: Config,
        verifier: AddressVerifier | None = None,
        suppressions: SuppressionList | None = None,
    ) -> None:
        self.service = service
        self.suppressions = suppressions
        self.auth = auth
        self.config = config
        self.verifier = verifier
        self.version, self.files = load_static(STATIC_DIR, also=(PALETTE, TOPBAR_CSS, THEME_JS))
        self.static = f"{STATIC_PREFIX}/{self.version}"
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [jinja2.FileSystemLoader(TEMPLATE_DIR), jinja2.FileSystemLoader(INBOX_TEMPLATES)]
            ),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = when
        self.env.filters["sentence"] = _sentence
        self.env.globals.update(
            record_labels=RECORD_LABELS,
            status_labels=STATUS_LABELS,
            version=__version__,
            csrf_field=CSRF_FIELD,
            default_project=DEFAULT_PROJECT,
            error_text=lambda exc: _sentence(str(exc)),
        )

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- rendering -----------------------------------------------------------------------------

    async def render(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> Response:
        token, set_cookie = self.auth.page_token(request)
        principal = principal_of(request)
        notice = NOTICES.get(request.query_params.get("done", ""))
        values.setdefault("error", None)
        values.setdefault("form", {})
        html = self.env.get_template(template).render(
            static=self.static,
            csrf=token,
            principal=principal,
            who=who(principal),
            theme=theme_of(request),
            open_mode=principal.kind == "open",
            notice=notice,
            path=request.url.path,
            listen=str(self.config.http),
            **values,
        )
        response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
        if set_cookie:
            self.auth.set_csrf_cookie(response, request, token)
        return response

    async def error_page(self, request: Request, status: int, message: str) -> Response:
        titles = {403: "Request refused", 404: "Not found", 429: "Too many attempts"}
        return await self.render(
            request,
            "message.html",
            status,
            title=titles.get(status, "Something went wrong"),
            message=message,
        )

    @staticmethod
    def redirect(url: str) -> Response:
        return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})

    # -- login ---------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        nxt = safe_next(request.query_params.get("next"))
        if principal_of(request).kind == "admin":
            return self.redirect(nxt)
        return await self.render(request, "login.html", next=nxt, username="", login_error=None)

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        if "api_key" in form:
            return await self.login_key(request, form)
        username = field(form, "username")
        password = (form.get("password") or [""])[0]
        nxt = safe_next(field(form, "next"))
        client = request.client.host if request.client else ""
        if not username or not password:
            return await self.render(
                request,
                "login.html",
                400,
                next=nxt,
                username=username,
                login_error="Enter your username and password.",
            )
        try:
            token, session = await self.auth.login(username, password, client)
        except LoginRefused as exc:
            message = (
                "Invalid username or password."
                if exc.status == 401
                else "Too many failed logins from your address. Wait a few minutes, then try again."
            )
            return await self.render(
                request, "login.html", exc.status, next=nxt, username=username, login_error=message
            )
        self.auth.logout(request.cookies.get(SESSION_COOKIE, ""))  # no session fixation
        response = self.redirect(nxt)
        self.auth.set_session_cookies(response, request, token, session.csrf)
        return response

    async def login_key(self, request: Request, form: Form) -> Response:
        """Sign in with an API key (read scope): the inbox of the key's project only."""
        token = field(form, "api_key")
        nxt = safe_next(field(form, "next"))
        client = request.client.host if request.client else ""
        if not token:
            return await self.render(
                request,
                "login.html",
                400,
                next=nxt,
                username="",
                login_error="Paste an API key with the read scope.",
                key_login=True,
            )
        try:
            session_token, session, key = await self.auth.login_key(token, client)
        except LoginRefused as exc:
            messages = {
                401: "Invalid API key: it is unknown, revoked or mistyped.",
                403: "This API key lacks the read scope, which opening the inbox needs.",
            }
            message = messages.get(
                exc.status,
                "Too many failed logins from your address. Wait a few minutes, then try again.",
            )
            return await self.render(
                request,
                "login.html",
                exc.status,
                next=nxt,
                username="",
                login_error=message,
                key_login=True,
            )
        self.auth.logout(request.cookies.get(SESSION_COOKIE, ""))  # no session fixation
        home = "/" if key.project_id == DEFAULT_PROJECT else f"/p/{quote(key.project_id)}/"
        target = nxt if nxt != "/" and not nxt.startswith("/admin") else home
        response = self.redirect(target)
        self.auth.set_session_cookies(response, request, session_token, session.csrf)
        return response

    async def logout_page(self, request: Request) -> Response:
        if not principal_of(request).has_session:
            return self.redirect("/login")
        return await self.render(request, "logout.html")

    async def logout(self, request: Request) -> Response:
        principal = principal_of(request)
        self.auth.logout(principal.session_token or request.cookies.get(SESSION_COOKIE, ""))
        response = self.redirect("/login?done=logged-out")
        self.auth.clear_cookies(response, request)
        return response

    # -- projects ------------------------------------------------------------------------------

    async def project_rows(self) -> list[ProjectRow]:
        def read() -> list[ProjectRow]:
            rows = []
            for project in self.service.list_projects():
                try:
                    usage: Usage | None = self.service.usage(project.id)
                except NotFound:
                    continue
                rows.append(ProjectRow(project, usage))
            return rows

        return await self.run(read)

    async def projects(
        self, request: Request, error: InvalidInput | None = None, form: Form | None = None
    ) -> Response:
        return await self.render(
            request,
            "projects.html",
            400 if error else 200,
            rows=await self.project_rows(),
            error=error,
            form=_values(form),
        )

    async def create_project(self, request: Request) -> Response:
        form = await read_form(request)
        try:
            project = await self.run(
                self.service.create_project,
                field(form, "id"),
                field(form, "name") or None,
                field(form, "mode") or "capture",
                number(form, "daily_quota", "The daily quota"),
                number(form, "rate_limit", "The rate limit"),
            )
        except InvalidInput as exc:
            return await self.projects(request, exc, form)
        return self.redirect(f"/admin/projects/{quote(project.id)}?done=project-created")

    async def _project(self, request: Request) -> Project:
        project: Project = await self.run(self.service.get_project, request.path_params["project"])
        return project

    async def project(
        self, request: Request, error: InvalidInput | None = None, form: Form | None = None
    ) -> Response:
        project = await self._project(request)
        usage = await self.run(self.service.usage, project.id)
        counts = await self.run(self._counts, project.id)
        return await self.render(
            request,
            "project.html",
            400 if error else 200,
            project=project,
            row=ProjectRow(project, usage),
            counts=counts,
            tab="overview",
            error=error,
            form=_values(form),
        )

    def _counts(self, project_id: str) -> dict[str, int]:
        s = self.service
        return {
            "credentials": len(s.list_smtp_credentials(project_id)),
            "ip": len(s.list_ip_credentials(project_id)),
            "api_keys": len(s.list_api_keys(project_id)),
            "domains": len(s.list_domains(project_id)),
            "verified": sum(1 for d in s.list_domains(project_id) if d.verified),
        }

    async def update_project(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        changes: dict[str, Any] = {}
        try:
            if "name" in form:
                changes["name"] = field(form, "name")
            if "mode" in form:
                changes["mode"] = field(form, "mode")
            changes["daily_quota"] = number(form, "daily_quota", "The daily quota")
            changes["rate_limit"] = number(form, "rate_limit", "The rate limit")
            await self.run(
                lambda: self.service.update_project(
                    project.id,
                    name=changes.get("name", UNSET),
                    mode=changes.get("mode", UNSET),
                    daily_quota=changes["daily_quota"],
                    rate_limit=changes["rate_limit"],
                )
            )
        except InvalidInput as exc:
            return await self.project(request, exc, form)
        return self.redirect(f"/admin/projects/{quote(project.id)}?done=project-saved")

    async def suspend_project(self, request: Request) -> Response:
        """Suspend the project's sending (the checkbox confirms it, as a delete's does)."""
        project = await self._project(request)
        form = await read_form(request)
        try:
            if field(form, "confirm") != "yes":
                raise InvalidInput(
                    "tick the box to confirm that every door refuses this project's mail",
                    "confirm",
                )
            await self.run(self.service.suspend_project, project.id, field(form, "reason"))
        except InvalidInput as exc:
            return await self.project(request, exc, form)
        return self.redirect(f"/admin/projects/{quote(project.id)}?done=project-suspended")

    async def resume_project(self, request: Request) -> Response:
        project = await self._project(request)
        await read_form(request)  # the CSRF token only
        try:
            await self.run(self.service.resume_project, project.id)
        except InvalidInput as exc:
            return await self.project(request, exc)
        return self.redirect(f"/admin/projects/{quote(project.id)}?done=project-resumed")

    async def delete_project(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        try:
            if field(form, "confirm") != "yes":
                raise InvalidInput(
                    "tick the box to confirm that the project and all it owns go", "confirm"
                )
            await self.run(self.service.delete_project, project.id)
        except InvalidInput as exc:
            return await self.project(request, exc, form)
        return self.redirect("/admin/projects?done=project-deleted")

    # -- SMTP and IP credentials ---------------------------------------------------------------

    async def credentials(
        self, request: Request, error: InvalidInput | None = None, form: Form | None = None
    ) -> Response:
        project = await self._project(request)
        smtp = await self.run(self.service.list_smtp_credentials, project.id)
        ip = await self.run(self.service.list_ip_credentials, project.id)
        return await self.render(
            request,
            "credentials.html",
            400 if error else 200,
            project=project,
            tab="credentials",
            smtp=smtp,
            ip=ip,
            submission=self._submission_hosts(request),
            error=error,
            form=_values(form),
        )

    def _submission_hosts(self, request: Request) -> list[tuple[str, str]]:
        out = []
        host = request.url.hostname or self.config.hostname
        for label, address in (
            ("STARTTLS", self.config.submission),
            ("Implicit TLS", self.config.submissions),
        ):
            if address is not None:
                out.append((label, str(HostPort(host, address.port))))
        return out

    async def create_credential(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        try:
            issued = await self.run(
                self.service.create_smtp_credential,
                project.id,
                field(form, "username") or None,
                words(field(form, "allowed_from")),
            )
        except InvalidInput as exc:
            return await self.credentials(request, exc, form)
        return await self.render(
            request,
            "secret.html",
            201,
            project=project,
            tab="credentials",
            kind="smtp",
            username=issued.credential.username,
            secret=issued.password,
            submission=self._submission_hosts(request),
            back=f"/admin/projects/{quote(project.id)}/credentials",
        )

    async def delete_credential(self, request: Request) -> Response:
        project = await self._project(request)
        await self.run(
            self.service.delete_smtp_credential, project.id, request.path_params["credential"]
        )
        return self.redirect(
            f"/admin/projects/{quote(project.id)}/credentials?done=credential-deleted"
        )

    async def create_ip(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        try:
            await self.run(self.service.create_ip_credential, project.id, field(form, "network"))
        except InvalidInput as exc:
            return await self.credentials(request, exc, form)
        return self.redirect(f"/admin/projects/{quote(project.id)}/credentials?done=ip-added")

    async def delete_ip(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        await self.run(self.service.delete_ip_credential, project.id, field(form, "credential"))
        return self.redirect(f"/admin/projects/{quote(project.id)}/credentials?done=ip-deleted")

    # -- API keys ------------------------------------------------------------------------------

    async def api_keys(
        self, request: Request, error: InvalidInput | None = None, form: Form | None = None
    ) -> Response:
        project = await self._project(request)
        keys = await self.run(self.service.list_api_keys, project.id)
        return await self.render(
            request,
            "api_keys.html",
            400 if error else 200,
            project=project,
            tab="keys",
            keys=keys,
            error=error,
            form=_values(form),
            scopes_checked=set(form.get("scopes", [])) if form else {"send"},
        )

    async def create_key(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        try:
            issued = await self.run(
                self.service.create_api_key,
                project.id,
                field(form, "name"),
                form.get("scopes", []),
            )
        except InvalidInput as exc:
            return await self.api_keys(request, exc, form)
        return await self.render(
            request,
            "secret.html",
            201,
            project=project,
            tab="keys",
            kind="key",
            username=issued.key.name,
            scopes=issued.key.scopes,
            secret=issued.token,
            base_url=str(request.base_url).rstrip("/"),
            back=f"/admin/projects/{quote(project.id)}/api-keys",
        )

    async def delete_key(self, request: Request) -> Response:
        project = await self._project(request)
        await self.run(self.service.delete_api_key, project.id, request.path_params["key"])
        return self.redirect(f"/admin/projects/{quote(project.id)}/api-keys?done=key-deleted")

    # -- the suppression list ------------------------------------------------------------------

    def _suppression_list(self) -> SuppressionList:
        if self.suppressions is None:
            raise NotFound("the suppression list needs the SQL message store")
        return self.suppressions

    async def suppression_page(
        self, request: Request, error: InvalidInput | None = None, form: Form | None = None
    ) -> Response:
        project = await self._project(request)
        query = request.query_params.get("q", "").strip()
        after = request.query_params.get("after") or None
        page = await self.run(
            self._suppression_list().page,
            project.id,
            SuppressionQuery(search=query or None, after=after, limit=100),
        )
        return await self.render(
            request,
            "suppressions.html",
            400 if error else 200,
            project=project,
            tab="suppressions",
            entries=page.entries,
            next=page.next,
            query=query,
            reasons=[(r, r) for r in SUPPRESSION_REASONS],
            error=error,
            form=_values(form),
        )

    async def add_suppression(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        try:
            await self.run(
                self._suppression_list().add,
                project.id,
                field(form, "address"),
                field(form, "reason") or "manual",
                detail=field(form, "detail"),
            )
        except InvalidInput as exc:
            return await self.suppression_page(request, exc, form)
        return self.redirect(f"/admin/projects/{quote(project.id)}/suppressions?done=suppressed")

    async def import_suppressions(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        text = (form.get("csv") or [""])[0]
        try:
            reason = check_reason(field(form, "reason") or "manual")
            lines = text.splitlines(keepends=True)
            await self.run(self._suppression_list().import_csv, project.id, lines, reason)
        except InvalidInput as exc:
            return await self.suppression_page(request, exc, form)
        return self.redirect(f"/admin/projects/{quote(project.id)}/suppressions?done=imported")

    async def delete_suppression(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        await self.run(self._suppression_list().remove, project.id, field(form, "address"))
        return self.redirect(f"/admin/projects/{quote(project.id)}/suppressions?done=unsuppressed")

    async def export_suppressions(self, request: Request) -> Response:
        project = await self._project(request)
        lines = await self.run(lambda: list(self._suppression_list().export_csv(project.id)))
        return Response(
            "".join(lines),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="suppressions-{project.id}.csv"',
                "Cache-Control": "no-store",
            },
        )

    # -- domains and verified addresses ----------------------------------------------------------

    async def domains(
        self, request: Request, error: InvalidInput | None = None, form: Form | None = None
    ) -> Response:
        project = await self._project(request)
        domains = await self.run(self.service.list_domains, project.id)
        addresses = await self.run(self.service.list_addresses, project.id)
        return await self.render(
            request,
            "domains.html",
            400 if error else 200,
            project=project,
            tab="domains",
            domains=domains,
            addresses=addresses,
            error=error,
            form=_values(form),
        )

    async def add_domain(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        try:
            report = await self.run(
                lambda: self.service.add_domain(
                    project.id, field(form, "domain"), algorithm=field(form, "algorithm") or None
                )
            )
        except InvalidInput as exc:
            return await self.domains(request, exc, form)
        return self.redirect(self._domain_url(project.id, report.domain.name, "domain-added"))

    @staticmethod
    def _domain_url(project: str, domain: str, done: str = "") -> str:
        url = f"/admin/projects/{quote(project)}/domains/{quote(domain)}"
        return f"{url}?done={done}" if done else url

    async def domain(self, request: Request, error: InvalidInput | None = None) -> Response:
        project = await self._project(request)
        report: DomainReport = await self.run(
            self.service.records, project.id, request.path_params["domain"]
        )
        return await self.render(
            request,
            "domain.html",
            400 if error else 200,
            project=project,
            tab="domains",
            report=report,
            domain=report.domain,
            error=error,
        )

    async def verify_domain(self, request: Request) -> Response:
        project = await self._project(request)
        report = await self.service.verify(project.id, request.path_params["domain"])
        return self.redirect(self._domain_url(project.id, report.domain.name, "domain-checked"))

    async def rotate_domain(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        name = request.path_params["domain"]
        try:
            await self.run(
                lambda: self.service.rotate(
                    project.id, name, algorithm=field(form, "algorithm") or None
                )
            )
        except InvalidInput as exc:
            return await self.domain(request, exc)
        return self.redirect(self._domain_url(project.id, name, "key-rotated"))

    async def activate_domain(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        name = request.path_params["domain"]
        try:
            await self.service.activate(project.id, name, field(form, "selector"))
        except InvalidInput as exc:
            return await self.domain(request, exc)
        return self.redirect(self._domain_url(project.id, name, "key-activated"))

    async def delete_domain(self, request: Request) -> Response:
        project = await self._project(request)
        await self.run(self.service.delete_domain, project.id, request.path_params["domain"])
        return self.redirect(f"/admin/projects/{quote(project.id)}/domains?done=domain-deleted")

    def _verifier(self) -> AddressVerifier:
        if self.verifier is None:
            raise InvalidInput("this server cannot send verification mail", "address")
        return self.verifier

    async def add_address(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        try:
            await self._verifier().add(project.id, field(form, "address"))
        except InvalidInput as exc:
            return await self.domains(request, exc, form)
        return self.redirect(f"/admin/projects/{quote(project.id)}/domains?done=address-added")

    async def resend_address(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        try:
            await self._verifier().resend(project.id, field(form, "address"))
        except (InvalidInput, Refusal) as exc:
            error = exc if isinstance(exc, InvalidInput) else InvalidInput(str(exc), "address")
            return await self.domains(request, error, form)
        return self.redirect(f"/admin/projects/{quote(project.id)}/domains?done=address-resent")

    async def delete_address(self, request: Request) -> Response:
        project = await self._project(request)
        form = await read_form(request)
        try:
            await self.run(self.service.delete_address, project.id, field(form, "address"))
        except InvalidInput as exc:
            return await self.domains(request, exc, form)
        return self.redirect(f"/admin/projects/{quote(project.id)}/domains?done=address-deleted")

    # -- the address confirmation page (public: the mailed token is the credential) -------------

    async def confirm_address_page(self, request: Request) -> Response:
        """Shows what the token of a verification mail would confirm; changes nothing (link
        scanners open it too). Its button posts the token as JSON (api/address_confirm.py)."""
        token = request.query_params.get("token", "")
        try:
            identity = await self.run(self.service.address_for_token, token)
        except InvalidInput as exc:
            return await self.render(
                request, "confirm_address.html", 400, problem=_sentence(str(exc)), token=""
            )
        return await self.render(
            request, "confirm_address.html", identity=identity, problem=None, token=token.strip()
        )

    # -- static files --------------------------------------------------------------------------

    async def static_file(self, request: Request) -> Response:
        found = self.files.get(request.path_params["name"])
        if found is None:
            return await self.error_page(request, 404, "There is no such file.")
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}
        if request.path_params["version"] != self.version:
            headers = {"Cache-Control": "no-cache"}
        return Response(found.data, media_type=found.media_type, headers=headers)

    async def home(self, request: Request) -> Response:
        return self.redirect("/admin/projects")


def _values(form: Form | None) -> dict[str, str]:
    """The values typed into a form, to show it again after an error (never passwords)."""
    if not form:
        return {}
    return {k: v[0] for k, v in form.items() if v and k not in ("password", CSRF_FIELD)}


def _guard(pages: AdminPages, handler: Handler) -> Handler:
    """Turn NotFound and unexpected InvalidInput into the admin's HTML error page."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except NotFound as exc:
            return await pages.error_page(request, 404, _sentence(str(exc) or "Not found."))
        except InvalidInput as exc:
            return await pages.error_page(request, 400, _sentence(str(exc)))

    return endpoint


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def routes(pages: AdminPages) -> list[BaseRoute]:
    p = "/admin/projects/{project}"
    d = p + "/domains/{domain}"
    table: list[tuple[str, list[str], Handler]] = [
        ("/login", ["GET", "HEAD"], pages.login_page),
        ("/login", ["POST"], pages.login),
        ("/logout", ["GET", "HEAD"], pages.logout_page),
        ("/logout", ["POST"], pages.logout),
        ("/admin", ["GET", "HEAD"], pages.home),
        ("/admin/", ["GET", "HEAD"], pages.home),
        ("/admin/projects", ["GET", "HEAD"], pages.projects),
        ("/admin/projects", ["POST"], pages.create_project),
        (p, ["GET", "HEAD"], pages.project),
        (p, ["POST"], pages.update_project),
        (p + "/delete", ["POST"], pages.delete_project),
        (p + "/suspend", ["POST"], pages.suspend_project),
        (p + "/resume", ["POST"], pages.resume_project),
        (p + "/credentials", ["GET", "HEAD"], pages.credentials),
        (p + "/credentials", ["POST"], pages.create_credential),
        (p + "/credentials/{credential}/delete", ["POST"], pages.delete_credential),
        (p + "/ip-credentials", ["POST"], pages.create_ip),
        (p + "/ip-credentials/delete", ["POST"], pages.delete_ip),
        (p + "/api-keys", ["GET", "HEAD"], pages.api_keys),
        (p + "/api-keys", ["POST"], pages.create_key),
        (p + "/api-keys/{key}/delete", ["POST"], pages.delete_key),
        (p + "/suppressions", ["GET", "HEAD"], pages.suppression_page),
        (p + "/suppressions", ["POST"], pages.add_suppression),
        (p + "/suppressions/import", ["POST"], pages.import_suppressions),
        (p + "/suppressions/delete", ["POST"], pages.delete_suppression),
        (p + "/suppressions/export.csv", ["GET", "HEAD"], pages.export_suppressions),
        (p + "/domains", ["GET", "HEAD"], pages.domains),
        (p + "/domains", ["POST"], pages.add_domain),
        (p + "/addresses", ["POST"], pages.add_address),
        (p + "/addresses/resend", ["POST"], pages.resend_address),
        (p + "/addresses/delete", ["POST"], pages.delete_address),
        (CONFIRM_PATH, ["GET", "HEAD"], pages.confirm_address_page),
        (d, ["GET", "HEAD"], pages.domain),
        (d + "/verify", ["POST"], pages.verify_domain),
        (d + "/rotate", ["POST"], pages.rotate_domain),
        (d + "/activate", ["POST"], pages.activate_domain),
        (d + "/delete", ["POST"], pages.delete_domain),
        (STATIC_PREFIX + "/{version}/{name}", ["GET", "HEAD"], pages.static_file),
    ]
    by_path: dict[str, dict[str, Handler]] = {}
    for path, methods, handler in table:
        for method in methods:
            by_path.setdefault(path, {})[method] = _guard(pages, handler)
    return [Route(path, _dispatch(h), methods=list(h)) for path, h in by_path.items()]


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    async def endpoint(request: Request) -> Response:
        return await handlers[request.method](request)

    return endpoint
