"""Composition root: configuration -> adapters -> services -> listeners.

The only module that builds concrete adapters (store, clock, SMTP listeners, HTTP server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from postroom.api.app import build_app
from postroom.api.context import ApiContext
from postroom.config import Config, HostPort
from postroom.core.clock import Clock, SystemClock
from postroom.core.errors import ConfigError
from postroom.core.ports import MessageStore
from postroom.core.types import IncomingMessage, SessionInfo
from postroom.events.bus import EventBus, MessageEvent
from postroom.metrics import Metrics
from postroom.pipeline.acceptance import AcceptancePipeline
from postroom.smtp.protocol import SessionPolicy
from postroom.smtp.server import Listener, SmtpServer
from postroom.smtp.tls import generate_self_signed, server_context
from postroom.storage.engine import open_store

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


@dataclass
class _SessionLog:
    metrics: Metrics

    def on_session_end(self, summary: dict[str, Any]) -> None:
        door = str(summary.get("door", "capture"))
        self.metrics.sessions.labels(door).inc()
        log.info("smtp session", extra={"session": summary})

    def on_reject(self, door: str, reason: str) -> None:
        self.metrics.rejects.labels(door, reason).inc()


class Application:
    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.bus = EventBus()
        self.store: MessageStore | None = None
        self.pipeline: AcceptancePipeline | None = None
        self.smtp: SmtpServer | None = None
        self._http: _QuietServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._prune_task: asyncio.Task[None] | None = None
        self.http_port = 0
        self.smtp_port = 0

    def ready(self) -> bool:
        return bool(self.smtp and self._http and self._http.started)

    def _tls_context(self) -> Any:
        cfg = self.config
        cert, key = cfg.tls_cert, cfg.tls_key
        if not (cfg.smtp_tls or cfg.smtp_require_tls):
            return None
        if bool(cert) != bool(key):
            raise ConfigError("--tls-cert and --tls-key must be given together")
        if not cert:
            tls_dir = Path(cfg.data_dir) / "tls"
            tls_dir.mkdir(parents=True, exist_ok=True)
            cert, key = str(tls_dir / "cert.pem"), str(tls_dir / "key.pem")
            if not (Path(cert).exists() and Path(key).exists()):
                generate_self_signed(cert, key, cfg.hostname)
                log.info("generated a self-signed TLS certificate", extra={"path": cert})
        return server_context(cert, key)

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
            starttls_available=tls,
            tls_required=cfg.smtp_require_tls,
            auth_mechanisms=("PLAIN", "LOGIN"),
            auth_required=False,
            auth_without_tls=True,
            bare_line_endings="accept" if cfg.smtp_bare_line_endings == "accept" else "reject",
        )

    async def _deliver(self, incoming: IncomingMessage) -> str:
        assert self.pipeline is not None
        return await self.pipeline.accept(incoming)

    async def _authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        # The capture door accepts any credentials and records the username.
        return username

    async def start(self) -> None:
        cfg = self.config
        store = await asyncio.to_thread(open_store, cfg, self.clock)
        self.store = store
        self.pipeline = AcceptancePipeline(store, self.clock, self.bus, self.metrics)
        ssl_context = self._tls_context()
        hooks = _SessionLog(self.metrics)
        listener = Listener(
            door="capture",
            host=cfg.smtp.host,
            port=cfg.smtp.port,
            policy=self._policy(ssl_context is not None),
            ssl_context=ssl_context,
            max_connections=cfg.max_connections,
            max_per_ip=cfg.max_connections_per_ip,
        )
        self.smtp = SmtpServer(
            listener, self._deliver, self._authenticate, hooks=hooks, clock=self.clock
        )
        await self.smtp.start()
        self.smtp_port = self.smtp.port
        http_sock = bind_tcp(cfg.http)
        self.http_port = http_sock.getsockname()[1]
        context = ApiContext(
            config=cfg,
            store=store,
            pipeline=self.pipeline,
            bus=self.bus,
            metrics=self.metrics,
            clock=self.clock,
            ready=self.ready,
            started=self.clock.monotonic(),
            database_label=_database_label(cfg),
        )
        app = build_app(context, extra_routes=_web_routes(context))
        uv_config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
        self._http = _QuietServer(uv_config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[http_sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise ConfigError(f"the HTTP listener on {cfg.http} did not start")
            await asyncio.sleep(0.01)
        if cfg.max_messages or cfg.max_age:
            self._prune_task = asyncio.create_task(self._prune_loop())
        log.info(
            "postroom ready",
            extra={
                "smtp": f"{cfg.smtp.host}:{self.smtp_port}",
                "http": f"{cfg.http.host}:{self.http_port}",
            },
        )

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
        if self._prune_task:
            self._prune_task.cancel()
        if self.smtp:
            await self.smtp.stop()
        if self._http and self._http_task:
            self._http.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._http_task, 5)
        if self.store:
            await self.store.close()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


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


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when importable; None selects the standard one."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
