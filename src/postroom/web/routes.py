"""The web UI: one server-rendered shell page plus plain JavaScript modules and a stylesheet.

There is no build step. The files under `static/` are served as they are committed, under a URL
that carries a hash of their content (`/ui/static/<hash>/app.js`), so browsers may cache them
forever and a new release is picked up on the next page load. Relative imports between modules
stay inside the same hashed folder.

Every page the UI renders is covered by the application's default Content-Security-Policy
(`script-src 'self'; style-src 'self'`), so the shell has no inline script or style: the few
values the scripts need (addresses, version) travel as `data-` attributes on `<body>`, and the
inbox's first page as a JSON data block (`<script type="application/json">`, which is data,
never run).

The inbox's first page is rendered into the shell (web/rows.py) so its rows are painted with
the page, before the scripts have loaded; app.js adopts them. Only the rows that fill a window
are (SHELL_ROWS): app.js draws the rest of the page from the data block. A search's page is not
(a rare term may take seconds at a million messages): the shell has the browser fetch it at
once (`<link rel=preload>`) while the scripts load, as it does when the store is slow to answer.

The first paint waits for the stylesheets, not for the modules: the inbox's stylesheets come as
one request (INBOX_CSS), and no module is preloaded (`modulepreload` had the browser fetch and
compile all thirteen while it laid out the page, on the same two cores).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom import __version__
from postroom.api.auth import CSRF_FIELD, Principal, principal_of
from postroom.api.context import ApiContext
from postroom.api.list_page import uncounted_page
from postroom.config import HostPort
from postroom.core.errors import PostroomError
from postroom.core.platform import DEFAULT_PROJECT, Project
from postroom.web.rows import first_rows, list_count

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"
STATIC_PREFIX = "/ui/static"
PAGE_SIZE = 50  # rows per page of the list by default; the scripts read it from the shell
PAGE_SIZES = (25, 50, 100, 200)  # the page size choices (static/prefs.js, postroom_page_size)
# How many of the first page's rows the shell carries: enough to fill the list of a 1440-pixel
# tall window (a row is 71 px tall) or a 1080-pixel one in compact rows (27 px); app.js draws
# the rest of the page from the data block once it runs. Fewer rows to parse, style and lay out
# before the first paint (issue 12: the 50 rows of a page were 57 KB of the shell's 95).
SHELL_ROWS = 20
SHELL_ROWS_COMPACT = 40
# How long the shell waits for the inbox's first page before it goes without (the page then
# comes from the preloaded API call, as a search's does): a store busy writing must not hold
# the whole page back.
FIRST_PAGE_WAIT = 0.5
_FORM_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*-._")

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
}


@dataclass(frozen=True)
class StaticFile:
    data: bytes
    media_type: str


def load_static(
    directory: Path = STATIC_DIR, also: tuple[Path, ...] = ()
) -> tuple[str, dict[str, StaticFile]]:
    """Read every static file once; return (content hash, files by relative path). `also`:
    single files from elsewhere, served (and hashed) under their own name after the rest."""
    files: dict[str, StaticFile] = {}
    digest = hashlib.sha256()
    found = [
        (path.relative_to(directory).as_posix(), path)
        for path in sorted(p for p in directory.rglob("*") if p.is_file())
    ]
    for relative, path in [*found, *((path.name, path) for path in also)]:
        data = path.read_bytes()
        media_type = _TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        files[relative] = StaticFile(data, media_type)
        digest.update(relative.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:12], files


# The inbox's stylesheets, served to it as one (INBOX_CSS, in this order): one request instead of
# five before the first paint, which waits for them (issue 12: the requests of an empty cache
# queued on the browser's connections behind each other). Each is also served on its own.
INBOX_STYLES = ("palette.css", "topbar.css", "app.css", "viewtools.css", "headerscheck.css")
INBOX_CSS = "inbox.css"


def with_stylesheet(
    files: dict[str, StaticFile], name: str, parts: Sequence[str]
) -> dict[str, StaticFile]:
    """`files` and one stylesheet more: `parts` joined in order (the content hash, taken over
    the parts, covers it)."""
    joined = b"\n".join(files[part].data for part in parts)
    return {**files, name: StaticFile(joined, _TYPES[".css"])}


@functools.cache
def static_bundle() -> tuple[str, dict[str, StaticFile]]:
    """The inbox's static files, read once for every project's app."""
    version, files = load_static()
    return version, with_stylesheet(files, INBOX_CSS, INBOX_STYLES)


def project_url(project: str) -> str:
    """The inbox of a project: `/` for the default one, `/p/<project>/` for the others."""
    return "/" if project == DEFAULT_PROJECT else f"/p/{quote(project, safe='')}/"


def project_prefix(project: str) -> str:
    """What the inbox's URLs (pages and API) start with for a project ("" for the default)."""
    return project_url(project).rstrip("/")


def visible_projects(principal: Principal, projects: Sequence[Project]) -> list[Project]:
    """The projects whose inbox this principal may open: a key only its own; others all."""
    if principal.key is not None:
        return [p for p in projects if p.id == principal.key.project_id]
    return list(projects)


def display_address(address: HostPort, port: int | None = None) -> str:
    real = port or address.port
    return str(HostPort(address.host, real))


def client_host(address: HostPort) -> str:
    """The host a client on this machine should connect to (wildcards become loopback)."""
    if address.host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if address.host == "::":
        return "::1"
    return address.host


def smtp_port(context: ApiContext) -> int:
    """The capture door's real port: the configured one, or the bound one when the
    composition root offers it (config may say 0 when the port was chosen at start)."""
    return context.smtp_port() or context.config.smtp.port


def ui_config(context: ApiContext, request: Request) -> dict[str, Any]:
    smtp = context.config.smtp
    port = smtp_port(context)
    host = client_host(smtp)
    server = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "label": "Postroom",
        "version": __version__,
        "smtp": display_address(smtp, port) if port else "",
        "smtpExample": f"swaks --to test@example.com --server {server}" if port else "",
        "http": request.url.netloc,
        "hostname": context.config.hostname,
    }


def form_encode(value: str) -> str:
    """application/x-www-form-urlencoded exactly as the browser's URLSearchParams writes it."""
    out = []
    for byte in value.encode("utf-8"):
        if byte in _FORM_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def start_of(request: Request) -> int:
    """The list's offset in the page's URL (`?start=`), as app.js reads it."""
    raw_start = request.query_params.get("start", "")
    return int(raw_start) if raw_start.isdigit() and len(raw_start) < 10 else 0


def first_page_url(request: Request, base: str = "", page_size: int = PAGE_SIZE) -> str:
    """The API call the page makes first, so the shell can have the browser start it at once
    (`<link rel=preload as=fetch>`) while the scripts load. Must match static/query.js
    `listUrl` byte for byte (tests/unit/web/test_query_js.py).
    `base`: the project's prefix (`/p/<project>`, "" for the default project)."""
    start = start_of(request)
    params = f"start={start}&limit={page_size}&counts=skip"
    query = request.query_params.get("q", "").strip()
    if query:
        return f"{base}/api/v1/search?{params}&query={form_encode(query)}"
    return f"{base}/api/v1/messages?{params}"


def json_data_block(value: Any) -> Markup:
    """JSON for a `<script type="application/json">` element: its text is not HTML-decoded, so
    nothing may be escaped as HTML, and `<` (which could close the element) is written as
    `\\u003c`, which JSON.parse reads back."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


THEMES = ("system", "light", "dark")
THEME_COOKIE = "postroom_theme"  # set by static/theme.js


def theme_of(request: Request) -> str:
    """The theme switch's choice (system, light, dark) from its cookie."""
    value = request.cookies.get(THEME_COOKIE, "")
    return value if value in THEMES else "system"


PAGE_SIZE_COOKIE = "postroom_page_size"  # set by static/prefs.js
DENSITY_COOKIE = "postroom_density"  # set by static/prefs.js: "compact" or absent
LIST_WIDTH_COOKIE = "postroom_list_width"  # set by static/prefs.js: pixels
LIST_WIDTHS = range(240, 2001)  # what a remembered list width may be


def page_size_of(request: Request) -> int:
    """The list's page size chosen in the inbox (one of PAGE_SIZES), from its cookie."""
    raw = request.cookies.get(PAGE_SIZE_COOKIE, "")
    value = int(raw) if raw.isdigit() and len(raw) < 5 else 0
    return value if value in PAGE_SIZES else PAGE_SIZE


def density_of(request: Request) -> str:
    """The list's row density: "compact" (one line a row) or "comfortable"."""
    return "compact" if request.cookies.get(DENSITY_COOKIE, "") == "compact" else "comfortable"


def list_width_of(request: Request) -> int | None:
    """The width (px) the list pane was dragged to beside an open message, if any."""
    raw = request.cookies.get(LIST_WIDTH_COOKIE, "")
    value = int(raw) if raw.isdigit() and len(raw) < 5 else 0
    return value if value in LIST_WIDTHS else None


def who(principal: Principal) -> dict[str, Any]:
    """Who the top bar says is signed in, and what it offers them."""
    return {
        "kind": principal.kind,
        "name": principal.username,
        "key_project": principal.project or "",
        "session": principal.has_session,
        "csrf": principal.csrf,
        "csrf_field": CSRF_FIELD,
        # The admin pages: admins, and open mode (no login on loopback).
        "admin": principal.kind in ("admin", "open"),
    }


def routes(
    context: ApiContext, projects: Callable[[], Sequence[Project]] | None = None
) -> list[BaseRoute]:
    """The inbox's routes for `context.project`; `projects` lists every project (for the
    switcher; None: the default project only)."""
    version, files = static_bundle()
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    shell_template = environment.get_template("index.html")
    static_base = f"{STATIC_PREFIX}/{version}"

    project = context.project
    # The default project's inbox keeps the short URLs; another one's names it (/p/<id>/),
    # also when a key session of that project opened it at `/`.
    base = project_prefix(project)

    async def inbox_page(start: int, page_size: int) -> dict[str, Any] | None:
        """The inbox's page for the shell, or None when the store does not answer in time (or
        fails: the scripts' own request then shows why)."""
        work = asyncio.ensure_future(
            asyncio.to_thread(uncounted_page, context.store, project, None, start, page_size)
        )
        try:
            return await asyncio.wait_for(asyncio.shield(work), FIRST_PAGE_WAIT)
        except TimeoutError:
            work.add_done_callback(lambda done: done.cancelled() or done.exception())
            log.info(
                "the inbox's first page took over %.1f s: the shell goes without", FIRST_PAGE_WAIT
            )
        except PostroomError as exc:
            log.warning("the inbox's first page could not be read for the shell: %s", exc)
        return None

    async def shell(request: Request) -> Response:
        config = ui_config(context, request)
        principal = principal_of(request)
        page_size = page_size_of(request)
        width = list_width_of(request)
        start = start_of(request)
        searched = bool(request.query_params.get("q", "").strip())
        # HEAD gets the headers only: no page is read for it.
        wanted = not searched and request.method != "HEAD"
        inline = await inbox_page(start, page_size) if wanted else None
        density = density_of(request)
        shell_rows = SHELL_ROWS_COMPACT if density == "compact" else SHELL_ROWS
        page = shell_template.render(
            static=static_base,
            stylesheet=INBOX_CSS,
            config=config,
            page_size=page_size,
            page_sizes=PAGE_SIZES,
            density=density,
            list_width=width or "",
            # A deep link renders the message layout at once (no flash of the full-width list).
            view="message" if "id" in request.path_params else "list",
            first_page=first_page_url(request, base, page_size),
            # The inbox's first page, in the shell (rows, count, and the data app.js adopts).
            inline_page=json_data_block(inline) if inline is not None else None,
            inline_start=start,
            rows=first_rows(inline, base, context.clock.now(), shell_rows) if inline else Markup(),
            count=list_count(inline) if inline else "",
            base=base,
            project=project,
            who=who(principal),
            section="inbox",
            theme=theme_of(request),
        )
        # private: the shell carries the inbox's first page (messages), for this caller only.
        return HTMLResponse(page, headers={"Cache-Control": "no-cache, private"})

    async def project_list(request: Request) -> Response:
        """The projects this caller may open, with their message and unread counts."""
        principal = principal_of(request)
        if projects is None:
            now = context.clock.now()
            found: Sequence[Project] = [Project(DEFAULT_PROJECT, "Default", "capture", now)]
        else:
            found = await asyncio.to_thread(projects)

        def counts() -> list[dict[str, Any]]:
            out = []
            for p in visible_projects(principal, found):
                page = context.store.list(p.id, None, 0, 0)
                out.append(
                    {
                        "ID": p.id,
                        "Name": p.name,
                        "Mode": p.mode,
                        "Total": page.total,
                        "Unread": page.unread,
                        "URL": project_url(p.id),
                    }
                )
            return out

        return JSONResponse(
            {"Projects": await asyncio.to_thread(counts)}, headers={"Cache-Control": "no-store"}
        )

    async def config_json(request: Request) -> Response:
        return JSONResponse(ui_config(context, request), headers={"Cache-Control": "no-cache"})

    async def static(request: Request) -> Response:
        name = request.path_params["path"]
        found = files.get(name)
        if found is None:
            return JSONResponse({"Error": f"no such file: {name}"}, status_code=404)
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}
        if request.path_params["version"] != version:
            # An old page asking for an old file: serve the current one, but do not keep it.
            headers = {"Cache-Control": "no-cache"}
        return Response(found.data, media_type=found.media_type, headers=headers)

    async def list_width_css(request: Request) -> Response:
        """The remembered list width as a stylesheet of one rule, so the shell renders a message
        beside a list of that width at once (the page may carry no inline style; app.js keeps
        it from then on). One URL per width: cached for good."""
        px = request.path_params["px"]
        if px not in LIST_WIDTHS:
            return JSONResponse({"Error": f"no such list width: {px}"}, status_code=404)
        return Response(
            f".panes {{ --list-width: {px}px; }}\n",
            media_type=_TYPES[".css"],
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    async def favicon(request: Request) -> Response:
        icon = files["favicon.svg"]
        return Response(
            icon.data, media_type=icon.media_type, headers={"Cache-Control": "max-age=86400"}
        )

    return [
        Route("/", shell, methods=["GET", "HEAD"]),
        Route("/message/{id}", shell, methods=["GET", "HEAD"]),
        # Mailpit's UI path for a message; the API's /view/{ID}.html and .txt come first.
        Route("/view/{id}", shell, methods=["GET", "HEAD"]),
        Route("/ui/config", config_json, methods=["GET"]),
        Route("/ui/projects", project_list, methods=["GET"]),
        Route(STATIC_PREFIX + "/{version}/{path:path}", static, methods=["GET", "HEAD"]),
        Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
        Route("/ui/list-width/{px:int}.css", list_width_css, methods=["GET", "HEAD"]),
    ]
