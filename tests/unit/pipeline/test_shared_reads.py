"""SharedReads: questions asked while a read runs wait for the next read (which began after
them); each gets its own answer; a failed read fails its batch only."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from postroom.pipeline.shared_reads import SharedReads


class Database:
    """A value that changes, read by a blocking call the test can hold."""

    def __init__(self) -> None:
        self.value = 0
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_next = False

    def read(self, questions: Sequence[str]) -> list[str]:
        self.batches.append(list(questions))
        value = self.value  # read when the read begins
        self.started.set()
        self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database gone")
        return [f"{question}={value}" for question in questions]


async def until(condition: threading.Event) -> None:
    await asyncio.to_thread(condition.wait)


async def test_questions_asked_during_a_read_wait_for_a_read_that_began_after_them() -> None:
    db = Database()
    reads = SharedReads(db.read)
    db.release.clear()
    first = asyncio.ensure_future(reads.ask("a"))
    await until(db.started)  # the read for "a" has read the value 0 and is held
    db.value = 1  # committed after "a" was read, before "b" and "c" are asked
    later = [asyncio.ensure_future(reads.ask(q)) for q in ("b", "c")]
    await asyncio.sleep(0)
    db.release.set()
    assert await first == "a=0"
    assert await asyncio.gather(*later) == ["b=1", "c=1"]  # one read for both, after the change
    assert db.batches == [["a"], ["b", "c"]]


async def test_a_failed_read_fails_its_batch_and_the_next_read_runs() -> None:
    db = Database()
    reads = SharedReads(db.read)
    db.release.clear()
    failing = asyncio.ensure_future(reads.ask("a"))
    await until(db.started)
    db.fail_next = True
    after = asyncio.ensure_future(reads.ask("b"))
    await asyncio.sleep(0)
    db.release.set()
    with pytest.raises(RuntimeError, match="database gone"):
        await failing
    assert await after == "b=0"


async def test_a_waiter_that_gives_up_leaves_the_others_their_answers() -> None:
    db = Database()
    reads = SharedReads(db.read)
    db.release.clear()
    running = asyncio.ensure_future(reads.ask("a"))
    await until(db.started)
    gone = asyncio.ensure_future(reads.ask("b"))
    kept = asyncio.ensure_future(reads.ask("c"))
    await asyncio.sleep(0)
    gone.cancel()
    db.release.set()
    assert await running == "a=0"
    assert await kept == "c=0"
    assert gone.cancelled()


async def test_a_question_asked_as_a_read_ends_is_answered() -> None:
    """A question asked after a read answered its batch, before that read's task is over,
    starts the next read (it is not left waiting for a read that never comes)."""
    db = Database()
    reads = SharedReads(db.read)
    first = asyncio.ensure_future(reads.ask("a"))
    assert await first == "a=0"  # answered; the read's task may still be finishing
    assert await asyncio.wait_for(reads.ask("b"), 30) == "b=0"


async def test_parallel_reads_run_side_by_side() -> None:
    """With parallel=2 a second question does not wait for the first read; a third waits
    for one of them, and the questions after it share its read."""
    db = Database()
    reads = SharedReads(db.read, parallel=2)
    db.release.clear()
    first = asyncio.ensure_future(reads.ask("a"))
    second = asyncio.ensure_future(reads.ask("b"))
    await asyncio.sleep(0)
    await until(db.started)
    later = [asyncio.ensure_future(reads.ask(q)) for q in ("c", "d")]
    await asyncio.sleep(0)
    db.release.set()
    assert await asyncio.gather(first, second, *later) == ["a=0", "b=0", "c=0", "d=0"]
    assert sorted(db.batches[:2]) == [["a"], ["b"]]
    assert db.batches[2:] == [["c", "d"]]
