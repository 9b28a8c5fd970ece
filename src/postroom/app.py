"""Composition root: configuration -> adapters -> services -> listeners -> background jobs.

The only module that builds concrete adapters (store, clock, SMTP listeners, HTTP server).

`Application.start()` opens the parts listed in `Application._parts` in that order, each on
one `contextlib.AsyncExitStack`: when a part fails (a port taken, no admin for a public
address, ...) every part opened before it is closed again, newest first, and the error is
raised. `stop()` closes them all the same way. Adding a subsystem is one line in `_parts`
plus its method `async def _name(self, stack)`, which opens what it needs and registers how
to close it on `stack`:

- a listener: `await self._listen(stack, "door", listener)` (anything with `port` and
  `async stop()`, already listening); it is found again with `app.listener("door")` and
  stopped in reverse order of start;
- a periodic job: `self.jobs.every("name", seconds, fn)` (`fn` an async callable; a failing
  run is logged and the job runs again at its next interval);
- a long-running worker: `self.jobs.worker("name", fn)` (restarted with a backoff when it
  crashes, the exception logged).

Jobs run under one `Supervisor` (postroom/supervisor.py) on the injected clock; they begin
once every listener is open and are the first thing stopped (each cancelled and awaited).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from starlette.routing import BaseRoute, Route

from postroom.api.app import SecurityHeaders, build_app
from postroom.api.auth import Authenticator, AuthGate, AuthSettings
from postroom.api.context import ApiContext
from postroom.api.guard import HostRule, RequestGuard
from postroom.api.limits import SEND_PATHS, BodyLimit, BodyLimits
from postroom.api.serving import HttpListener, serve_config
from postroom.bounces.verp import Verp
from postroom.checks.http_probe import HttpProbe
from postroom.config import Config, HostPort, system_sender
from postroom.core.clock import Clock, SystemClock
from postroom.core.errors import ConfigError
from postroom.core.ids import new_id
from postroom.core.platform import DEFAULT_PROJECT, PlatformStore
from postroom.core.ports import MessageStore
from postroom.core.reputation import Thresholds, parse_rates
from postroom.core.types import DoorName
from postroom.delivery.due import DueSchedule
from postroom.delivery.loop import DeliveryLoop
from postroom.delivery.mta_sts import HttpsPolicyFetcher, MtaSts
from postroom.delivery.notices import Notices
from postroom.delivery.pools import pool_names, project_pools
from postroom.delivery.return_path import ReturnPaths
from postroom.delivery.schedule import RetrySchedule
from postroom.delivery.shaping import Shaper, SiteStatus, load_rules
from postroom.delivery.tls_reports import TlsReporting
from postroom.delivery.worker import (
    DeliverySettings,
    DeliveryWorker,
    Relay,
    parse_routes,
    parse_tls_policies,
)
from postroom.dns.host_addresses import Resolve, dns_resolve, system_resolve
from postroom.doors.capture import CaptureDoor, CaptureRouter
from postroom.doors.chaos import Chaos
from postroom.doors.common import SessionLog
from postroom.doors.http_send import HttpSendDoor
from postroom.doors.submission import SubmissionDoor
from postroom.events.bus import EventBus, MessageEvent
from postroom.events.feed import ChangeFeed
from postroom.metrics import Metrics
from postroom.pipeline.acceptance import AcceptancePipeline
from postroom.pipeline.complete import complete_message
from postroom.pipeline.projects import ProjectDirectory
from postroom.pipeline.quota import QuotaTracker
from postroom.pipeline.signing import SignerCache
from postroom.pipeline.submission import SubmissionSteps
from postroom.pipeline.throttle import AuthThrottle
from postroom.platform.address_mail import AddressVerifier, ProofMailSettings
from postroom.platform.factory import LazyResolver
from postroom.platform.service import PlatformService
from postroom.reputation.guard import ReputationGuard
from postroom.smtp.protocol import SessionPolicy
from postroom.smtp.server import Listener, SmtpServer
from postroom.smtp.spool import MemoryBudget, Spool
from postroom.smtp.tls import ReloadableContext, generate_self_signed
from postroom.storage.engine import open_platform_store, open_store
from postroom.storage.pg_upkeep import UPKEEP_INTERVAL
from postroom.storage.private import private_dir, warn_if_loose
from postroom.storage.store import SqlMessageStore
from postroom.supervisor import Supervisor

log = logging.getLogger("postroom")


def freeze_startup_objects() -> None:
    """Collect once, then move every object the process holds into the garbage collector's
    permanent generation (`gc.freeze`), so that its full collections stop walking them.

    What a started server holds is mostly its modules' functions, classes and tables
    (~126,000 objects once every module is imported), kept until the process ends. A full
    (generation 2) collection walked all of it: 30-60 ms on an idle machine, 100-140 ms at a
    load of 3.4-6 on two cores, in whichever request was allocating then, so a search's
    first page could take over 100 ms however fast its statements were. Measured with
    `postroom serve` on bench/search_million.py's million messages, 293 searches of that
    bench's queries over HTTP (`GET /api/v1/search?counts=skip`) per server, a gc.callbacks
    hook timing each collection, 2 interleaved rounds at load 3.4-3.9: without the freeze one
    full collection during the searches (137 and 122 ms), requests p99 95 and 73 ms, longest
    178 and 158; with it none, p99 43 and 55, longest 58 and 78 (medians 10.4-10.5 -> 7.3-9.4
    ms). A full collection after the freeze walks only what was made since: 9.8 ms at load
    5.7 (one run).
    The price: a reference cycle among the frozen objects is never collected (they are what a
    server keeps anyway; objects freed by their reference counts are freed as before). Called
    by `Application.run` once started, not by `start` (tests start many applications in one
    process), and undone (`gc.unfreeze`) when it stops."""
    gc.collect()
    gc.freeze()


def bind_tcp(address: HostPort) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {address}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


MAINTENANCE_INTERVAL = 5.0  # seconds between IP credential refreshes
TLS_REPORT_INTERVAL = 60.0  # seconds between writes of the TLS-RPT counts gathered
SUPPRESSION_INTERVAL = 2.0  # seconds between reads of the event log for the suppression list
FEED_INTERVAL = 0.5  # seconds between looks for messages stored by other processes
WEBHOOK_INTERVAL = 1.0  # seconds between looks for due webhook requests
WEBHOOK_PRUNE_INTERVAL = 3600.0  # seconds between prunes of old webhook rows and requests


def _host_resolve(cfg: Config) -> Resolve:
    """How outgoing HTTP requests (link check, webhooks) find a host's addresses: DNS through
    --resolver when set, else the system's."""
    from postroom.platform.factory import LazyResolver

    return dns_resolve(LazyResolver(cfg.resolver)) if cfg.resolver else system_resolve


def _link_probe(cfg: Config) -> HttpProbe:
    """The link check's HTTP client."""
    return HttpProbe(allow_private=cfg.link_check_allow_private, resolve=_host_resolve(cfg))


class Listening(Protocol):
    """A listener the application opened: its bound port, and how to stop it."""

    @property
    def port(self) -> int: ...

    async def stop(self) -> None: ...


Part = Callable[[contextlib.AsyncExitStack], Awaitable[None]]
_T = TypeVar("_T")


class Application:
    def __init__(
        self, config: Config, clock: Clock | None = None, platform: PlatformStore | None = None
    ) -> None:
        """`platform`: a PlatformStore to use instead of opening the SQL one (tests)."""
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.bus = EventBus()
        self.jobs = Supervisor(self.clock)
        # Where every SMTP listener keeps message data as it arrives (smtp/spool.py).
        self.spool = Spool(
            Path(config.data_dir) / "spool",
            threshold=config.smtp_spool_threshold,
            budget=MemoryBudget(config.smtp_memory_budget),
        )
        # Set by the parts as start() opens them (None before, and after a failed start).
        self.store: MessageStore | None = None
        self.platform: PlatformStore | None = platform
        self.platform_service: PlatformService | None = None
        self.auth: Authenticator | None = None
        self.pipeline: AcceptancePipeline | None = None
        self.tls: ReloadableContext | None = None
        self.delivery: DeliveryWorker | None = None
        self.delivery_loop: DeliveryLoop | None = None
        self.webhook_service: Any = None  # events/webhook_service.py, with a SQL store
        self.webhook_worker: Any = None  # events/webhook_worker.py, with --webhooks
        self.reputation: ReputationGuard | None = None  # reputation/guard.py, with a SQL store
        self._steps: SubmissionSteps | None = None
        self._submission_door: SubmissionDoor | None = None
        self._context: ApiContext | None = None
        self._verifier: AddressVerifier | None = None
        self._listeners: dict[DoorName, Listening] = {}
        # Errors injected into the capture door on purpose (--enable-chaos); tests may give
        # it a seeded random generator before start.
        self.chaos = Chaos() if config.enable_chaos else None
        # The capture door's routes (set when the door opens); the admin pages and
        # /api/v2/capture-routes tell it when the stored rules change.
        self.capture_router: CaptureRouter | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._ready = False

    # The composition root ----------------------------------------------------------------

    def _parts(self) -> list[Part]:
        """Every subsystem, in the order they open (they close in reverse); each role of
        `--roles` is one line. A part whose option is off opens nothing."""
        return [
            self._open_store,
            self._open_platform,
            self._check_access,
            self._build_pipeline,
            self._reputation_guard,
            *self._role("smtp", self._listen_capture, self._listen_submission, self._listen_mx),
            *self._role(
                "http",
                self._listen_http,
                self._listen_ses,
                self._change_feed,
                self._retention,
                self._domain_checks,
                self._suppression_feed,
            ),
            *self._role("delivery", self._delivery, self._webhook_worker),
            self._run_jobs,
        ]

    def _role(self, role: str, *parts: Part) -> tuple[Part, ...]:
        """These parts if this process has `role` (--roles), else none."""
        return parts if role in self.config.roles else ()

    async def start(self) -> None:
        """Open every part in order. If one fails, the parts already open are closed again
        (newest first) before the error is raised: nothing is left listening or running."""
        if self._stack is not None:
            raise RuntimeError("the application has started already")
        self.jobs = Supervisor(self.clock)
        async with contextlib.AsyncExitStack() as stack:
            for part in self._parts():
                await part(stack)
            self._stack = stack.pop_all()
        self._ready = True
        cfg = self.config
        log.info(
            "postroom ready",
            extra={
                "smtp": f"{cfg.smtp.host}:{self.smtp_port}",
                "http": f"{cfg.http.host}:{self.http_port}",
            },
        )

    async def stop(self) -> None:
        """Close every part in reverse order of start: the background jobs (each cancelled
        and awaited), the listeners, then the stores. Safe to call twice."""
        self._ready = False
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Start, serve until `stop` is set, then stop (also when start fails half way)."""
        # The handler is in place before the doors open: SIGHUP's default action would end a
        # server still starting (its listeners already accepting). Before the certificate is
        # loaded there is nothing to reload; it is read from disk when loaded.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_tls)
        frozen = False
        try:
            await self.start()
            freeze_startup_objects()
            frozen = True
            await stop.wait()
        finally:
            if frozen:
                gc.unfreeze()
            await self.stop()

    # Looking things up -------------------------------------------------------------------

    def ready(self) -> bool:
        """Every part has started and not stopped yet."""
        return self._ready

    def listener(self, door: DoorName) -> Listening:
        """The listener of this door ("capture", "submission", "submissions", "mx", "http",
        "ses"); KeyError when that door is not open."""
        try:
            return self._listeners[door]
        except KeyError:
            raise KeyError(f"no {door} listener is open") from None

    def listening(self) -> tuple[DoorName, ...]:
        """The doors open now, in the order they were opened."""
        return tuple(self._listeners)

    def _port(self, door: DoorName) -> int:
        found = self._listeners.get(door)
        return found.port if found is not None else 0

    @property
    def smtp_port(self) -> int:
        return self._port("capture")

    @property
    def submission_port(self) -> int:
        return self._port("submission")

    @property
    def submissions_port(self) -> int:
        return self._port("submissions")

    @property
    def mx_port(self) -> int:
        return self._port("mx")

    @property
    def http_port(self) -> int:
        return self._port("http")

    async def refresh_ip_credentials(self) -> None:
        """Read the IP credentials again now (the submission doors also do it every
        MAINTENANCE_INTERVAL seconds)."""
        if self._submission_door is not None:
            await self._submission_door.refresh_ip_credentials()

    def invalidate_projects(self) -> None:
        """Forget the cached views of projects (after changing the platform store directly)."""
        if self._steps is not None:
            self._steps.directory.invalidate()

    async def _listen(self, stack: contextlib.AsyncExitStack, door: DoorName, opened: Any) -> None:
        """Register a listener that is already listening: found by `listener(door)`, stopped
        with the other parts."""
        listener: Listening = opened
        self._listeners[door] = listener

        async def close() -> None:
            self._listeners.pop(door, None)
            await listener.stop()

        stack.push_async_callback(close)

    # The parts ---------------------------------------------------------------------------

    async def _open_store(self, stack: contextlib.AsyncExitStack) -> None:
        cfg = self.config
        store = await asyncio.to_thread(
            open_store,
            cfg,
            self.clock,
            writer_process=cfg.writer_process,
            complete=complete_message,
        )
        self.store = store
        stack.push_async_callback(store.close)
        if isinstance(store, SqlMessageStore) and store.backend == "postgresql":
            # What autovacuum would do, when the server runs without it (pg_upkeep.py).
            async def upkeep() -> None:
                await asyncio.to_thread(store.upkeep)

            self.jobs.every("pg-upkeep", UPKEEP_INTERVAL, upkeep, first=UPKEEP_INTERVAL)
            interval = cfg.block_summaries_interval
            if interval > 0:
                # Which byte pairs each block of messages holds, made by a child process
                # (storage/block_summaries.py): searches for terms of 1-2 characters.
                async def summarise() -> None:
                    await store.summarise_blocks()

                self.jobs.every("pg-blocks", interval, summarise, first=interval)

    async def _open_platform(self, stack: contextlib.AsyncExitStack) -> None:
        if self.platform is not None:
            return  # given by the caller, who closes it
        sql_platform = await asyncio.to_thread(open_platform_store, self.config)
        self.platform = sql_platform

        async def close() -> None:
            await asyncio.to_thread(sql_platform.close)
            self.platform = None

        stack.push_async_callback(close)

    async def _check_access(self, stack: contextlib.AsyncExitStack) -> None:
        """Build the platform service and the authenticator; refuse to listen beyond loopback
        (HTTP or any SMTP door) while no admin user exists (ConfigError, nothing left open)."""
        from postroom.platform.factory import platform_service

        cfg, platform = self.config, self._need(self.platform)
        service = platform_service(cfg, platform, self.clock)
        auth = Authenticator(service, self.clock, AuthSettings.from_config(cfg), cfg.http)
        smtp, http = "smtp" in cfg.roles, "http" in cfg.roles
        await auth.check_listen_policy(
            {
                "--smtp": cfg.smtp if smtp else None,
                "--submission": cfg.submission if smtp else None,
                "--submissions": cfg.submissions if smtp else None,
                "--ses": cfg.ses if http else None,
                "--mx": cfg.mx if smtp else None,
            },
            http=http,
        )
        self.platform_service, self.auth = service, auth

    async def _build_pipeline(self, stack: contextlib.AsyncExitStack) -> None:
        cfg, platform, store = self.config, self._need(self.platform), self._need(self.store)
        steps = SubmissionSteps(
            ProjectDirectory(platform, self.clock),
            QuotaTracker(platform, self.clock, self.metrics),
            SignerCache(self.clock),
            cfg.hostname,
            routed=frozenset(parse_routes(cfg.routes)),
        )
        self._steps = steps
        if self.auth is not None:  # the HTTP doors' key checks read the change counter
            self.auth.watch_generation(steps.directory.saw_generation)
        self.pipeline = AcceptancePipeline(
            store, self.clock, self.bus, self.metrics, steps, _suppression_check(store, self.clock)
        )
        self.tls = self._tls_context()

    async def _listen_capture(self, stack: contextlib.AsyncExitStack) -> None:
        cfg = self.config
        capture_tls = self.tls if (cfg.smtp_tls or cfg.smtp_require_tls) else None
        listener = Listener(
            door="capture",
            host=cfg.smtp.host,
            port=cfg.smtp.port,
            policy=self._policy(capture_tls is not None),
            ssl_context=capture_tls.context if capture_tls is not None else None,
            max_connections=cfg.max_connections,
            max_per_ip=cfg.max_connections_per_ip,
        )
        capture = CaptureDoor(
            self._need(self.pipeline),
            SessionLog(self.metrics),
            chaos=self.chaos,
            router=await self._capture_router(),
        )
        server = SmtpServer(listener, capture, clock=self.clock, spool=self.spool)
        await server.start()
        await self._listen(stack, "capture", server)

    async def _capture_router(self) -> CaptureRouter | None:
        """The capture routes (--capture-route, then the stored ones); ConfigError when an
        option names a project that does not exist or is not a capture project."""
        from postroom.core.capture_routes import parse_route

        cfg, platform, store = self.config, self._need(self.platform), self.store
        options = [parse_route(text) for text in cfg.capture_route]
        projects = {p.id: p.mode for p in await asyncio.to_thread(platform.list_projects)}
        for rule in options:
            if rule.project not in projects:
                raise ConfigError(
                    f"--capture-route {rule.text}: there is no project {rule.project!r}; "
                    f"create it first (postroom project create {rule.project})"
                )
            if projects[rule.project] != "capture":
                raise ConfigError(
                    f"--capture-route {rule.text}: project {rule.project!r} is a live "
                    "project; capture routes lead into capture projects only"
                )
        stored = store.capture_routes.list if isinstance(store, SqlMessageStore) else None
        if not options and stored is None:
            return None

        def modes() -> dict[str, str]:
            return {p.id: p.mode for p in platform.list_projects()}

        self.capture_router = CaptureRouter(options, stored, modes, self.clock)
        return self.capture_router

    async def _listen_submission(self, stack: contextlib.AsyncExitStack) -> None:
        """The submission doors (587 with STARTTLS, 465 with implicit TLS), when configured,
        and the periodic re-read of IP credentials."""
        cfg = self.config
        if cfg.submission is None and cfg.submissions is None:
            return
        steps, tls = self._need(self._steps), self._need(self.tls)
        door = SubmissionDoor(
            self._need(self.platform),
            self._need(self.pipeline),
            self.clock,
            AuthThrottle(cfg.submission_auth_max_failures, cfg.submission_auth_window, self.clock),
            self.metrics,
            SessionLog(self.metrics),
            directory=steps.directory,
            routed=steps.routed,
        )
        stack.push_async_callback(door.close)
        self._submission_door = door
        await door.refresh_ip_credentials()
        self.jobs.every(
            "ip-credentials",
            MAINTENANCE_INTERVAL,
            door.refresh_ip_credentials,
            first=MAINTENANCE_INTERVAL,
        )
        names: tuple[tuple[DoorName, HostPort | None], ...] = (
            ("submission", cfg.submission),
            ("submissions", cfg.submissions),
        )
        for name, address in names:
            if address is None:
                continue
            implicit = name == "submissions"
            listener = Listener(
                door=name,
                host=address.host,
                port=address.port,
                policy=self._submission_policy(implicit),
                ssl_context=tls.context,
                implicit_tls=implicit,
                max_connections=cfg.max_connections,
                max_per_ip=cfg.max_connections_per_ip,
            )
            server = SmtpServer(listener, door, clock=self.clock, spool=self.spool)
            await server.start()
            await self._listen(stack, name, server)

    async def _listen_mx(self, stack: contextlib.AsyncExitStack) -> None:
        """The inbound MX door (--mx, SQL stores): reports to VERP return paths, mail for
        verified domains."""
        from postroom.doors.mx import MxDoor

        cfg, store = self.config, self.store
        if cfg.mx is None:
            return
        if not isinstance(store, SqlMessageStore):
            raise ConfigError("--mx needs the SQL message store (its queue and event log)")
        door = MxDoor(
            self._need(self.platform),
            self._need(self.pipeline),
            store.queue,
            store.queue.record_reports,
            await asyncio.to_thread(Verp.load_or_create, Path(cfg.data_dir)),
            self.clock,
            SessionLog(self.metrics),
            bounce_domain=cfg.bounce_domain,
            max_report_size=cfg.max_message_size,
        )
        listener = Listener(
            door="mx",
            host=cfg.mx.host,
            port=cfg.mx.port,
            policy=self._mx_policy(),
            ssl_context=self._need(self.tls).context,
            max_connections=cfg.max_connections,
            max_per_ip=cfg.max_connections_per_ip,
        )
        server = SmtpServer(listener, door, clock=self.clock, spool=self.spool)
        await server.start()
        await self._listen(stack, "mx", server)

    async def _listen_http(self, stack: contextlib.AsyncExitStack) -> None:
        """The web UI, /api/v1 (Mailpit's), /api/v2 and the admin pages on --http."""
        cfg = self.config
        sock = bind_tcp(cfg.http)
        try:
            app = self._http_app(sock.getsockname()[1])
            # X-Forwarded-For and X-Forwarded-Proto are believed only from --trusted-proxies
            # (uvicorn's default would believe any process on 127.0.0.1).
            proxies = [
                str(ipaddress.ip_network(p.strip("[]"), strict=False)) for p in cfg.trusted_proxies
            ]
            options = serve_config(
                app,
                timeout_graceful_shutdown=2,
                proxy_headers=bool(proxies),
                forwarded_allow_ips=proxies,
            )
            listener = HttpListener(options, sock, f"HTTP listener on {cfg.http}")
        except BaseException:
            sock.close()
            raise
        await listener.start()
        await self._listen(stack, "http", listener)

    def _http_app(self, http_port: int) -> Any:
        cfg, clock = self.config, self.clock
        store, platform = self._need(self.store), self._need(self.platform)
        pipeline, steps = self._need(self.pipeline), self._need(self._steps)
        service, auth = self._need(self.platform_service), self._need(self.auth)
        context = ApiContext(
            config=cfg,
            store=store,
            http_send=HttpSendDoor(pipeline, cfg.hostname, steps.directory),
            bus=self.bus,
            metrics=self.metrics,
            clock=clock,
            ready=self.ready,
            started=clock.monotonic(),
            database_label=_database_label(cfg),
            smtp_port=lambda: self.smtp_port,
            storage_problem=pipeline.write_health.problem,
            chaos=self.chaos,
            link_probe=_link_probe(cfg),
            resolver=LazyResolver(cfg.resolver or None),
        )
        self._context = context
        mail = ProofMailSettings.from_config(cfg, http_port)
        verifier = AddressVerifier(service, store, clock, mail)
        self._verifier = verifier
        suppression_list = None
        if isinstance(store, SqlMessageStore):
            from postroom.suppression.service import SuppressionList

            suppression_list = SuppressionList(store.suppressions, clock)
        delivery_views = None
        if isinstance(store, SqlMessageStore):
            delivery_views = (store.queue_admin, store.events, store, store.queue, self._sites_of)
        webhooks = self._webhooks(store, service) if isinstance(store, SqlMessageStore) else None
        admin = _admin_pages(
            service,
            auth,
            cfg,
            verifier,
            suppression_list,
            delivery_views,
            webhooks,
            self.reputation,
        )
        management = _management_routes(service, verifier)
        capture_routes = self._capture_route_service(store, service)
        if capture_routes is not None:
            from postroom.api.capture_routes import routes as capture_route_api

            management += capture_route_api(capture_routes)
            if admin is not None:
                from postroom.web.admin.capture_route_pages import capture_route_routes

                admin.routes.extend(capture_route_routes(admin.pages, capture_routes))
        if isinstance(store, SqlMessageStore):
            management += _event_routes(service, store, clock, pool_names(cfg))
            management += _webhook_routes(webhooks)
            if self.reputation is not None:
                management += _reputation_routes(service, self.reputation)
            management += _queue_routes(service, store, clock, self._sites_of)
            management += _tls_report_routes(cfg, store, clock)
        sending = _sending_routes(context, steps, platform)
        hot: list[BaseRoute] = [r for r in sending if isinstance(r, Route) and r.path in SEND_PATHS]
        main_app = build_app(
            context,
            extra_routes=[
                *_web_routes(context, service),
                *(admin.routes if admin else []),
                *management,
                *(r for r in sending if r not in hot),
            ],
            first_routes=hot,
        )

        def project_app(project: str) -> Any:
            # The testing API and inbox of one project: for its API keys and key sessions,
            # and for /p/<project>/ (api/auth.py).
            project_context = replace(context, project=project)
            return build_app(project_context, _web_routes(project_context, service))

        served = SecurityHeaders(
            RequestGuard(
                BodyLimit(
                    AuthGate(auth, main_app, project_app, admin.error_page if admin else None),
                    BodyLimits.from_max_message_size(cfg.max_message_size),
                ),
                HostRule.from_config(cfg),
            )
        )
        if not cfg.ses_prefix:
            return served
        # The SES-compatible API under --ses-prefix, before the JSON-only and session rules
        # (its own gate checks Host and SigV4; api/ses_app.py).
        from postroom.api.ses_app import SesPrefix
        from postroom.api.ses_setup import build_ses_gate

        gate = build_ses_gate(
            context, steps, service, platform, verifier, HostRule.from_config(cfg), cfg.ses_prefix
        )
        return SesPrefix(cfg.ses_prefix, gate, served)

    def _capture_route_service(self, store: MessageStore, service: PlatformService) -> Any:
        """The stored capture routes' service (SQL stores): it tells this process's capture
        door at once when a rule changes."""
        if not isinstance(store, SqlMessageStore):
            return None
        from postroom.core.capture_routes import parse_route
        from postroom.platform.capture_routes import CaptureRouteService

        def changed() -> None:
            if self.capture_router is not None:
                self.capture_router.invalidate()

        options = [parse_route(text) for text in self.config.capture_route]
        return CaptureRouteService(
            store.capture_routes, service.get_project, self.clock, options, changed
        )

    async def _listen_ses(self, stack: contextlib.AsyncExitStack) -> None:
        """The SES-compatible API on --ses, when configured."""
        cfg = self.config
        if cfg.ses is None:
            return
        from postroom.api.ses_setup import start_ses_listener

        listener = await start_ses_listener(
            bind_tcp(cfg.ses),
            self._need(self._context),
            self._need(self._steps),
            self._need(self.platform_service),
            self._need(self.platform),
            self._verifier,
        )
        await self._listen(stack, "ses", listener)

    async def _retention(self, stack: contextlib.AsyncExitStack) -> None:
        """Delete the oldest messages past --max-messages / --max-age, when set."""
        cfg = self.config
        if cfg.max_messages or cfg.max_age:
            self.jobs.every(
                "retention", cfg.prune_interval, self.prune_once, first=cfg.prune_interval
            )

    async def _change_feed(self, stack: contextlib.AsyncExitStack) -> None:
        """Messages stored by other processes (postroom ingest, other nodes) appear live too."""
        service = self.platform_service
        projects = service.list_projects if service is not None else None
        feed = ChangeFeed(
            self._need(self.store),
            self.bus,
            self.clock,
            [DEFAULT_PROJECT],
            interval=FEED_INTERVAL,
            all_projects=(lambda: [p.id for p in projects()]) if projects else None,
            in_flight=self.pipeline.in_flight if self.pipeline is not None else frozenset(),
        )
        self.jobs.worker("change-feed", feed.run)

    async def _domain_checks(self, stack: contextlib.AsyncExitStack) -> None:
        """Re-check sending domains in DNS every --domain-check-interval (the first round one
        interval after start), and retire DKIM keys past their grace period."""
        from postroom.platform.checks import check_once

        interval, service = self.config.domain_check_interval, self._need(self.platform_service)
        if interval <= 0:
            return

        async def check() -> None:
            await check_once(service, interval, self.clock)

        self.jobs.every("domain-checks", interval, check, first=interval)

    async def _reputation_guard(self, stack: contextlib.AsyncExitStack) -> None:
        """Judge the live projects' bounce and complaint rates every check interval (SQL
        stores); the guard also serves /api/v2/projects/{project}/reputation."""
        cfg, store = self.config, self.store
        if not isinstance(store, SqlMessageStore):
            return
        guard = _reputation(cfg, store, self._need(self.platform), self.clock)
        self.reputation = guard

        async def judge_once() -> None:
            await asyncio.to_thread(guard.run_once)

        # Judged by the processes with the http role (the housekeeping jobs' role).
        if cfg.reputation_check_interval > 0 and "http" in cfg.roles:
            self.jobs.every("reputation", cfg.reputation_check_interval, judge_once)

    async def _suppression_feed(self, stack: contextlib.AsyncExitStack) -> None:
        """Feed the suppression list from the event log (hard bounces, complaints, soft
        bounces past the policy) and drop expired entries (SQL stores)."""
        from postroom.suppression.feed import SoftBouncePolicy, SuppressionFeed

        cfg, store = self.config, self.store
        if not isinstance(store, SqlMessageStore):
            return
        policy = SoftBouncePolicy(
            cfg.suppression_soft_bounces,
            cfg.suppression_soft_window,
            cfg.suppression_soft_expiry,
            frozenset(cfg.suppression_account_reasons),
        )
        feed = SuppressionFeed(store.suppressions, self.clock, policy)
        suppressions = store.suppressions

        async def feed_once() -> None:
            await asyncio.to_thread(feed.run_all)
            await asyncio.to_thread(suppressions.remove_expired, self.clock.now())

        self.jobs.every("suppression-feed", SUPPRESSION_INTERVAL, feed_once)

    async def _delivery(self, stack: contextlib.AsyncExitStack) -> None:
        """The outbound MTA (--delivery, SQL stores): deliver what is due when it is due."""
        cfg, store = self.config, self.store
        if not (cfg.delivery and isinstance(store, SqlMessageStore)):
            return
        policy_client = None
        if cfg.mta_sts:
            # The MTA-STS policy fetcher's HTTPS client: the system's trust store, no proxy
            # from the environment, no redirects (RFC 8461 §3.3).
            policy_client = httpx.AsyncClient(
                verify=ssl.create_default_context(), trust_env=False, follow_redirects=False
            )
            stack.push_async_callback(policy_client.aclose)
        delivery = _delivery_worker(
            cfg, store, self.clock, self._need(self._steps).directory, policy_client
        )
        self.delivery = delivery
        # Let transactions in progress finish, give back untried entries, QUIT the connections
        # kept for reuse, store the TLS report counts (the jobs, cancelled first, start no
        # pass; a pass in progress is shielded from that cancellation).
        stack.push_async_callback(delivery.shutdown)
        # The in-memory schedule of due work (delivery/due.py), told by the store when this
        # process commits entries that are due; the loop claims only when it says so, and
        # reads the database's due times at start and every --delivery-poll-interval.
        schedule = DueSchedule(self.clock)
        stack.callback(store.due.subscribe(schedule.push))
        self.delivery_loop = DeliveryLoop(
            delivery,
            schedule,
            store.queue.due_times,
            self.clock,
            poll_interval=cfg.delivery_poll_interval,
        )
        self.jobs.worker("delivery", self.delivery_loop.run)
        if delivery.tls_reports is not None:
            self.jobs.every("tls-report-counts", TLS_REPORT_INTERVAL, delivery.tls_reports.flush)

    async def _webhook_worker(self, stack: contextlib.AsyncExitStack) -> None:
        """Send the projects' webhook requests (--webhooks, SQL stores): claim due outbox rows
        under a lease every second (several processes may run it), prune old rows hourly."""
        from postroom.events.webhook_sender import SenderSettings, WebhookSender
        from postroom.events.webhook_worker import WebhookWorker, WorkerSettings, mail_from_store
        from postroom.storage.sealing import SecretBox

        cfg, store = self.config, self.store
        if not (cfg.webhooks and isinstance(store, SqlMessageStore)):
            return
        # No proxy from the environment, no redirects (a 3xx is a failed request); the
        # sender bounds each request by --webhook-timeout itself.
        client = httpx.AsyncClient(
            verify=ssl.create_default_context(),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(cfg.webhook_timeout),
        )
        stack.push_async_callback(client.aclose)
        sender = WebhookSender(
            client,
            self.clock,
            SenderSettings(timeout=cfg.webhook_timeout, allow_private=cfg.webhook_allow_private),
            _host_resolve(cfg),
        )
        worker = WebhookWorker(
            store.webhooks,
            store.events,
            mail_from_store(store),
            SecretBox.load_or_create(Path(cfg.data_dir)),
            sender,
            self.clock,
            WorkerSettings(owner=f"webhooks-{new_id(self.clock.now())}", hostname=cfg.hostname),
        )
        self.webhook_worker = worker

        async def drain() -> None:
            await worker.drain()

        async def prune() -> None:
            await worker.prune()

        self.jobs.every("webhooks", WEBHOOK_INTERVAL, drain)
        self.jobs.every("webhook-prune", WEBHOOK_PRUNE_INTERVAL, prune, first=WEBHOOK_INTERVAL)

    async def _run_jobs(self, stack: contextlib.AsyncExitStack) -> None:
        """Begin the jobs declared by the parts above; they are the first thing stopped."""
        self.jobs.start()
        stack.push_async_callback(self.jobs.stop)

    # Helpers -----------------------------------------------------------------------------

    @staticmethod
    def _need(value: _T | None) -> _T:
        if value is None:
            raise RuntimeError("a part of the application was used before it was opened")
        return value

    def _tls_context(self) -> ReloadableContext | None:
        """The certificate for STARTTLS and implicit TLS, shared by every door that uses TLS
        and reloaded on SIGHUP (`reload_tls`)."""
        cfg = self.config
        cert, key = cfg.tls_cert, cfg.tls_key
        submission = cfg.submission is not None or cfg.submissions is not None or cfg.mx is not None
        if not (cfg.smtp_tls or cfg.smtp_require_tls or submission):
            return None
        if bool(cert) != bool(key):
            raise ConfigError("--tls-cert and --tls-key must be given together")
        if not cert:
            data_dir = Path(cfg.data_dir)
            tls_dir = data_dir / "tls"
            private_dir(data_dir)
            private_dir(tls_dir)
            cert, key = str(tls_dir / "cert.pem"), str(tls_dir / "key.pem")
            if not (Path(cert).exists() and Path(key).exists()):
                generate_self_signed(cert, key, cfg.hostname)
                log.info("generated a self-signed TLS certificate", extra={"path": cert})
            # With SQLite the store has checked the data directory already.
            warn_if_loose([data_dir] if cfg.database_url else [])
            warn_if_loose([tls_dir, Path(key)])
        return ReloadableContext(cert, key)

    def reload_tls(self) -> bool:
        """Load the TLS certificate and key again (SIGHUP): new handshakes on every door use
        the new pair, established sessions keep theirs. On error the old pair stays."""
        if self.tls is None:
            return False
        try:
            self.tls.reload()
        except ConfigError as exc:
            log.error("TLS certificate not reloaded: %s", exc)
            return False
        log.info("TLS certificate reloaded", extra={"path": self.tls.cert_path})
        return True

    def _policy(self, tls: bool) -> SessionPolicy:
        cfg = self.config
        return SessionPolicy(
            hostname=cfg.hostname,
            max_text_line=cfg.max_line_length,
            max_recipients=cfg.max_recipients,
            max_message_size=cfg.max_message_size,
            max_errors=cfg.max_errors,
            command_timeout=cfg.command_timeout,
            data_timeout=cfg.data_timeout,
            data_min_rate=cfg.data_min_rate,
            session_lifetime=cfg.smtp_session_lifetime,
            starttls_available=tls,
            tls_required=cfg.smtp_require_tls,
            auth_mechanisms=("PLAIN", "LOGIN"),
            auth_required=False,
            auth_without_tls=True,
            bare_line_endings="accept" if cfg.smtp_bare_line_endings == "accept" else "reject",
        )

    def _submission_policy(self, implicit: bool) -> SessionPolicy:
        """Submission (RFC 6409): AUTH over TLS, bare CR/LF refused, line lengths checked by
        the pipeline (998 octets, RFC 5322); the door allows MAIL only after AUTH or from an
        IP credential."""
        cfg = self.config
        return SessionPolicy(
            hostname=cfg.hostname,
            max_text_line=0,
            max_recipients=cfg.max_recipients,
            max_message_size=cfg.max_message_size,
            max_errors=cfg.max_errors,
            command_timeout=cfg.command_timeout,
            data_timeout=cfg.data_timeout,
            data_min_rate=cfg.data_min_rate,
            session_lifetime=cfg.smtp_session_lifetime,
            starttls_available=not implicit,
            tls_required=False,
            auth_mechanisms=("PLAIN", "LOGIN"),
            auth_required=False,
            auth_without_tls=cfg.submission_allow_insecure_auth,
            bare_line_endings="reject",
        )

    def _mx_policy(self) -> SessionPolicy:
        """The inbound MX (RFC 5321 relay-receiving side): STARTTLS offered, no AUTH, bare
        CR/LF refused, no line limit of its own (reports quote long lines)."""
        cfg = self.config
        return SessionPolicy(
            hostname=cfg.hostname,
            max_text_line=0,
            max_recipients=cfg.max_recipients,
            max_message_size=cfg.max_message_size,
            max_errors=cfg.max_errors,
            command_timeout=cfg.command_timeout,
            data_timeout=cfg.data_timeout,
            data_min_rate=cfg.data_min_rate,
            session_lifetime=cfg.smtp_session_lifetime,
            starttls_available=True,
            tls_required=False,
            auth_mechanisms=(),
            auth_required=False,
            auth_without_tls=False,
            bare_line_endings="reject",
        )

    def _webhooks(self, store: SqlMessageStore, service: PlatformService) -> Any:
        """The webhooks' management service (events/webhook_service.py), built once."""
        if self.webhook_service is None:
            from postroom.events.webhook_service import WebhookService
            from postroom.storage.sealing import SecretBox

            cfg = self.config
            box = SecretBox.load_or_create(Path(cfg.data_dir))
            self.webhook_service = WebhookService(
                store.webhooks, box, self.clock, cfg.webhook_allow_private, service.get_project
            )
        return self.webhook_service

    def _sites_of(self, domains: Sequence[str]) -> dict[str, SiteStatus]:
        """The delivery sites of these domains as this process's worker knows them."""
        return self.delivery.sites_of(domains) if self.delivery is not None else {}

    async def prune_once(self) -> list[str]:
        """Delete the messages past --max-messages / --max-age now; their ids."""
        store, cfg = self._need(self.store), self.config
        older = self.clock.now() - timedelta(seconds=cfg.max_age) if cfg.max_age else None
        try:
            ids = await asyncio.to_thread(store.prune, "default", cfg.max_messages or None, older)
        except Exception:
            log.exception("retention pruning failed")
            return []
        if ids:
            self.metrics.messages_deleted.inc(len(ids))
            self.bus.publish(MessageEvent("delete", "default", ids=tuple(ids)))
        return ids


def _delivery_worker(
    cfg: Config,
    store: SqlMessageStore,
    clock: Clock,
    directory: ProjectDirectory,
    policy_client: Any = None,
) -> DeliveryWorker:
    """The outbound MTA's worker: the queue in the message store's database, DNS through the
    configured resolver, routes and limits from the configuration, VERP return paths on the
    projects' bounce domains (their verified domains from `directory`)."""
    return_paths = None
    if cfg.verp:

        async def domains_of(project: str) -> frozenset[str]:
            return frozenset((await directory.get(project)).domains)

        return_paths = ReturnPaths(
            Verp.load_or_create(Path(cfg.data_dir)), cfg.bounce_domain, domains_of
        )
    project_settings = store.delivery_settings

    async def notices_on(project: str) -> bool:
        return (await asyncio.to_thread(project_settings.get, project)).bounce_notices

    settings = DeliverySettings(
        helo_name=cfg.hostname,
        tls=cfg.delivery_tls,  # type: ignore[arg-type]  # checked by load_config
        smarthost=Relay.parse(cfg.relay) if cfg.relay else None,
        routes=parse_routes(cfg.routes),
        tls_policies=parse_tls_policies(cfg.delivery_tls_policy),
        allow_private=cfg.delivery_allow_private,
        mx_port=cfg.delivery_mx_port,
        concurrency=cfg.delivery_concurrency,
        lease=cfg.delivery_lease,
        stop_timeout=cfg.delivery_stop_timeout,
    )
    resolver = LazyResolver(cfg.resolver or None)
    mta_sts = None
    if policy_client is not None:
        fetcher = HttpsPolicyFetcher(
            policy_client, resolver, allow_private=cfg.delivery_allow_private
        )
        mta_sts = MtaSts(resolver, fetcher, store.tls_reports, clock)
    tls_reports = TlsReporting(resolver, store.tls_reports, clock) if cfg.tls_rpt else None
    return DeliveryWorker(
        store.queue,
        store,
        resolver,
        clock,
        settings,
        schedule=RetrySchedule(lifetime=cfg.queue_lifetime),
        shaper=Shaper(load_rules()),
        return_paths=return_paths,
        notices=Notices(cfg.hostname, complete_message, notices_on, cfg.delay_notice_after),
        pools=project_pools(cfg, project_settings.ip_pool, clock),
        mta_sts=mta_sts,
        tls_reports=tls_reports,
        due=store.due,
    )


def _database_label(cfg: Config) -> str:
    if cfg.database_url:
        # Never show credentials.
        scheme, _, rest = cfg.database_url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"
    return str(Path(cfg.data_dir) / "postroom.db")


def _web_routes(context: ApiContext, service: PlatformService | None = None) -> list[Any]:
    try:
        from postroom.web.routes import routes
    except ImportError:
        return []
    return list(routes(context, service.list_projects if service is not None else None))


def _management_routes(service: PlatformService, verifier: AddressVerifier) -> list[Any]:
    """/api/v2 on the platform service (the AuthGate in front of the app guards it), and the
    public end of address verification (`POST /confirm-address`)."""
    from postroom.api import address_confirm, suspension
    from postroom.api.management import ManagementContext, routes

    return [
        *routes(ManagementContext(service, verifier)),
        *suspension.routes(service),
        *address_confirm.routes(service),
    ]


def _sending_routes(
    context: ApiContext, steps: SubmissionSteps, platform: PlatformStore
) -> list[Any]:
    """The native send API and templates (api/sending_setup.py) on the SQL platform store."""
    from postroom.api.sending_setup import sending_routes

    return sending_routes(context, steps, platform)


def _suppression_check(store: Any, clock: Clock) -> Any:
    """What the acceptance pipeline asks the suppression list (SQL stores only)."""
    if not isinstance(store, SqlMessageStore):
        return None
    from postroom.core.suppression import ACCOUNT

    suppressions = store.suppressions

    def check(
        questions: Sequence[tuple[str, Sequence[str]]],
    ) -> list[dict[str, tuple[str, str]]]:
        return [
            {
                key: (entry.reason, "account" if entry.scope == ACCOUNT else "project")
                for key, entry in found.items()
            }
            for found in suppressions.suppressed_many(questions, clock.now())
        ]

    return check


def _reputation(
    cfg: Config, store: SqlMessageStore, platform: PlatformStore, clock: Clock
) -> ReputationGuard:
    """The reputation guard on the store's event log, with the configured thresholds."""
    bounce_rates = cfg.reputation_bounce_rates
    warn_bounce, pause_bounce = parse_rates(bounce_rates, "--reputation-bounce-rates")
    warn_complaint, pause_complaint = parse_rates(
        cfg.reputation_complaint_rates, "--reputation-complaint-rates"
    )
    limits = Thresholds(
        warn_bounce,
        pause_bounce,
        warn_complaint,
        pause_complaint,
        cfg.reputation_min_volume,
        cfg.reputation_window,
    )
    return ReputationGuard(store.reputation, platform, clock, limits)


def _reputation_routes(service: PlatformService, guard: ReputationGuard) -> list[Any]:
    """/api/v2/projects/{project}/reputation (guarded like /api/v2)."""
    from postroom.api import reputation

    return reputation.routes(service, guard)


def _event_routes(
    service: PlatformService, store: SqlMessageStore, clock: Clock, pools: frozenset[str]
) -> list[Any]:
    """/api/v2/projects/{project}/events on the store's event log, a message's deliveries and
    the suppression lists (guarded like /api/v2)."""
    from postroom.api import deliveries, events, suppressions
    from postroom.suppression.service import SuppressionList

    suppression_list = SuppressionList(store.suppressions, clock)
    return [
        *events.routes(service, store.events, store.metadata_of),
        *deliveries.routes(store, store.queue),
        *suppressions.routes(service, suppression_list),
        *deliveries.settings_routes(service, store.delivery_settings, pools),
    ]


def _webhook_routes(webhooks: Any) -> list[Any]:
    """/api/v2/projects/{project}/webhooks (guarded like /api/v2)."""
    from postroom.api.webhooks import routes

    return routes(webhooks)


def _tls_report_routes(cfg: Config, store: SqlMessageStore, clock: Clock) -> list[Any]:
    """/api/v2/tls-reports: the TLS-RPT counts and reports (admins only)."""
    from postroom.api.tls_reports import routes

    return routes(store.tls_reports, clock, cfg.hostname, system_sender(cfg))


def _queue_routes(
    service: PlatformService,
    store: SqlMessageStore,
    clock: Clock,
    sites_of: Callable[[Sequence[str]], dict[str, SiteStatus]],
) -> list[Any]:
    """/api/v2/projects/{project}/queue: views and actions (guarded like /api/v2)."""
    from postroom.api.queue import routes

    return routes(service, store.queue_admin, clock, sites_of)


@dataclass
class _AdminPages:
    routes: list[Any]
    error_page: Any
    pages: Any = None  # web/admin/routes.AdminPages, for pages added later


def _admin_pages(
    service: PlatformService,
    auth: Authenticator,
    cfg: Config,
    verifier: AddressVerifier,
    suppressions: Any = None,
    delivery: tuple[Any, Any, Any, Any, Any] | None = None,
    webhooks: Any = None,
    reputation: ReputationGuard | None = None,
) -> _AdminPages | None:
    """Login, logout and the admin pages (web/admin), when that package is installed;
    `delivery`: the queue's admin and the event log, for a project's Delivery tab."""
    try:
        from postroom.web.admin.delivery_pages import delivery_routes
        from postroom.web.admin.routes import AdminPages, routes
    except ImportError:
        return None
    pages = AdminPages(service, auth, cfg, verifier, suppressions)
    extra = delivery_routes(pages, *delivery) if delivery is not None else []
    from postroom.api.sending_setup import admin_template_routes

    extra += admin_template_routes(pages, service.store, service.clock, cfg.max_templates)
    if webhooks is not None:
        from postroom.web.admin.webhook_pages import webhook_routes

        extra += webhook_routes(pages, webhooks)
    if reputation is not None:
        from postroom.web.admin.reputation_pages import reputation_routes

        extra += reputation_routes(pages, reputation)
    return _AdminPages([*routes(pages), *extra], pages.error_page, pages)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when importable; None selects the standard one."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
