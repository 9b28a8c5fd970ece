"""Parallel GETs of an unread message write its read flag once (api/big_reads.py)."""

from __future__ import annotations

import asyncio

import pytest

from postroom.api.big_reads import BigReads


async def test_parallel_marks_of_one_message_write_once() -> None:
    reads = BigReads()
    writes: list[str] = []
    gate = asyncio.Event()

    async def write(name: str) -> None:
        writes.append(name)
        await gate.wait()

    calls = [reads.mark_read(("p", "m1"), lambda: write("m1")) for _ in range(10)]
    calls.append(reads.mark_read(("p", "m2"), lambda: write("m2")))
    tasks = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert sorted(writes) == ["m1", "m2"]
    assert results.count(True) == 2
    # Once done, a later request (the flag was reset meanwhile, say) writes again.
    assert await reads.mark_read(("p", "m1"), lambda: write("m1"))
    assert writes.count("m1") == 2


async def test_a_failed_write_does_not_block_the_next() -> None:
    reads = BigReads()

    async def fail() -> None:
        raise OSError("disk")

    async def ok() -> None:
        return None

    with pytest.raises(OSError):
        await reads.mark_read(("p", "m"), fail)
    assert await reads.mark_read(("p", "m"), ok)
