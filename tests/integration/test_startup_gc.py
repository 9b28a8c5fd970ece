"""`Application.run` moves what the started server holds into the garbage collector's
permanent generation (app.py `freeze_startup_objects`), so that full collections stop walking
it, and takes it out again when the server stops (tests run many servers in one process)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from postroom.app import Application
from postroom.core.errors import StorageError
from tests.harness import make_config


def test_run_freezes_the_started_servers_objects_until_it_stops(tmp_path: Path) -> None:
    app = Application(make_config(tmp_path / "data"))
    seen: list[int] = []

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(app.run(stop))
        for _ in range(600):  # up to 30 s for the start
            if app.ready() and gc.get_freeze_count():
                break
            await asyncio.sleep(0.05)
        seen.append(gc.get_freeze_count())
        stop.set()
        await running

    assert gc.get_freeze_count() == 0
    asyncio.run(main())
    assert app.ready() is False
    assert seen[0] > 10_000  # the modules' objects at least, not a handful
    assert gc.get_freeze_count() == 0


def test_a_failed_start_freezes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "postroom.db").write_bytes(b"not a database")
    app = Application(make_config(data))
    with pytest.raises(StorageError):
        asyncio.run(app.run(asyncio.Event()))
    assert gc.get_freeze_count() == 0
