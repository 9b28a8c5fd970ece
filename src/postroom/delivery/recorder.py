"""Group commit of delivered recipients for the delivery worker.

Each delivered recipient used to be recorded in its own transaction: with 20 deliveries in
flight on one process, the worker spent more on commits (and, on SQLite, on turns of the one
write lock it shares with the doors accepting mail) than on SMTP. Here every `complete` waits
for its own result, as before, but the calls that arrive while a transaction is being written
go together into the next one (`QueueStore.complete_many`): an idle worker still writes each
result at once, a busy one writes many per commit. Nothing is reported before its transaction
committed, so a crash loses at most the results not yet committed, whose recipients are
delivered again (as for any transaction cut by a crash). When a transaction of several results
fails, each of them is written again in a transaction of its own: a result the database
refuses fails alone, the others are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from postroom.core.types import Delivered

BATCH_LIMIT = 500  # results per transaction at most


class CompletionRecorder:
    """`await complete(delivered)`: whether the entry changed (False: the lease was lost)."""

    def __init__(
        self,
        write: Callable[[Sequence[Delivered]], list[bool]],
        limit: int = BATCH_LIMIT,
    ) -> None:
        self._write = write
        self._limit = limit
        self._waiting: list[tuple[Delivered, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def complete(self, delivered: Delivered) -> bool:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((delivered, result))
        if self._writer is None:
            self._writer = loop.create_task(self._write_all())
        return await result

    async def _write_all(self) -> None:
        """Write the waiting results, one transaction per batch, until none is left. Its own
        task: a cancelled caller does not cut the transaction its result is in."""
        try:
            while self._waiting:
                batch = self._waiting[: self._limit]
                del self._waiting[: self._limit]
                try:
                    await self._write_batch(batch)
                except Exception:
                    # One result the database refuses must not take the others with it:
                    # each is written again alone, and only those that fail again fail.
                    for one in batch:
                        with contextlib.suppress(Exception):
                            await self._write_batch([one])
        finally:
            self._writer = None

    async def _write_batch(self, batch: list[tuple[Delivered, asyncio.Future[bool]]]) -> None:
        """One transaction for `batch`; its callers get their answers, or (when it fails and
        it holds a single result) the error, which is raised."""
        try:
            changed = await asyncio.to_thread(self._write, [d for d, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                raise
            for _, result in batch:
                if not result.done():
                    result.set_exception(exc)
            raise
        for (_, result), ok in zip(batch, changed, strict=True):
            if not result.done():
                result.set_result(ok)
