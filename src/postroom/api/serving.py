"""An ASGI application served by uvicorn on a socket the application bound itself."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from postroom.core.errors import ConfigError

STOP_TIMEOUT = 5.0  # seconds stop() waits for open requests


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the application owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpListener:
    """One uvicorn server on one bound socket (`start`, `port`, `stop`)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, label: str) -> None:
        self._server = QuietServer(config)
        self._sock = sock
        self._label = label
        self._task: asyncio.Task[None] | None = None
        self.port: int = sock.getsockname()[1]

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    async def start(self) -> None:
        """Serve, and return once uvicorn is listening (ConfigError if it gave up)."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._sock.close()
                self._task.result()
                raise ConfigError(f"the {self._label} did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, give open requests a moment, then close."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, STOP_TIMEOUT)
        self._sock.close()


def serve_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for Postroom's listeners: quiet, no lifespan, plus `options`."""
    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", **options)
