"""Who may use the web UI and the APIs: admin logins, API keys, CSRF and the loopback rule.

The rule, in one place (`AuthGate` applies it to every HTTP request):

- `/livez`, `/readyz`, `/metrics`, `/favicon.ico` and the admin pages' static files are
  always open (no message content or secret is in them); so is `/confirm-address`, where
  the token of an address verification mail is the credential.
- Open mode: the HTTP listener is on loopback (127.0.0.0/8, ::1, localhost) and no admin user
  exists. The UI, the testing API and the admin pages work without logging in, as for local
  testing; the management API manages capture projects only (`open_mode_refusal`: no live
  projects, credentials, API keys or sending identities without an admin or a manage key).
  A server with any listener (HTTP or SMTP) on another address refuses to start without an
  admin user (`check_listeners`).
- Before any of this, api/guard.py refuses foreign Host headers (421) and state-changing API
  requests that are not JSON (415), on every route.
- Once an admin user exists, every other request needs either an admin session (the
  `postroom_session` cookie that `/login` sets) or an API key (`Authorization: Bearer <key>`).
  A key acts on its own project only: `read` opens the project's inbox in the testing API
  (`/api/v1` except send, and `/view/{ID}.html|.txt`), `send` opens `POST /api/v1/send`,
  `manage` opens `/api/v2` for that project (not creating, changing or deleting projects:
  that needs an admin); `send` also opens the native send API (`POST /api/v2/messages` and
  `/api/v2/messages/batch`), into the key's project. An admin session sees the default
  project's inbox at `/` (any other at `/p/<project>/`) and manages all.
- An API key is honoured in open mode too (it selects its project); a bad one is a 401 there
  as well, since the client asked to be someone.
- A key with the `read` scope can also sign in at `/login` (a key session): the cookie then
  acts as the key, on its project only, and also opens the inbox's pages of that project.
- `/p/<project>/...` names a project in the path: the inbox (`/p/P/`, `/p/P/message/ID`), its
  testing API (`/p/P/api/v1/...`) and `/p/P/view/...` of project P. An admin or open mode may
  name any existing project (404 otherwise); a key (or key session) its own project only (403).

API keys: a key checked once is kept (by the SHA-256 of its token) with the platform's change
counter read before it was checked (`PlatformStore.generation`, which the database raises in
the transaction of any change to API keys and projects, by whoever makes it: migrations 0007
and 0023). Every request with a key reads the counter again (one primary-key read, shared by
the requests that ask meanwhile: pipeline/shared_reads.py) and trusts the kept key only when
the counter has not moved; so a key revoked or changed from the CLI, the API or another
process is refused, or holds its new scopes, from the very next request. The counter read is
also handed to the send door's project snapshots (`watch_generation`), so a project changed
applies to the next key's send too; a state-changing request of an admin session or of open
mode reads it as well, so their sends see it at once too. Key sessions' keys are kept the same way.

Sessions are opaque random tokens kept in this process's memory (only their SHA-256 digest is
held), with an idle timeout and an absolute lifetime from the injected clock; logging out,
deleting the admin user or restarting the server ends them.

CSRF: every state-changing request authenticated by the cookie, every form post to `/login`,
`/logout` and `/admin/...`, must carry the token, in the `X-CSRF-Token` header (scripts) or
the `csrf_token` form field. A session's token is random and stored with the session
(synchroniser token); before login (the login form, open mode's admin forms) it is a token
signed with a per-process key, carried by the `postroom_csrf` cookie and repeated in the form
(signed double submit). The `postroom_csrf` cookie always holds the current token, readable by
the UI's scripts (SameSite=Strict, not HttpOnly), so that they can send it as the header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postroom.config import Config, HostPort
from postroom.core.clock import Clock
from postroom.core.errors import ConfigError, InvalidInput, NotFound, PostroomError
from postroom.core.platform import ApiKey
from postroom.core.platform import Scope as KeyScope
from postroom.pipeline.shared_reads import SharedReads
from postroom.pipeline.throttle import AuthThrottle
from postroom.platform.service import KEY_TOUCH_INTERVAL, PlatformService

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AuthGate",
    "AuthSettings",
    "Authenticator",
    "LoginRefused",
    "Principal",
    "SessionStore",
    "check_listen_policy",
    "check_listeners",
    "is_loopback",
    "key_project",
    "open_mode_live_refusal",
    "open_mode_refusal",
    "principal_of",
    "project_base",
    "safe_next",
]

log = logging.getLogger("postroom.auth")

SESSION_COOKIE = "postroom_session"
CSRF_COOKIE = "postroom_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
PRINCIPAL_KEY = "postroom.principal"
BASE_KEY = "postroom.base"  # "/p/<project>" when the path named the project, else absent
PROJECT_PREFIX = "/p/"
# What /p/<project> may lead to: the inbox's pages, its testing API and bodies.
PROJECT_PATHS = ("/api/v1/", "/message/", "/view/")
# The inbox's pages a key session opens (beside /api/v1 and /view/ID.html|.txt).
KEY_SESSION_PAGES = ("/message/", "/view/")
KEY_SESSION_MAIN = ("/ui/", "/login", "/logout")

# /confirm-address: the page and endpoint of an address verification mail, opened by whoever
# reads that mailbox; the token in it is the credential (api/address_confirm.py).
PUBLIC_PATHS = frozenset({"/livez", "/readyz", "/metrics", "/favicon.ico", "/confirm-address"})
PUBLIC_PREFIXES = ("/admin/static/",)
LOGIN_PATHS = frozenset({"/login", "/logout"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The native send API: a key with the send scope, acting on its own project.
SEND_PATHS = frozenset({"/api/v2/messages", "/api/v2/messages/batch"})
CAPTURE_ROUTES = "/api/v2/capture-routes"  # admins and open mode only (api/capture_routes.py)

ADMIN_CACHE_SECONDS = 2.0  # how long the list of admin users is trusted before reading it again
MAX_SESSIONS = 10_000  # beyond, the least recently used sessions are dropped
MAX_CHECKED_KEYS = 10_000  # beyond, the checked API keys are all forgotten
# A checked key is checked again (its last use recorded) after this long even when nothing
# changed; otherwise only when the platform's change counter moves.
KEY_RECHECK_SECONDS = KEY_TOUCH_INTERVAL.total_seconds()
MAX_FORM_BYTES = 1024 * 1024  # form bodies read to find the CSRF field

_LOGIN_FAILED = "invalid username or password"
_THROTTLED = "too many failed logins from your address: wait a few minutes, then try again"

PrincipalKind = Literal["open", "anonymous", "admin", "key"]
HtmlError = Callable[[Request, int, str], Awaitable[Response]]


# -- the loopback rule -----------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`; names other than
    localhost are not trusted to stay on loopback."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_listen_policy(address: HostPort, admin_count: int, option: str = "--http") -> None:
    """Raise ConfigError when a listener (`option`, default the UI and APIs) would listen
    beyond loopback with no admin user: then anyone who can reach the address could read the
    mail and manage the platform, or put mail in the inbox of an instance nobody has claimed."""
    if admin_count > 0 or is_loopback(address.host):
        return
    if option == "--http":
        danger = "anyone who can reach it could read all mail and manage every project"
    else:
        danger = (
            "every listener beyond loopback needs one (an instance without an admin is for "
            "one machine: its web UI and APIs are open to anyone on it)"
        )
    raise ConfigError(
        f"{option} {address} is not a loopback address, and there is no admin user yet: "
        f"{danger}. Create an admin first with `postroom admin create NAME` (same --data-dir "
        "or --database-url), or listen on 127.0.0.1"
    )


def check_listeners(listeners: Mapping[str, HostPort | None], admin_count: int) -> None:
    """check_listen_policy for every listener (`{"--smtp": address, ...}`; None = off)."""
    for option, address in listeners.items():
        if address is not None:
            check_listen_policy(address, admin_count, option)


# -- what open mode may not do ----------------------------------------------------------------

_OPEN_MODE_WHAT = {
    "smtp-credentials": "SMTP credentials (they let anyone who has them send as the project)",
    "ip-credentials": "IP credentials (they let a network send as the project without a password)",
    "api-keys": "API keys (they let their holder use the APIs as the project)",
    "ses-keys": "SES access keys (they let their holder send as the project)",
    "domains": "sending domains (verified identities the project may send from)",
    "verified-addresses": "verified addresses (identities the project may send from)",
    "queue": "queued deliveries (retried, held, released or cancelled)",
    "delivery-settings": "delivery settings",
    "webhooks": "webhooks (they send the project's events to any URL)",
    "reputation": "a paused project's sending (resumed by an admin only)",
    "suspension": "a project's suspension (suspended and resumed by an admin only)",
}
OPEN_MODE_ADVICE = (
    "Create an admin (`postroom admin create NAME`) and log in, or use an API key with the "
    "manage scope (`postroom apikey create --name NAME --scope manage --project PROJECT`)."
)


def open_mode_refusal(method: str, path: str) -> str | None:
    """Why open mode (no admin user: nobody logs in) may not make this management API request;
    None when it may. It may read everything and manage capture projects (handlers refuse live
    ones), never credentials, API keys or sending identities: with those, whoever reaches the
    loopback address (a page that got past the Host and content-type checks, say) could send
    real mail in a project's name. (The admin pages' forms still may: they need the CSRF token
    of a page of this origin.)"""
    if method in SAFE_METHODS or not (path == "/api/v2" or path.startswith("/api/v2/")):
        return None
    if path in SEND_PATHS:
        return None  # the handler sends into capture projects only in open mode
    if path == CAPTURE_ROUTES or path.startswith(CAPTURE_ROUTES + "/"):
        return None  # they move captured mail between capture projects only
    parts = path.rstrip("/").split("/")  # "", "api", "v2", "projects", PROJECT, WHAT, ...
    if parts[3:4] == ["projects"] and len(parts) <= 5:
        return None
    what = _OPEN_MODE_WHAT.get(parts[5] if len(parts) > 5 else "", "these settings")
    return (
        f"no admin user exists (open mode): {what} can be changed through the API only by an "
        f"admin or with a manage key. {OPEN_MODE_ADVICE}"
    )


def open_mode_live_refusal(action: str) -> JSONResponse:
    """The 403 for open mode creating, changing or deleting a live project (`action`)."""
    return _forbidden(
        f"no admin user exists (open mode), so {action}: a live project sends real mail, "
        f"which only an admin or a manage key may set up. {OPEN_MODE_ADVICE}",
        "Authorization",
    )


# -- settings, sessions, principals ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthSettings:
    idle_timeout: float = 12 * 3600.0
    lifetime: float = 7 * 86400.0
    secure_cookies: bool = False
    login_max_failures: int = 10
    login_window: float = 300.0

    @classmethod
    def from_config(cls, config: Config) -> AuthSettings:
        return cls(
            idle_timeout=config.session_idle_timeout,
            lifetime=config.session_lifetime,
            secure_cookies=config.secure_cookies,
            login_max_failures=config.login_max_failures,
            login_window=config.login_failure_window,
        )


@dataclass(slots=True)
class Session:
    username: str
    csrf: str = field(repr=False)
    created: float
    last_seen: float
    key_id: str = ""  # a key session: the API key it acts as (username is the key's name)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    """Admin sessions in memory, by the SHA-256 of their token (the token itself is only in
    the browser's cookie). Times come from the injected clock's monotonic seconds."""

    def __init__(
        self, clock: Clock, idle_timeout: float, lifetime: float, limit: int = MAX_SESSIONS
    ) -> None:
        self._clock = clock
        self.idle_timeout = idle_timeout
        self.lifetime = lifetime
        self.limit = limit
        self._sessions: dict[str, Session] = {}  # least recently used first

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, username: str, key_id: str = "") -> tuple[str, Session]:
        now = self._clock.monotonic()
        token = secrets.token_urlsafe(32)
        session = Session(username, secrets.token_urlsafe(32), now, now, key_id)
        self._purge(now)
        while len(self._sessions) >= self.limit:
            del self._sessions[next(iter(self._sessions))]
        self._sessions[_digest(token)] = session
        return token, session

    def _expired(self, session: Session, now: float) -> bool:
        return (
            now - session.last_seen >= self.idle_timeout or now - session.created >= self.lifetime
        )

    def get(self, token: str) -> Session | None:
        """The live session of `token` (its idle time restarts), or None."""
        if not token:
            return None
        key = _digest(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock.monotonic()
        if self._expired(session, now):
            del self._sessions[key]
            return None
        session.last_seen = now
        self._sessions[key] = self._sessions.pop(key)  # most recently used last
        return session

    def delete(self, token: str) -> bool:
        return self._sessions.pop(_digest(token), None) is not None

    def delete_user(self, username: str) -> int:
        doomed = [k for k, s in self._sessions.items() if s.username == username and not s.key_id]
        for key in doomed:
            del self._sessions[key]
        return len(doomed)

    def delete_key(self, key_id: str) -> int:
        doomed = [k for k, s in self._sessions.items() if s.key_id == key_id]
        for key in doomed:
            del self._sessions[key]
        return len(doomed)

    def _purge(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[key]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: `open` (open mode, no admin exists), `anonymous` (login required but not
    logged in), `admin` (a session) or `key` (an API key; with `session_token`, a key session
    signed in at /login, whose `username` is the key's name)."""

    kind: PrincipalKind
    username: str = ""
    key: ApiKey | None = None
    session_token: str = field(default="", repr=False)
    csrf: str = field(default="", repr=False)

    @property
    def project(self) -> str | None:
        """The only project an API key may act on; None for others."""
        return self.key.project_id if self.key is not None else None

    @property
    def has_session(self) -> bool:
        """Authenticated by the session cookie (an admin or a key session)."""
        return bool(self.session_token)


def principal_of(connection: HTTPConnection) -> Principal:
    """The principal the gate found for this request (`open` when no gate ran)."""
    found = connection.scope.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else Principal("open")


def key_project(connection: HTTPConnection) -> str | None:
    """The project of the API key that authenticated this request; None for an admin or in
    open mode (all projects)."""
    return principal_of(connection).project


def project_base(connection: HTTPConnection) -> str:
    """`/p/<project>` when the request named its project in the path, else ""."""
    found = connection.scope.get(BASE_KEY, "")
    return found if isinstance(found, str) else ""


def split_project_path(path: str) -> tuple[str, str] | None:
    """`/p/<project>/rest` -> (project, "/rest"); None for other paths."""
    if not path.startswith(PROJECT_PREFIX):
        return None
    name, _, rest = path[len(PROJECT_PREFIX) :].partition("/")
    if not name:
        return None
    return name, "/" + rest


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go to after login: never another site (`//host`, `/\\host`, schemes)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in value):
        return default
    return value


class LoginRefused(PostroomError):
    """A login failed: wrong credentials (401) or too many failures from the client (429).
    The message never says whether the user exists."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class KeyRefused(PostroomError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class _CheckedKey:
    """An API key as read, trusted while the change counter is still `generation`."""

    key: ApiKey
    generation: int  # the change counter read before the key was
    checked: float  # clock.monotonic() when the key was read


# -- the authenticator ------------------------------------------------------------------------


class Authenticator:
    """Admin logins, sessions, API keys and CSRF tokens, on the platform service."""

    def __init__(
        self,
        service: PlatformService,
        clock: Clock,
        settings: AuthSettings,
        listen: HostPort,
    ) -> None:
        self.service = service
        self.clock = clock
        self.settings = settings
        self.listen = listen
        self.loopback = is_loopback(listen.host)
        self.sessions = SessionStore(clock, settings.idle_timeout, settings.lifetime)
        self.throttle = AuthThrottle(settings.login_max_failures, settings.login_window, clock)
        self._key = secrets.token_bytes(32)  # signs pre-login CSRF tokens; new each start
        self._admins: frozenset[str] = frozenset()
        self._admins_read: float | None = None
        self._refreshing: asyncio.Lock | None = None
        self._keys: dict[str, _CheckedKey] = {}  # key sessions' keys, by key id
        self._checked: dict[str, _CheckedKey] = {}  # bearer keys, by their token's SHA-256
        self._generations: SharedReads[None, int] = SharedReads(self._read_generations)
        self._watchers: list[Callable[[int], None]] = []
        self._projects: frozenset[str] = frozenset()
        self._projects_read: float | None = None

    # admin users ---------------------------------------------------------------------------

    async def refresh(self) -> frozenset[str]:
        """Read the admin users' names again (they may be created or deleted meanwhile by
        `postroom admin`, in this process or another)."""
        admins = await asyncio.to_thread(self.service.list_admins)
        names = frozenset(a.username for a in admins)
        for gone in self._admins - names:
            self.sessions.delete_user(gone)
        self._admins, self._admins_read = names, self.clock.monotonic()
        return names

    async def admins(self) -> frozenset[str]:
        read = self._admins_read
        if read is not None and self.clock.monotonic() - read < ADMIN_CACHE_SECONDS:
            return self._admins
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            if self._admins_read != read:  # another request refreshed meanwhile
                return self._admins
            return await self.refresh()

    async def required(self) -> bool:
        """Must requests authenticate? Always off loopback; on loopback once an admin exists."""
        return not self.loopback or bool(await self.admins())

    async def check_listen_policy(
        self, others: Mapping[str, HostPort | None] | None = None, *, http: bool = True
    ) -> None:
        """ConfigError unless every listener (this HTTP one unless `http` is False, and
        `others`, e.g. the SMTP doors by option name) is on loopback or an admin user exists."""
        listeners = {"--http": self.listen if http else None, **(others or {})}
        check_listeners(listeners, len(await self.refresh()))

    # logins ---------------------------------------------------------------------------------

    async def login(self, username: str, password: str, client: str) -> tuple[str, Session]:
        """A new session for a correct username and password; LoginRefused otherwise (the
        same message whether or not the user exists). Failures count per client address."""
        # The attempt counts as a failure before the password is checked (and is given back
        # if it was right): parallel attempts cannot all pass the check before any failed.
        attempt = self.throttle.reserve(client)
        if attempt is None:
            log.warning("web login refused: too many failures", extra={"client": client})
            raise LoginRefused(429, _THROTTLED)
        try:
            user = await asyncio.to_thread(self.service.authenticate_admin, username, password)
        except (NotFound, InvalidInput):
            self.throttle.failed(client, attempt)
            log.warning("web login failed", extra={"client": client})
            raise LoginRefused(401, _LOGIN_FAILED) from None
        except BaseException:
            self.throttle.failed(client, attempt)  # settled; it stays counted, as before
            raise
        self.throttle.succeeded(client, attempt)
        self._admins = self._admins | {user.username}
        token, session = self.sessions.create(user.username)
        log.info("web login", extra={"user": user.username, "client": client})
        return token, session

    async def login_key(self, token: str, client: str) -> tuple[str, Session, ApiKey]:
        """A key session for an API key with the read scope (the inbox of its project);
        LoginRefused otherwise. Failures count with the password logins'."""
        attempt = self.throttle.reserve(client)
        if attempt is None:
            log.warning("web login refused: too many failures", extra={"client": client})
            raise LoginRefused(429, _THROTTLED)
        try:
            key = await asyncio.to_thread(self.service.authenticate_api_key, token)
        except (NotFound, InvalidInput):
            self.throttle.failed(client, attempt)
            log.warning("web login with an API key failed", extra={"client": client})
            raise LoginRefused(401, "invalid API key") from None
        except BaseException:
            self.throttle.failed(client, attempt)
            raise
        self.throttle.succeeded(client, attempt)
        if "read" not in key.scopes:
            raise LoginRefused(
                403, "this API key lacks the read scope, which opening the inbox needs"
            )
        session_token, session = self.sessions.create(key.name, key.id)
        log.info("web login with an API key", extra={"key": key.id, "client": client})
        return session_token, session, key

    def logout(self, token: str) -> None:
        if token:
            self.sessions.delete(token)

    def session(self, token: str) -> Session | None:
        session = self.sessions.get(token)
        if session is None or (not session.key_id and session.username not in self._admins):
            return None
        return session

    async def session_key(self, session: Session) -> ApiKey | None:
        """The API key of a key session, read again when the change counter moved; None
        (and every session of that key ended) once the key is revoked."""
        generation = await self.generation()
        cached = self._keys.get(session.key_id)
        if cached is not None and cached.generation == generation:
            return cached.key
        try:
            key: ApiKey | None = await asyncio.to_thread(self.service.store.api_key, session.key_id)
        except NotFound:
            key = None
        if key is None:
            self._keys.pop(session.key_id, None)
            self.sessions.delete_key(session.key_id)
            return None
        if len(self._keys) > MAX_SESSIONS:
            self._keys.clear()
        self._keys[session.key_id] = _CheckedKey(key, generation, self.clock.monotonic())
        return key

    async def project_exists(self, project: str) -> bool:
        """Whether the project exists: the list read within ADMIN_CACHE_SECONDS says so, else
        the list read again (a project just created is there at once, one just deleted within
        that time; only admins and open mode ask)."""
        read = self._projects_read
        fresh = read is not None and self.clock.monotonic() - read < ADMIN_CACHE_SECONDS
        if fresh and project in self._projects:
            return True
        projects = await asyncio.to_thread(self.service.list_projects)
        self._projects = frozenset(p.id for p in projects)
        self._projects_read = self.clock.monotonic()
        return project in self._projects

    # API keys -------------------------------------------------------------------------------

    def watch_generation(self, callback: Callable[[int], None]) -> None:
        """Call `callback` with every change counter read (e.g. the send door's project
        snapshots' `saw_generation`)."""
        self._watchers.append(callback)

    def _read_generations(self, questions: Sequence[None]) -> list[int]:
        return [self.service.store.generation()] * len(questions)

    async def generation(self) -> int:
        """The platform's change counter, from a read that began after this call."""
        generation = await self._generations.ask(None)
        for callback in self._watchers:
            callback(generation)
        return generation

    async def api_key(self, token: str) -> ApiKey:
        """The key `token` is; KeyRefused(401) naming what is wrong (never echoing it).
        Kept once checked, and trusted while the change counter has not moved."""
        if not token.strip():
            raise KeyRefused(401, "the Authorization header has no token after Bearer")
        generation = await self.generation()
        digest = _digest(token)
        checked = self._checked.get(digest)
        now = self.clock.monotonic()
        if (
            checked is not None
            and checked.generation == generation
            and now - checked.checked < KEY_RECHECK_SECONDS
        ):
            return checked.key
        self._checked.pop(digest, None)
        try:
            key = await asyncio.to_thread(self.service.authenticate_api_key, token)
        except InvalidInput:
            raise KeyRefused(
                401, "malformed API key: expected prk_<key id>_<secret> after Bearer"
            ) from None
        except NotFound:
            raise KeyRefused(401, "unknown or revoked API key") from None
        if len(self._checked) >= MAX_CHECKED_KEYS:
            self._checked.clear()
        # Kept under the counter read before the key was: a change committed since moved it.
        self._checked[digest] = _CheckedKey(key, generation, now)
        return key

    # CSRF -----------------------------------------------------------------------------------

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def anonymous_token(self) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(nonce)}"

    def valid_anonymous(self, token: str) -> bool:
        nonce, dot, mac = token.partition(".")
        if not dot or not nonce or len(token) > 200:
            return False
        return hmac.compare_digest(mac.encode(), self._sign(nonce).encode())

    def expected_csrf(self, connection: HTTPConnection, principal: Principal) -> str | None:
        """The token a state-changing request must carry, or None when it cannot have one."""
        if principal.kind == "admin" or principal.has_session:
            return principal.csrf
        cookie = connection.cookies.get(CSRF_COOKIE, "")
        return cookie if cookie and self.valid_anonymous(cookie) else None

    def page_token(self, connection: HTTPConnection) -> tuple[str, bool]:
        """(the token to put in a page's forms, whether the CSRF cookie must be set to it)."""
        principal = principal_of(connection)
        expected = self.expected_csrf(connection, principal)
        if expected is None:
            return self.anonymous_token(), True
        return expected, connection.cookies.get(CSRF_COOKIE) != expected

    # cookies --------------------------------------------------------------------------------

    def secure(self, connection: HTTPConnection) -> bool:
        return self.settings.secure_cookies or connection.url.scheme in ("https", "wss")

    def set_session_cookies(
        self, response: Response, connection: HTTPConnection, token: str, csrf: str
    ) -> None:
        secure = self.secure(connection)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(self.settings.lifetime),
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )
        self.set_csrf_cookie(response, connection, csrf)

    def set_csrf_cookie(self, response: Response, connection: HTTPConnection, csrf: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            csrf,
            path="/",
            secure=self.secure(connection),
            httponly=False,  # the UI's scripts read it to send X-CSRF-Token
            samesite="strict",
        )

    def clear_cookies(self, response: Response, connection: HTTPConnection) -> None:
        secure = self.secure(connection)
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax"
        )
        response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")


# -- what an API key may open -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyAccess:
    """Where a key's request goes: `project` selects the project's app (None: the main app)."""

    project: str | None


def key_access(method: str, path: str, key: ApiKey, session: bool = False) -> KeyAccess:
    """The scope a request needs and the project it acts on; KeyRefused(403) when the key
    may not make it. A key session (`session`) opens the inbox's pages of its project too."""
    verb = "GET" if method == "HEAD" else method

    def need(scope: KeyScope) -> None:
        if scope not in key.scopes:
            have = ", ".join(key.scopes) or "none"
            raise KeyRefused(403, f"this API key lacks the {scope} scope (it has: {have})")

    if path in SEND_PATHS:
        need("send")  # the handler sends into the key's project only
        return KeyAccess(None)
    if path == "/api/v2" or path.startswith("/api/v2/"):
        need("manage")
        parts = path.split("/")
        if len(parts) >= 5 and parts[3] == "projects" and parts[4]:
            if parts[4] != key.project_id:
                raise KeyRefused(
                    403,
                    f"this API key belongs to project {key.project_id!r}: it cannot manage "
                    f"project {parts[4]!r}",
                )
            if len(parts) == 5 and verb in ("PATCH", "PUT", "DELETE"):
                raise KeyRefused(
                    403, "changing or deleting a project needs an admin login, not an API key"
                )
        elif path.rstrip("/") == "/api/v2/projects" and verb != "GET":
            raise KeyRefused(403, "creating projects needs an admin login, not an API key")
        return KeyAccess(None)
    if path == "/api/v1/send" or (
        path.startswith("/api/v1/message/") and path.endswith("/release")
    ):
        need("send")  # a release sends mail too
        return KeyAccess(key.project_id)
    if path.startswith("/api/v1/") or (
        path.startswith("/view/") and path.endswith((".html", ".txt"))
    ):
        need("read")
        return KeyAccess(key.project_id)
    if session:
        if path == "/" or path.startswith(KEY_SESSION_PAGES):
            need("read")
            return KeyAccess(key.project_id)
        if path.startswith(KEY_SESSION_MAIN) or path == "/favicon.ico":
            return KeyAccess(None)
        raise KeyRefused(
            403, f"signed in with an API key of project {key.project_id!r}: only its inbox is open"
        )
    raise KeyRefused(403, "API keys open /api/v1 and /api/v2 only: log in to use the web pages")


# -- the gate -----------------------------------------------------------------------------------


def _unauthorized(message: str, error: str | None = None) -> JSONResponse:
    challenge = 'Bearer realm="postroom"'
    if error:
        challenge += f', error="{error}"'
    return JSONResponse(
        {"Error": message, "Field": "Authorization"},
        status_code=401,
        headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
    )


def _forbidden(message: str, field_name: str | None = None) -> JSONResponse:
    body = {"Error": message}
    if field_name:
        body["Field"] = field_name
    return JSONResponse(body, status_code=403, headers={"Cache-Control": "no-store"})


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or (path.startswith("/view/") and "." in path.rsplit("/", 1)[1]):
        return False
    return "text/html" in request.headers.get("accept", "")


def _return_to(request: Request) -> str:
    """Where to go back after logging in: the page asked for; for a form posted after the
    login expired, the page of its project (the action itself is not a page)."""
    path = project_base(request) + request.url.path
    if request.method in ("GET", "HEAD"):
        return path + (f"?{request.url.query}" if request.url.query else "")
    parts = path.split("/")
    if len(parts) >= 4 and parts[1:3] == ["admin", "projects"] and parts[3]:
        return f"/admin/projects/{parts[3]}"
    return "/admin/projects" if path.startswith("/admin") else "/"


def _request_line(request: Request) -> str:
    """`METHOD /path` for the log's `request` field (no query: it may carry tokens)."""
    return f"{request.method} {request.url.path}"


def _bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header; None when there is no such header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is larger than `limit` or the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _rebased(scope: Scope, project: str, path: str) -> Scope:
    """The scope of `/p/<project><path>` as the app sees it: `path`, the base remembered."""
    rebased = dict(scope)
    raw = scope.get("raw_path")
    base = PROJECT_PREFIX + quote(project, safe="")
    if isinstance(raw, bytes) and raw.startswith(PROJECT_PREFIX.encode()):
        _, _, rest = raw[len(PROJECT_PREFIX) :].partition(b"/")
        rebased["raw_path"] = b"/" + rest
    rebased["path"] = path
    rebased[BASE_KEY] = base
    return rebased


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class AuthGate:
    """ASGI: identify the caller, apply the rule above and CSRF, then hand the request to the
    main app, or to the app of an API key's project (`project_app`)."""

    def __init__(
        self,
        auth: Authenticator,
        app: ASGIApp,
        project_app: Callable[[str], ASGIApp],
        html_error: HtmlError | None = None,
        default_project: str = "default",
    ) -> None:
        self.auth = auth
        self.app = app
        self._project_app = project_app
        self._html_error = html_error
        self._default = default_project
        self._apps: dict[str, ASGIApp] = {}

    def _app_for(self, project: str | None) -> ASGIApp:
        if project is None or project == self._default:
            return self.app
        app = self._apps.get(project)
        if app is None:
            app = self._apps[project] = self._project_app(project)
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        named = split_project_path(path)
        if named is not None:
            selected, path = named
            if not (path == "/" or path.startswith(PROJECT_PATHS)):
                await JSONResponse(
                    {"Error": f"no such page: /p/<project> leads to the inbox only, not {path}"},
                    status_code=404,
                )(scope, receive, send)
                return
            scope = _rebased(scope, selected, path)
        request = Request(scope)
        principal, refused = await self._identify(request)
        if refused is not None:
            await refused(scope, receive, send)
            return
        assert principal is not None
        project: str | None = None
        if principal.key is not None:
            try:
                project = key_access(
                    request.method, path, principal.key, principal.has_session
                ).project
                if named is not None and named[0] != principal.key.project_id:
                    raise KeyRefused(
                        403,
                        f"this API key belongs to project {principal.key.project_id!r}: it "
                        f"cannot open project {named[0]!r}",
                    )
            except KeyRefused as exc:
                await _forbidden(str(exc))(scope, receive, send)
                return
        elif named is not None:
            if not await self.auth.project_exists(named[0]):
                await JSONResponse(
                    {"Error": f"no such project: {named[0]!r}", "Field": "project"},
                    status_code=404,
                    headers={"Cache-Control": "no-store"},
                )(scope, receive, send)
                return
            project = named[0]
        if principal.kind == "open":
            refusal = open_mode_refusal(request.method, path)
            if refusal is not None:
                await _forbidden(refusal, "Authorization")(scope, receive, send)
                return
        scope[PRINCIPAL_KEY] = principal
        if principal.kind in ("admin", "open") and request.method not in SAFE_METHODS:
            # An admin's or open mode's change or send: the counter a key's request reads
            # anyway, so that the send door's project snapshots see a change (a project
            # suspended by another process) at once, not after their TTL.
            await self.auth.generation()
        if request.method not in SAFE_METHODS and self._needs_csrf(principal, path):
            checked = await self._check_csrf(request, receive, principal)
            if isinstance(checked, Response):
                await checked(scope, receive, send)
                return
            receive = checked
        if principal.has_session and request.cookies.get(CSRF_COOKIE) != principal.csrf:
            send = self._with_csrf_cookie(request, send, principal.csrf)
        await self._app_for(project)(scope, receive, send)

    async def _identify(self, request: Request) -> tuple[Principal | None, Response | None]:
        token = _bearer(request)
        if token is not None:
            try:
                key = await self.auth.api_key(token)
            except KeyRefused as exc:
                log.info("API key refused", extra={"request": _request_line(request)})
                return None, _unauthorized(str(exc), "invalid_token")
            return Principal("key", key=key), None
        cookie = request.cookies.get(SESSION_COOKIE, "")
        required = await self.auth.required()
        session = self.auth.session(cookie) if cookie else None
        if session is not None and session.key_id:
            session_key = await self.auth.session_key(session)
            if session_key is not None:
                principal = Principal("key", session.username, session_key, cookie, session.csrf)
                return principal, None
            session = None
        if session is not None:
            return Principal("admin", session.username, None, cookie, session.csrf), None
        if not required:
            return Principal("open"), None
        if request.url.path in LOGIN_PATHS:
            return Principal("anonymous"), None
        if _wants_html(request):
            target = _return_to(request)
            return None, RedirectResponse(
                f"/login?next={quote(target, safe='/')}",
                status_code=303,
                headers={"Cache-Control": "no-store"},
            )
        expired = " (the login expired)" if cookie else ""
        return None, _unauthorized(
            f"authentication required{expired}: send Authorization: Bearer <API key>, or log "
            "in at /login"
        )

    @staticmethod
    def _needs_csrf(principal: Principal, path: str) -> bool:
        if principal.has_session:
            return True
        if principal.kind == "key":
            return False
        return principal.kind == "admin" or path in LOGIN_PATHS or path.startswith("/admin/")

    async def _check_csrf(
        self, request: Request, receive: Receive, principal: Principal
    ) -> Receive | Response:
        """The receive to go on with when the token is right, else the 403 to send."""
        expected = self.auth.expected_csrf(request, principal)
        given = request.headers.get(CSRF_HEADER)
        if given is None:
            content_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
            if content_type == "application/x-www-form-urlencoded":
                body = await _read_body(receive, MAX_FORM_BYTES)
                if body is None:
                    return JSONResponse({"Error": "the form is too large"}, status_code=413)
                values = parse_qs(body.decode("latin-1"), max_num_fields=1000)
                given = (values.get(CSRF_FIELD) or [""])[0]
                receive = _replay(body, receive)
        if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
            return receive
        log.warning("CSRF token missing or wrong", extra={"request": _request_line(request)})
        reason = "missing" if not given else "wrong or expired"
        if self._html_error is not None and not request.url.path.startswith("/api/"):
            return await self._html_error(
                request,
                403,
                f"The security token of this form is {reason}. This happens when a form "
                "was open for a long time, the server restarted, or the request came from "
                "another site. Go back, reload the page and try again.",
            )
        return _forbidden(
            f"CSRF token {reason}: send the X-CSRF-Token header with the value of "
            f"the {CSRF_COOKIE} cookie (or the {CSRF_FIELD} form field)",
            "X-CSRF-Token",
        )

    def _with_csrf_cookie(self, request: Request, send: Send, csrf: str) -> Send:
        carrier = Response()
        self.auth.set_csrf_cookie(carrier, request, csrf)
        cookie = [(k, v) for k, v in carrier.raw_headers if k == b"set-cookie"]

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cookie]
            await send(message)

        return wrapped
