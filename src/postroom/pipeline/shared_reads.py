"""Reads of the database that many sessions ask for at once, answered by one read.

Every accepted message asks the database a small question (has the platform's change counter
moved? is a recipient suppressed?). Asked one by one, each costs a hop to a worker thread and a
statement, and under load the hops cost more than the statements. `SharedReads` runs one
blocking read at a time on a worker thread for every question asked so far: the questions that
arrive while it runs wait for the next one. So each answer comes from a read that began after
its question was asked, and sees everything committed before that (a suppression added, a
credential deleted), exactly as a read of its own would; under load one hop serves many.
The same batching serves other blocking work asked for message by message (the RSA
signatures of pipeline/submission.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Q = TypeVar("Q")
A = TypeVar("A")


class SharedReads(Generic[Q, A]):
    """`read(questions)` (blocking, run on a worker thread) answers a batch of questions, one
    answer per question in order; `ask` queues one question and waits for its answer. A
    failed read fails every question of its batch. At most `parallel` reads run at once
    (CPU-bound work that releases the GIL, such as RSA signatures, may use several cores)."""

    def __init__(self, read: Callable[[Sequence[Q]], Sequence[A]], parallel: int = 1) -> None:
        self._read = read
        self._parallel = max(1, parallel)
        self._waiting: list[tuple[Q, asyncio.Future[A]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def ask(self, question: Q) -> A:
        future: asyncio.Future[A] = asyncio.get_running_loop().create_future()
        self._waiting.append((question, future))
        if len(self._running) < self._parallel:
            self._start()
        return await future

    def _start(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._answer(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _answer(self, batch: list[tuple[Q, asyncio.Future[A]]]) -> None:
        try:
            answers = await asyncio.to_thread(self._read, [question for question, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError("a shared read answered a different number of questions")
        except Exception as exc:  # handed to every waiter of the batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:  # cancelled (the server stops): so are the waiters
            for _, future in [*batch, *self._waiting]:
                future.cancel()
            self._waiting = []
            raise
        else:
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
        # This read is over (out of the count now: a question asked before its task is done
        # must find the room free), and the next batch starts in its place.
        current = asyncio.current_task()
        if current is not None:
            self._running.discard(current)
        if self._waiting and len(self._running) < self._parallel:
            self._start()
