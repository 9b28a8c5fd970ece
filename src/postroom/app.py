"""Composition root: configuration -> adapters -> services -> listeners.

The only module that builds concrete adapters (store, clock, SMTP listeners, HTTP server).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from postroom.api.app import SecurityHeaders, build_app
from postroom.api.auth import Authenticator, AuthGate, AuthSettings
from postroom.api.context import ApiContext
from postroom.api.guard import HostRule, RequestGuard
from postroom.api.limits import BodyLimit, BodyLimits
from postroom.bounces.verp import Verp
from postroom.checks.http_probe import HttpProbe, dns_resolve, system_resolve
from postroom.config import Config, HostPort
from postroom.core.clock import Clock, SystemClock
from postroom.core.errors import ConfigError
from postroom.core.platform import DEFAULT_PROJECT, PlatformStore
from postroom.core.ports import MessageStore
from postroom.core.types import DoorName
from postroom.delivery.notices import Notices
from postroom.delivery.pools import pool_names, project_pools
from postroom.delivery.return_path import ReturnPaths
from postroom.delivery.schedule import RetrySchedule
from postroom.delivery.shaping import Shaper, SiteStatus, load_rules
from postroom.delivery.worker import DeliverySettings, DeliveryWorker, Relay, parse_routes
from postroom.doors.capture import CaptureDoor
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
from postroom.smtp.protocol import SessionPolicy
from postroom.smtp.server import Listener, SmtpServer
from postroom.smtp.spool import MemoryBudget, Spool
from postroom.smtp.tls import ReloadableContext, generate_self_signed
from postroom.storage.engine import open_platform_store, open_store
from postroom.storage.private import private_dir, warn_if_loose
from postroom.storage.store import SqlMessageStore

log = logging.getLogger("postroom")


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the application owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


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
DELIVERY_INTERVAL = 1.0  # seconds between looks for due queue entries
SUPPRESSION_INTERVAL = 2.0  # seconds between reads of the event log for the suppression list


def _link_probe(cfg: Config) -> HttpProbe:
    """The link check's HTTP client: DNS through --resolver when set, else the system's."""
    from postroom.platform.factory import LazyResolver

    resolve = dns_resolve(LazyResolver(cfg.resolver)) if cfg.resolver else system_resolve
    return HttpProbe(allow_private=cfg.link_check_allow_private, resolve=resolve)


class Application:
    def __init__(
        self, config: Config, clock: Clock | None = None, platform: PlatformStore | None = None
    ) -> None:
        """`platform`: a PlatformStore to use instead of opening the SQL one (tests)."""
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.bus = EventBus()
        self.store: MessageStore | None = None
        self.platform: PlatformStore | None = platform
        self.platform_service: PlatformService | None = None
        self.auth: Authenticator | None = None
        self._close_platform: Callable[[], None] | None = None
        self._domain_task: asyncio.Task[None] | None = None
        self._suppression_task: asyncio.Task[None] | None = None
        self.pipeline: AcceptancePipeline | None = None
        self.smtp: SmtpServer | None = None
        self.submission_door: SubmissionDoor | None = None
        self.submission_servers: dict[str, SmtpServer] = {}
        # Where every SMTP listener keeps message data as it arrives (smtp/spool.py).
        self.spool = Spool(
            Path(config.data_dir) / "spool",
            threshold=config.smtp_spool_threshold,
            budget=MemoryBudget(config.smtp_memory_budget),
        )
        self.tls: ReloadableContext | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._http: _QuietServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._prune_task: asyncio.Task[None] | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self.delivery: DeliveryWorker | None = None
        self._delivery_task: asyncio.Task[None] | None = None
        self.webhook_service: Any = None  # events/webhook_service.py, with a SQL store
        self.http_port = 0
        self.ses: Any = None  # the SES API's listener (api/ses_setup.py), with --ses
        self.smtp_port = 0
        self.submission_port = 0
        self.submissions_port = 0
        self.mx: SmtpServer | None = None  # the inbound MX listener (doors/mx.py), with --mx
        self.mx_port = 0
        # Errors injected into the capture door on purpose (--enable-chaos); tests may give
        # it a seeded random generator before start.
        self.chaos = Chaos() if config.enable_chaos else None

    def ready(self) -> bool:
        cfg = self.config
        submission = len(self.submission_servers) == (cfg.submission is not None) + (
            cfg.submissions is not None
        )
        mx = self.mx is not None or cfg.mx is None
        return bool(self.smtp and submission and mx and self._http and self._http.started)

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

    async def _start_submission(self, platform: PlatformStore, steps: SubmissionSteps) -> None:
        cfg = self.config
        assert self.pipeline is not None and self.tls is not None
        door = SubmissionDoor(
            platform,
            self.pipeline,
            self.clock,
            AuthThrottle(cfg.submission_auth_max_failures, cfg.submission_auth_window, self.clock),
            self.metrics,
            SessionLog(self.metrics),
            directory=steps.directory,
            routed=steps.routed,
        )
        self.submission_door = door
        await door.refresh_ip_credentials()
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
                ssl_context=self.tls.context,
                implicit_tls=implicit,
                max_connections=cfg.max_connections,
                max_per_ip=cfg.max_connections_per_ip,
            )
            server = SmtpServer(listener, door, clock=self.clock, spool=self.spool)
            await server.start()
            self.submission_servers[name] = server
            if implicit:
                self.submissions_port = server.port
            else:
                self.submission_port = server.port

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

    async def _start_mx(self, platform: PlatformStore, store: SqlMessageStore) -> None:
        from postroom.doors.mx import MxDoor

        cfg = self.config
        assert cfg.mx is not None and self.pipeline is not None and self.tls is not None
        door = MxDoor(
            platform,
            self.pipeline,
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
            ssl_context=self.tls.context,
            max_connections=cfg.max_connections,
            max_per_ip=cfg.max_connections_per_ip,
        )
        server = SmtpServer(listener, door, clock=self.clock, spool=self.spool)
        await server.start()
        self.mx = server
        self.mx_port = server.port

    async def _maintenance(self) -> None:
        """Re-read IP credentials every few seconds."""
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL)
            await self._maintain_once()

    async def _maintain_once(self) -> None:
        if self.submission_door is not None:
            try:
                await self.submission_door.refresh_ip_credentials()
            except Exception:
                log.exception("reading the IP credentials failed")

    async def start(self) -> None:
        cfg = self.config
        store = await asyncio.to_thread(
            open_store,
            cfg,
            self.clock,
            writer_process=cfg.writer_process,
            complete=complete_message,
        )
        self.store = store
        if self.platform is None:
            sql_platform = await asyncio.to_thread(open_platform_store, cfg)
            self.platform = sql_platform
            self._close_platform = sql_platform.close
        platform = self.platform
        await self._check_access(platform)
        steps = SubmissionSteps(
            ProjectDirectory(platform, self.clock),
            QuotaTracker(platform, self.clock, self.metrics),
            SignerCache(self.clock),
            cfg.hostname,
            routed=frozenset(parse_routes(cfg.routes)),
        )
        self.pipeline = AcceptancePipeline(
            store, self.clock, self.bus, self.metrics, steps, _suppression_check(store, self.clock)
        )
        self.tls = self._tls_context()
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
        capture = CaptureDoor(self.pipeline, SessionLog(self.metrics), chaos=self.chaos)
        self.smtp = SmtpServer(listener, capture, clock=self.clock, spool=self.spool)
        await self.smtp.start()
        self.smtp_port = self.smtp.port
        if cfg.submission is not None or cfg.submissions is not None:
            await self._start_submission(platform, steps)
        if cfg.mx is not None:
            if not isinstance(store, SqlMessageStore):
                raise ConfigError("--mx needs the SQL message store (its queue and event log)")
            await self._start_mx(platform, store)
        self._maintenance_task = asyncio.create_task(self._maintenance())
        http_sock = bind_tcp(cfg.http)
        self.http_port = http_sock.getsockname()[1]
        context = ApiContext(
            config=cfg,
            store=store,
            http_send=HttpSendDoor(self.pipeline, cfg.hostname, steps.directory),
            bus=self.bus,
            metrics=self.metrics,
            clock=self.clock,
            ready=self.ready,
            started=self.clock.monotonic(),
            database_label=_database_label(cfg),
            smtp_port=lambda: self.smtp_port,
            storage_problem=self.pipeline.write_health.problem,
            chaos=self.chaos,
            link_probe=_link_probe(cfg),
        )
        assert self.platform_service is not None and self.auth is not None
        service, auth = self.platform_service, self.auth
        mail = ProofMailSettings.from_config(cfg, self.http_port)
        verifier = AddressVerifier(service, store, self.clock, mail)
        suppression_list = None
        if isinstance(store, SqlMessageStore):
            from postroom.suppression.service import SuppressionList

            suppression_list = SuppressionList(store.suppressions, self.clock)
        delivery_views = None
        if isinstance(store, SqlMessageStore):
            delivery_views = (store.queue_admin, store.events, store, store.queue, self._sites_of)
        webhooks = self._webhooks(store, service) if isinstance(store, SqlMessageStore) else None
        admin = _admin_pages(
            service, auth, cfg, verifier, suppression_list, delivery_views, webhooks
        )
        management = _management_routes(service, verifier)
        if isinstance(store, SqlMessageStore):
            management += _event_routes(service, store, self.clock, pool_names(cfg))
            management += _webhook_routes(webhooks)
            management += _queue_routes(service, store, self.clock, self._sites_of)
        main_app = build_app(
            context,
            extra_routes=[
                *_web_routes(context),
                *(admin.routes if admin else []),
                *management,
                *_sending_routes(context, steps, platform),
            ],
        )

        def project_app(project: str) -> Any:
            # The testing API of one project, for the API keys of that project.
            return build_app(replace(context, project=project))

        app = SecurityHeaders(
            RequestGuard(
                BodyLimit(
                    AuthGate(auth, main_app, project_app, admin.error_page if admin else None),
                    BodyLimits.from_max_message_size(cfg.max_message_size),
                ),
                HostRule.from_config(cfg),
            )
        )
        # X-Forwarded-For and X-Forwarded-Proto are believed only from --trusted-proxies
        # (uvicorn's default would believe any process on 127.0.0.1).
        proxies = [
            str(ipaddress.ip_network(p.strip("[]"), strict=False)) for p in cfg.trusted_proxies
        ]
        uv_config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            proxy_headers=bool(proxies),
            forwarded_allow_ips=proxies,
        )
        self._http = _QuietServer(uv_config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[http_sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise ConfigError(f"the HTTP listener on {cfg.http} did not start")
            await asyncio.sleep(0.01)
        if cfg.ses is not None:
            from postroom.api.ses_setup import start_ses_listener

            self.ses = await start_ses_listener(
                bind_tcp(cfg.ses), context, steps, service, platform, verifier
            )
        if cfg.max_messages or cfg.max_age:
            self._prune_task = asyncio.create_task(self._prune_loop())
        # Messages stored by other processes (postroom ingest, other nodes) appear live too.
        feed = ChangeFeed(self.store, self.bus, self.clock, [DEFAULT_PROJECT], interval=0.5)
        self._feed_task = asyncio.create_task(feed.run())
        if cfg.domain_check_interval > 0:
            self._domain_task = asyncio.create_task(self._domain_checks(service))
        if isinstance(store, SqlMessageStore):
            self._suppression_task = asyncio.create_task(self._suppression_loop(store))
        if cfg.delivery and isinstance(store, SqlMessageStore):
            self.delivery = _delivery_worker(cfg, store, self.clock, steps.directory)
            self._delivery_task = asyncio.create_task(self._delivery_loop(self.delivery))
        log.info(
            "postroom ready",
            extra={
                "smtp": f"{cfg.smtp.host}:{self.smtp_port}",
                "http": f"{cfg.http.host}:{self.http_port}",
            },
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

    async def _check_access(self, platform: PlatformStore) -> None:
        """Build the platform service and the authenticator; refuse to listen beyond loopback
        (HTTP or any SMTP door) while no admin user exists (ConfigError, nothing left open)."""
        from postroom.platform.factory import platform_service

        cfg = self.config
        service = platform_service(cfg, platform, self.clock)
        auth = Authenticator(service, self.clock, AuthSettings.from_config(cfg), cfg.http)
        try:
            await auth.check_listen_policy(
                {
                    "--smtp": cfg.smtp,
                    "--submission": cfg.submission,
                    "--submissions": cfg.submissions,
                    "--ses": cfg.ses,
                    "--mx": cfg.mx,
                }
            )
        except BaseException:
            await self.stop()
            raise
        self.platform_service, self.auth = service, auth

    async def _domain_checks(self, service: PlatformService) -> None:
        """Re-check sending domains in DNS every domain_check_interval (the first round one
        interval after start), and retire DKIM keys past their grace period."""
        from postroom.platform.checks import run_domain_checks

        interval = self.config.domain_check_interval
        await asyncio.sleep(interval)
        await run_domain_checks(service, interval, self.clock)

    async def _delivery_loop(self, worker: DeliveryWorker) -> None:
        """Deliver what is due, then look again every DELIVERY_INTERVAL seconds."""
        while True:
            try:
                await worker.drain()
            except Exception:
                log.exception("a delivery pass failed")
            await asyncio.sleep(DELIVERY_INTERVAL)

    async def _suppression_loop(self, store: SqlMessageStore) -> None:
        """Feed the suppression list from the event log (hard bounces, complaints, soft
        bounces past the policy) and drop expired entries, every SUPPRESSION_INTERVAL s."""
        from postroom.suppression.feed import SoftBouncePolicy, SuppressionFeed

        cfg = self.config
        policy = SoftBouncePolicy(
            cfg.suppression_soft_bounces,
            cfg.suppression_soft_window,
            cfg.suppression_soft_expiry,
            frozenset(cfg.suppression_account_reasons),
        )
        feed = SuppressionFeed(store.suppressions, self.clock, policy)
        while True:
            try:
                await asyncio.to_thread(feed.run_all)
                await asyncio.to_thread(store.suppressions.remove_expired, self.clock.now())
            except Exception:
                log.exception("a suppression feed pass failed")
            await asyncio.sleep(SUPPRESSION_INTERVAL)

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.prune_interval)
            await self.prune_once()

    async def prune_once(self) -> list[str]:
        assert self.store is not None
        cfg = self.config
        older = self.clock.now() - timedelta(seconds=cfg.max_age) if cfg.max_age else None
        try:
            ids = await asyncio.to_thread(
                self.store.prune, "default", cfg.max_messages or None, older
            )
        except Exception:
            log.exception("retention pruning failed")
            return []
        if ids:
            self.metrics.messages_deleted.inc(len(ids))
            self.bus.publish(MessageEvent("delete", "default", ids=tuple(ids)))
        return ids

    async def stop(self) -> None:
        if self._delivery_task:
            self._delivery_task.cancel()
            with contextlib.suppress(BaseException):
                await self._delivery_task
        if self.delivery is not None:
            await self.delivery.close()  # QUIT the connections kept for reuse
        if self._feed_task:
            self._feed_task.cancel()
        if self._prune_task:
            self._prune_task.cancel()
        if self._suppression_task:
            self._suppression_task.cancel()
        if self._domain_task:
            self._domain_task.cancel()
        if self._maintenance_task:
            self._maintenance_task.cancel()
        for server in self.submission_servers.values():
            await server.stop()
        if self.mx is not None:
            await self.mx.stop()
        if self.smtp:
            await self.smtp.stop()
        if self.submission_door is not None:
            await self.submission_door.close()
        if self.ses is not None:
            await self.ses.stop()
        if self._http and self._http_task:
            self._http.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http_task, 5)
        if self.store:
            await self.store.close()
        if self._close_platform is not None:
            await asyncio.to_thread(self._close_platform)
            self._close_platform = None

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_tls)
        try:
            await stop.wait()
        finally:
            await self.stop()


def _delivery_worker(
    cfg: Config, store: SqlMessageStore, clock: Clock, directory: ProjectDirectory
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
        allow_private=cfg.delivery_allow_private,
        mx_port=cfg.delivery_mx_port,
        concurrency=cfg.delivery_concurrency,
    )
    return DeliveryWorker(
        store.queue,
        store,
        LazyResolver(cfg.resolver or None),
        clock,
        settings,
        schedule=RetrySchedule(lifetime=cfg.queue_lifetime),
        shaper=Shaper(load_rules()),
        return_paths=return_paths,
        notices=Notices(cfg.hostname, complete_message, notices_on, cfg.delay_notice_after),
        pools=project_pools(cfg, project_settings.ip_pool, clock),
    )


def _database_label(cfg: Config) -> str:
    if cfg.database_url:
        # Never show credentials.
        scheme, _, rest = cfg.database_url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"
    return str(Path(cfg.data_dir) / "postroom.db")


def _web_routes(context: ApiContext) -> list[Any]:
    try:
        from postroom.web.routes import routes
    except ImportError:
        return []
    return list(routes(context))


def _management_routes(service: PlatformService, verifier: AddressVerifier) -> list[Any]:
    """/api/v2 on the platform service (the AuthGate in front of the app guards it), and the
    public end of address verification (`POST /confirm-address`)."""
    from postroom.api import address_confirm
    from postroom.api.management import ManagementContext, routes

    return [*routes(ManagementContext(service, verifier)), *address_confirm.routes(service)]


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

    def check(project: str, recipients: list[str]) -> dict[str, tuple[str, str]]:
        found = suppressions.suppressed(project, recipients, clock.now())
        return {
            key: (entry.reason, "account" if entry.scope == ACCOUNT else "project")
            for key, entry in found.items()
        }

    return check


def _event_routes(
    service: PlatformService, store: SqlMessageStore, clock: Clock, pools: frozenset[str]
) -> list[Any]:
    """/api/v2/projects/{project}/events on the store's event log, a message's deliveries and
    the suppression lists (guarded like /api/v2)."""
    from postroom.api import deliveries, events, suppressions
    from postroom.suppression.service import SuppressionList

    suppression_list = SuppressionList(store.suppressions, clock)
    return [
        *events.routes(service, store.events),
        *deliveries.routes(store, store.queue),
        *suppressions.routes(service, suppression_list),
        *deliveries.settings_routes(service, store.delivery_settings, pools),
    ]


def _webhook_routes(webhooks: Any) -> list[Any]:
    """/api/v2/projects/{project}/webhooks (guarded like /api/v2)."""
    from postroom.api.webhooks import routes

    return routes(webhooks)


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


def _admin_pages(
    service: PlatformService,
    auth: Authenticator,
    cfg: Config,
    verifier: AddressVerifier,
    suppressions: Any = None,
    delivery: tuple[Any, Any, Any, Any, Any] | None = None,
    webhooks: Any = None,
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

    extra += admin_template_routes(pages, service.store, service.clock)
    if webhooks is not None:
        from postroom.web.admin.webhook_pages import webhook_routes

        extra += webhook_routes(pages, webhooks)
    return _AdminPages([*routes(pages), *extra], pages.error_page)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when importable; None selects the standard one."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
