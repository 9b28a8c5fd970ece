"""A real Postroom server in a background thread, for tests that drive it with blocking clients."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from postroom.app import Application, loop_factory
from postroom.config import Config, HostPort
from postroom.core.clock import Clock


def make_config(data_dir: Path, **overrides: Any) -> Config:
    """A server config on free loopback ports. New messages are committed from a thread of the
    server (`writer_process=False`): spawning the writer child costs ~0.3 s per server, and only
    the tests about it pass `writer_process=True` (the production default)."""
    base = Config(
        data_dir=data_dir,
        smtp=HostPort("127.0.0.1", 0),
        http=HostPort("127.0.0.1", 0),
        hostname="postroom.test",
        writer_process=False,
        delivery=False,  # tests that deliver turn it on, with the test DNS zone as resolver
    )
    return replace(base, **overrides)


class ServerThread:
    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.app = Application(config, clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="postroom-test-server", daemon=True)

    def _run(self) -> None:
        factory = loop_factory()
        loop = factory() if factory else asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                await self.app.start()
            except BaseException as exc:
                self._error = exc
                self._started.set()
                raise
            self._started.set()
            try:
                await self._stop.wait()
            finally:
                await self.app.stop()

        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            if self._error is None:
                self._error = exc
        finally:
            loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("server did not start within 30 s")
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop and self._stop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop from the test thread."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    @property
    def smtp_port(self) -> int:
        return self.app.smtp_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.app.http_port}"


def load_spec() -> dict[str, Any] | None:
    path = Path(__file__).resolve().parents[2] / "shared" / "specs" / "mailpit-api-v1.swagger.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data
