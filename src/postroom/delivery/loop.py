"""The delivery loop: claims when the in-memory schedule says work is due, and only then.

`DeliveryLoop.run` is the server's delivery job (supervisor `worker`):

1. It reads the next due times from the database (`read_due`, one indexed read, no lock) into
   the schedule (delivery/due.py): at start (what was queued before, by this process's last
   run or by others), whenever the schedule's horizon comes, and every `poll_interval`
   seconds (the safety read: entries queued by other processes sharing the database, leases
   of dead processes run out).
2. When the schedule has a key due, it drains the queue (`DeliveryWorker.drain`: claims under
   the database lease, `FOR UPDATE SKIP LOCKED` on PostgreSQL, until a batch comes back short)
   and settles the schedule (what was due is done, except what was pushed meanwhile).
   Under load it gathers: a drain that follows one that handled entries waits until
   `batch_window` seconds (real time, 0.2 s) have passed since that one ended, so that the
   entries queued meanwhile go in a few full batches (fewer claims and group commits per
   message) rather than one pass each; after an idle drain the next one begins at once.
3. Otherwise it waits on the injected clock until the next key, the horizon or the safety
   read, or until a push brings an earlier key (a message committed by this process, a
   deferral, retry-now...): an entry queued now is claimed at once, a deferred one when its
   time comes, and a worker with nothing due makes no query at all in between.

The schedule only decides when to ask: correctness with several processes stays with the
database's lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from postroom.core.clock import Clock
from postroom.delivery.due import DueSchedule
from postroom.delivery.worker import DeliveryWorker

log = logging.getLogger("postroom.delivery")

DEFAULT_POLL_INTERVAL = 10.0  # seconds between safety reads
DEFAULT_READ_LIMIT = 1000  # due times per read
DEFAULT_BATCH_WINDOW = 0.2  # seconds between drains while busy

ReadDue = Callable[[datetime, int], Sequence[datetime]]


class DeliveryLoop:
    def __init__(
        self,
        worker: DeliveryWorker,
        schedule: DueSchedule,
        read_due: ReadDue,
        clock: Clock,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        read_limit: int = DEFAULT_READ_LIMIT,
        batch_window: float = DEFAULT_BATCH_WINDOW,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("the safety poll interval must be positive")
        self.worker = worker
        self.schedule = schedule
        self._read_due = read_due
        self._clock = clock
        self._poll_interval = poll_interval
        self._read_limit = max(1, read_limit)
        self._batch_window = max(0.0, batch_window)
        self.reads = 0  # reads of due times from the database

    async def read(self) -> None:
        """Merge the database's next due times into the schedule."""
        schedule = self.schedule
        schedule.begin_load()
        self.reads += 1
        times = await asyncio.to_thread(self._read_due, self._clock.now(), self._read_limit)
        schedule.load(times, complete=len(times) < self._read_limit)

    async def run(self) -> None:
        """Deliver what is due until cancelled (see the module's doc)."""
        clock, schedule = self._clock, self.schedule
        next_read = clock.monotonic()  # the first read rebuilds the schedule
        loop = asyncio.get_running_loop()
        busy_until = 0.0  # loop time before which a drain waits (the last one handled some)
        while True:
            schedule.arm()
            if clock.monotonic() >= next_read:
                await self.read()
                next_read = clock.monotonic() + self._poll_interval
            elif schedule.needs_load(clock.now()):
                await self.read()
            now = clock.now()
            if schedule.due(now):
                gather = busy_until - loop.time()
                if gather > 0:
                    await asyncio.sleep(gather)  # busy: let the next batch fill
                    now = clock.now()
                mark = schedule.mark()
                handled = await self.worker.drain()
                schedule.settle(now, mark)
                busy_until = loop.time() + self._batch_window if handled else 0.0
                continue
            until = next_read - clock.monotonic()
            due_in = schedule.seconds_until(now)
            if due_in is not None:
                until = min(until, due_in)
            if until > 0:
                await schedule.wait(until)
