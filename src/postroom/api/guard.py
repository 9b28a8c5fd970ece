"""The first two checks every HTTP request meets, before anyone asks who is calling.

**Host** (DNS rebinding). A web page on a name its author controls can make that name resolve
to 127.0.0.1 and then talk to Postroom as its own origin: the browser's same-origin rule no
longer protects the API. The only trace of the trick is the `Host` header, which carries the
attacker's name. So every request, on every route (UI, APIs, health), must name the server by
a loopback name (`localhost`, `*.localhost`, 127.0.0.0/8, `[::1]`), by the host of
`--public-url`, by an entry of `--allowed-hosts` (names, `*.suffix` wildcards, IP addresses or
networks), or by the address `--http` listens on; anything else gets 421 (a missing Host, 400).

**Content type** (cross-site "simple" requests). A page on any other site may send `POST` with
`text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data` (a form, or
`fetch(..., {mode: "no-cors"})`) without asking the server first. So every `POST`, `PUT` and
`PATCH` to the APIs must say `Content-Type: application/json` (which no page may send to
another origin without a CORS preflight, and Postroom answers none), else 415. A `DELETE`
must too when it carries a body or a content type; a bare `DELETE` has nothing to type, and no
page can send it to another origin without a preflight. The admin pages' forms
(`/login`, `/logout`, `/admin/...`) are not APIs: they post form encodings and are protected
by their CSRF token (api/auth.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from postroom.api.auth import is_loopback
from postroom.config import Config, HostPort, public_url_host

__all__ = ["HostRule", "RequestGuard", "content_type_refusal", "host_name"]

FORM_PATHS = frozenset({"/login", "/logout"})
FORM_PREFIX = "/admin/"
JSON_TYPE = "application/json"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def host_name(header: str) -> str | None:
    """The name a Host header gives, lower case, without port, brackets or final dot; None
    when it is not shaped like a host (empty, a path, spaces, a bad port)."""
    value = header.strip()
    if not value or any(ch in value for ch in " /\\@?#") or len(value) > 300:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
        rest = ":" + port
    elif ":" in value:
        return None  # an IPv6 address must be in brackets
    else:
        name, rest = value, ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6):
        return None
    name = name.rstrip(".").lower()
    return name or None


@dataclass(frozen=True, slots=True)
class HostRule:
    """The names this server answers to besides loopback ones."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # from "*.example.com": ".example.com"
    networks: tuple[Network, ...] = ()

    @classmethod
    def build(cls, entries: Iterable[str], listen: HostPort | None = None) -> HostRule:
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[Network] = []
        for entry in entries:
            text = entry.strip().rstrip(".").lower()
            if not text:
                continue
            if text.startswith("*."):
                suffixes.append(text[1:])
                continue
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                names.add(text)
        if listen is not None:
            try:
                address = ipaddress.ip_address(listen.host.strip("[]"))
            except ValueError:
                if listen.host:
                    names.add(listen.host.rstrip(".").lower())
            else:
                if not address.is_unspecified:  # 0.0.0.0 and :: are not names of anything
                    networks.append(ipaddress.ip_network(address))
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    @classmethod
    def from_config(cls, config: Config) -> HostRule:
        entries = list(config.allowed_hosts)
        if config.public_url:
            entries.append(public_url_host(config.public_url))
        return cls.build(entries, config.http)

    def allows(self, name: str) -> bool:
        if is_loopback(name) or name in self.names:
            return True
        if any(name.endswith(suffix) for suffix in self.suffixes):
            return True
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None and length.strip() not in ("", "0"):
        return True
    return _header(scope, b"transfer-encoding") is not None


def content_type_refusal(scope: Scope) -> str | None:
    """Why this request's content type is refused (None: it is fine)."""
    method: str = scope["method"]
    path: str = scope["path"]
    if method in _SAFE or path in FORM_PATHS or path.startswith(FORM_PREFIX):
        return None
    given = _header(scope, b"content-type")
    if method == "DELETE" and given is None and not _has_body(scope):
        return None
    media_type = (given or "").split(";", 1)[0].strip().lower()
    if media_type == JSON_TYPE:
        return None
    got = f"got {media_type!r}" if media_type else "none was given"
    return (
        f"{method} {path} takes JSON only: send Content-Type: {JSON_TYPE} ({got}). "
        "Form and text bodies are refused so that other web sites cannot post to this server."
    )


class RequestGuard:
    """ASGI: refuse foreign Host headers (421, 400 when missing) and state-changing API
    requests that are not JSON (415), before anything else runs."""

    def __init__(self, app: ASGIApp, hosts: HostRule) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"host")
        name = host_name(header) if header is not None else None
        if header is None or name is None:
            what = "missing" if header is None else "malformed"
            await _refuse(400, f"the Host header is {what}", "Host")(scope, receive, send)
            return
        if not self.hosts.allows(name):
            message = (
                f"this server does not answer to the name {name!r} (Host header). Use "
                "localhost or 127.0.0.1, or give the name with --public-url or --allowed-hosts. "
                "Requests naming other hosts are refused so that web pages cannot reach this "
                "server by DNS rebinding."
            )
            await _refuse(421, message, "Host")(scope, receive, send)
            return
        refusal = content_type_refusal(scope)
        if refusal is not None:
            await _refuse(415, refusal, "Content-Type")(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _refuse(status: int, message: str, field: str) -> JSONResponse:
    return JSONResponse(
        {"Error": message, "Field": field},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )
