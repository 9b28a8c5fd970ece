"""The delivery worker's group commit: results arriving while a transaction is written go
together into the next one, each caller gets its own answer, a failed write fails only the
callers in it, and a cancelled caller does not cut the transaction it is in."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from postroom.core.errors import StorageError
from postroom.core.types import Delivered
from postroom.delivery.recorder import CompletionRecorder

NOW = datetime(2026, 12, 4, tzinfo=UTC)


class Store:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.fail_next = False

    def write(self, delivered: Sequence[Delivered]) -> list[bool]:
        self.gate.wait(5.0)
        self.batches.append([d.entry_id for d in delivered])
        if self.fail_next:
            self.fail_next = False
            raise StorageError("the queue failed")
        return [d.entry_id % 2 == 0 for d in delivered]  # odd ids: lease lost


def done(entry_id: int) -> Delivered:
    return Delivered(entry_id, "w1", NOW)


async def test_results_waiting_for_a_transaction_share_the_next_one() -> None:
    store = Store()
    recorder = CompletionRecorder(store.write)
    first = asyncio.create_task(recorder.complete(done(2)))
    await asyncio.sleep(0.05)  # the first transaction is being written (the gate is shut)
    rest = [asyncio.create_task(recorder.complete(done(i))) for i in (3, 4, 6)]
    await asyncio.sleep(0.05)
    store.gate.set()
    assert await first is True
    assert [await t for t in rest] == [False, True, True]
    assert store.batches == [[2], [3, 4, 6]]


async def test_a_batch_is_limited_and_an_idle_recorder_writes_at_once() -> None:
    store = Store()
    store.gate.set()
    recorder = CompletionRecorder(store.write, limit=2)
    assert await recorder.complete(done(8)) is True
    results = await asyncio.gather(*(recorder.complete(done(i)) for i in (10, 12, 14, 16, 18)))
    assert results == [True] * 5
    assert store.batches == [[8], [10, 12], [14, 16], [18]]


async def test_a_failed_write_fails_its_callers_only() -> None:
    store = Store()
    store.gate.set()
    store.fail_next = True
    recorder = CompletionRecorder(store.write)
    with pytest.raises(StorageError):
        await recorder.complete(done(2))
    assert await recorder.complete(done(4)) is True


class Refusing(Store):
    """A database that refuses every transaction holding entry `bad`."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad = bad
        self.gate.set()

    def write(self, delivered: Sequence[Delivered]) -> list[bool]:
        self.batches.append([d.entry_id for d in delivered])
        if any(d.entry_id == self.bad for d in delivered):
            raise StorageError(f"entry {self.bad} refused")
        return [True for _ in delivered]


async def test_one_refused_result_does_not_lose_the_others_of_its_batch() -> None:
    store = Refusing(bad=6)
    recorder = CompletionRecorder(store.write)
    results = await asyncio.gather(
        *(recorder.complete(done(i)) for i in (2, 4, 6, 8)), return_exceptions=True
    )
    assert results[:2] == [True, True] and results[3] is True
    assert isinstance(results[2], StorageError)
    # The batch failed as a whole, then each of its results was written alone.
    assert store.batches == [[2, 4, 6, 8], [2], [4], [6], [8]]


async def test_a_cancelled_caller_leaves_its_transaction_to_finish() -> None:
    store = Store()
    recorder = CompletionRecorder(store.write)
    caller = asyncio.create_task(recorder.complete(done(2)))
    await asyncio.sleep(0.05)
    caller.cancel()
    store.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    for _ in range(100):
        if store.batches:
            break
        await asyncio.sleep(0.01)
    assert store.batches == [[2]]
