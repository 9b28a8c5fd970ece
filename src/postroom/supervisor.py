"""One supervisor for every background job of a running server.

Two kinds of job, both timed by the injected `Clock` (a `FakeClock` drives them in tests):

- `every(name, interval, fn)`: a periodic job. `fn` runs (first after `first` seconds,
  default at once), then again `interval` seconds after each run has ended. A run that raises
  is logged with the job's name and counted; the next run comes at the next interval.
- `worker(name, fn)`: a long-running job (a feed holding a subscription, a webhook sender
  waiting on its queue). `fn` is expected to run until cancelled; if it raises, or returns,
  that is logged and it is started again after a backoff (1 s, doubling to 60 s; back to 1 s
  once a run has lasted longer than the longest backoff).

Jobs declared before `start()` begin there, in the order declared; jobs declared later begin
at once. `stop()` cancels each job and awaits it, newest first, waiting at most
`stop_timeout` seconds for each (a job that does not end in time is logged and left).

`state(name)` tells how a job is doing (runs, failures, the last error), for tests and
health views.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from postroom.core.clock import Clock

log = logging.getLogger("postroom.supervisor")

Job = Callable[[], Awaitable[object]]

BACKOFF_FIRST = 1.0  # seconds before a crashed worker is started again, the first time
BACKOFF_MAX = 60.0  # the longest wait between restarts
STOP_TIMEOUT = 5.0  # seconds stop() waits for each job after cancelling it


@dataclass
class JobState:
    """How one job is doing. `runs`: runs finished (every) or started (worker)."""

    name: str
    kind: Literal["every", "worker"]
    runs: int = 0
    failures: int = 0
    last_error: str | None = None


@dataclass
class _Entry:
    state: JobState
    body: Callable[[], Coroutine[Any, Any, None]]
    task: asyncio.Task[None] | None = field(default=None)


class Supervisor:
    def __init__(
        self,
        clock: Clock,
        *,
        backoff_first: float = BACKOFF_FIRST,
        backoff_max: float = BACKOFF_MAX,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self._clock = clock
        self._backoff_first = backoff_first
        self._backoff_max = backoff_max
        self._stop_timeout = stop_timeout
        self._entries: dict[str, _Entry] = {}
        self._running = False
        self._stopped = False

    # Declaring jobs ----------------------------------------------------------------------

    def every(self, name: str, interval: float, fn: Job, *, first: float = 0.0) -> None:
        """Run `fn` after `first` seconds, then `interval` seconds after each run ends."""
        if interval <= 0:
            raise ValueError(f"job {name}: the interval must be positive")
        state = JobState(name, "every")

        async def body() -> None:
            await self._clock.sleep(first)
            while True:
                await self._run_once(state, fn)
                await self._clock.sleep(interval)

        self._add(_Entry(state, body))

    def worker(self, name: str, fn: Job) -> None:
        """Run `fn` until cancelled; restart it with a backoff when it raises or returns."""
        state = JobState(name, "worker")

        async def body() -> None:
            backoff = self._backoff_first
            while True:
                began = self._clock.monotonic()
                state.runs += 1
                try:
                    await fn()
                except Exception as exc:
                    state.failures += 1
                    state.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("worker %s crashed; restarting in %.0f s", name, backoff)
                else:
                    log.error("worker %s returned; restarting in %.0f s", name, backoff)
                if self._clock.monotonic() - began > self._backoff_max:
                    backoff = self._backoff_first
                await self._clock.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)

        self._add(_Entry(state, body))

    def _add(self, entry: _Entry) -> None:
        name = entry.state.name
        if self._stopped:
            raise RuntimeError(f"job {name}: the supervisor has stopped")
        if name in self._entries:
            raise ValueError(f"job {name}: a job of that name exists")
        self._entries[name] = entry
        if self._running:
            self._launch(entry)

    async def _run_once(self, state: JobState, fn: Job) -> None:
        try:
            await fn()
        except Exception as exc:
            state.failures += 1
            state.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed; it runs again at its next interval", state.name)
        state.runs += 1

    # Running -----------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The jobs declared, in order."""
        return tuple(self._entries)

    def state(self, name: str) -> JobState:
        return self._entries[name].state

    def start(self) -> None:
        """Begin every job declared so far (in order); later ones begin when declared."""
        if self._stopped:
            raise RuntimeError("the supervisor has stopped")
        self._running = True
        for entry in self._entries.values():
            if entry.task is None:
                self._launch(entry)

    def _launch(self, entry: _Entry) -> None:
        entry.task = asyncio.get_running_loop().create_task(
            entry.body(), name=f"postroom job {entry.state.name}"
        )

    async def stop(self) -> None:
        """Cancel and await every job, newest first, each within the stop timeout."""
        self._running = False
        self._stopped = True
        for entry in reversed(list(self._entries.values())):
            task = entry.task
            if task is None or task.done():
                continue
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=self._stop_timeout)
            if not done:
                log.error("job %s did not stop within %.0f s", entry.state.name, self._stop_timeout)
            elif not task.cancelled() and task.exception() is not None:
                log.error("job %s ended with %r", entry.state.name, task.exception())
