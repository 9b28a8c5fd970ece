"""The delivery worker alone: CPU per message to take queued messages to an `smtp-sink`.

N messages (default 5,000 of 2,048 octets, one recipient each) are queued in a fresh SQLite
store (the acceptance path is not measured), then `DeliveryWorker.drain()` runs, as the server
runs it (shaping defaults, VERP return paths, batch 200, concurrency 20), relaying to Postfix's
`smtp-sink` on loopback until every entry is delivered. Printed per round: wall seconds,
messages per second and the CPU milliseconds per message of this process (every thread: the
event loop and the database threads; smtp-sink is another process). Rounds interleave with
nothing else; compare two trees by running this script from each in turn (or with
PYTHONPATH=<other tree>/src) and comparing the medians.

    .venv/bin/python bench/delivery_worker.py [--messages N] [--size N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*, as postfix_instance

from tests.integration.storage.factory import make_message

from postfix_instance import SmtpSink, ensure_postfix_installed
from postroom.bounces.verp import Verp
from postroom.core.clock import FakeClock, SystemClock
from postroom.core.types import DELIVERED, Envelope
from postroom.delivery.return_path import ReturnPaths
from postroom.delivery.shaping import Shaper, load_rules
from postroom.delivery.worker import DeliverySettings, DeliveryWorker, Relay
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.platform.factory import LazyResolver
from postroom.storage import open_store

SENDER = "bench@example.org"
RECIPIENT = "sink@example.com"


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


async def one_round(workdir: Path, messages: int, size: int) -> tuple[float, float]:
    """Queue `messages`, deliver them all; (wall seconds, CPU seconds) of the delivery."""
    clock = SystemClock()
    made = FakeClock(clock.now() - timedelta(minutes=1))  # the messages' creation times
    store = open_store(
        str(workdir / "data"), clock, writer_process=False, complete=complete_message
    )
    body = b"x" * 76 + b"\r\n"
    try:
        with SmtpSink(workdir) as sink:
            raw_head = f"From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: bench\r\n\r\n".encode()
            raw = raw_head + body * max(1, (size - len(raw_head)) // len(body))
            envelope = Envelope(SENDER, (RECIPIENT,), {}, ({},))
            for start in range(0, messages, 500):
                batch = []
                for _ in range(min(500, messages - start)):
                    base = make_message(made, project="bench", status="queued", raw=raw, step=0)
                    batch.append(
                        dataclasses.replace(
                            base, envelope=envelope, deliveries=deliveries_for(envelope)
                        )
                    )
                await asyncio.gather(*(store.add(m) for m in batch))
            settings = DeliverySettings(
                helo_name="bench.postroom.test",
                routes={"example.com": Relay("127.0.0.1", sink.port, "none")},
                allow_private=True,
            )
            worker = DeliveryWorker(
                store.queue,
                store,
                LazyResolver(None),
                clock,
                settings,
                shaper=Shaper(load_rules()),
                return_paths=ReturnPaths(Verp.load_or_create(workdir), "bounces.example.org"),
            )
            wall, cpu = time.perf_counter(), time.process_time()
            done = 0
            while done < messages:
                handled = await worker.drain()
                done += handled
                if handled == 0:
                    await asyncio.sleep(0.05)
            await worker.shutdown()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            delivered = sum(1 for e in store.queue.all_entries() if e.status == DELIVERED)
            if delivered != messages:
                raise SystemExit(f"only {delivered} of {messages} delivered")
    finally:
        await store.close()
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=_positive, default=5000)
    parser.add_argument("--size", type=_positive, default=2048)
    parser.add_argument("--rounds", type=_positive, default=3)
    args = parser.parse_args()
    ensure_postfix_installed()
    walls: list[float] = []
    cpus: list[float] = []
    for round_ in range(1, args.rounds + 1):
        workdir = Path(tempfile.mkdtemp(prefix="postroom-delivery-"))
        try:
            wall, cpu = asyncio.run(one_round(workdir, args.messages, args.size))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        walls.append(wall)
        cpus.append(cpu)
        print(
            f"round {round_}: {args.messages} messages in {wall:.2f} s = "
            f"{args.messages / wall:.0f} msg/s, CPU {1000 * cpu / args.messages:.3f} ms/msg",
            flush=True,
        )
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"median: {args.messages / wall:.0f} msg/s, CPU {1000 * cpu / args.messages:.3f} ms/msg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
