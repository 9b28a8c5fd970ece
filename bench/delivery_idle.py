"""An idle delivering server: how often it queries the queue, and its CPU, with nothing due.

Starts the server in this process (all roles, delivery on, a fresh SQLite store in a temporary
directory, the system clock), lets it settle for 2 s, then counts for --seconds the calls of
the queue store's `claim` (each one write transaction) and `due_times` (the delivery
schedule's indexed read, where the tree has one), and the process's CPU time. Prints them per
second. Compare two trees by running this script from each in turn (or with
PYTHONPATH=<other tree>/src).

    .venv/bin/python bench/delivery_idle.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.harness

from tests.harness import make_config

from postroom.app import Application
from postroom.core.clock import SystemClock
from postroom.storage.queue import SqlQueueStore

SETTLE = 2.0


def count_calls(name: str, counts: dict[str, int]) -> None:
    """Count the calls of SqlQueueStore.`name` (if this tree has it) in `counts[name]`."""
    real = getattr(SqlQueueStore, name, None)
    counts[name] = 0
    if real is None:
        counts[name] = -1  # not in this tree
        return

    def counted(self: SqlQueueStore, *args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return real(self, *args, **kwargs)

    setattr(SqlQueueStore, name, counted)


async def measure(seconds: float) -> dict[str, float]:
    counts: dict[str, int] = {}
    count_calls("claim", counts)
    count_calls("due_times", counts)
    with tempfile.TemporaryDirectory(prefix="postroom-idle-") as tmp:
        config = make_config(Path(tmp) / "data", delivery=True)
        app = Application(config, SystemClock())
        await app.start()
        try:
            await asyncio.sleep(SETTLE)
            before = dict(counts)
            cpu, wall = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            after = dict(counts)
        finally:
            await app.stop()
    found = {"wall": wall, "cpu_ms_per_s": cpu * 1000 / wall}
    for name in counts:
        found[name] = -1 if after[name] < 0 else (after[name] - before[name]) / wall
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    found = asyncio.run(measure(args.seconds))
    reads = "n/a" if found["due_times"] < 0 else f"{found['due_times']:.3f}/s"
    print(
        f"idle {found['wall']:.0f} s: claim queries {found['claim']:.3f}/s, due-time reads "
        f"{reads}, CPU {found['cpu_ms_per_s']:.2f} ms/s (this process, every job)"
    )


if __name__ == "__main__":
    main()
