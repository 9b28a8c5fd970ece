"""Reading one big message many times at once: server memory and SMTP latency meanwhile.

Issue 9, item 3: 10 parallel `GET /api/v1/message/ID` of one 40 MB message (about 2 MB on
disk with zstd) took the server's RSS from 235 to 1,205 MiB and stalled SMTP for 2.3 s.
Bar: RSS growth under 200 MB, SMTP acceptance latency p99 under 100 ms meanwhile.

What it does: starts `postroom serve` (SQLite, writer process), stores one message of
--size MB (a text body and a base64 attachment of compressible text) over SMTP, waits, then
runs --readers parallel GETs of --path (default the message view; `raw` and `part` read the
raw source and the attachment) for --rounds rounds (nothing read before: the first round is
cold; with --distinct each reader reads its own copy, so no read shares another's work),
while one SMTP client sends small messages back to back on one connection and times each
(MAIL to the 250 after DATA). It prints the RSS of the server (main + writer child) at rest
and at its peak (sampled every 20 ms) and the latency percentiles of the SMTP messages sent
without and during the reads.

    .venv/bin/python bench/big_reads.py [--size 40] [--readers 10] [--path view|raw|part]
    POSTROOM_SRC=/path/to/other/checkout/src .venv/bin/python bench/big_reads.py   # compare
"""

from __future__ import annotations

import argparse
import base64
import random
import smtplib
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from served import LOOPBACK, MIB, RssSampler, http_json, mib, served

WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
]  # fmt: skip


def big_message(size: int) -> bytes:
    rng = random.Random(9)
    text = " ".join(rng.choice(WORDS) for _ in range(size // 8)).encode()[: size * 3 // 4]
    encoded = base64.encodebytes(text).replace(b"\n", b"\r\n")
    head = (
        b"From: bench@example.com\r\nTo: reader@example.com\r\nSubject: big read\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain\r\n\r\nThe body of a big message.\r\n"
        b"--b1\r\nContent-Type: text/plain; name=log.txt\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="log.txt"\r\n\r\n'
    )
    return head + encoded + b"--b1--\r\n"


def small_message(n: int) -> bytes:
    return (
        f"From: probe@example.com\r\nTo: probe@example.com\r\nSubject: probe {n}\r\n\r\n"
        "a small message sent while big reads run\r\n"
    ).encode()


class Prober(threading.Thread):
    """Sends small messages back to back on one connection; times each transaction."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.errors = 0

    def run(self) -> None:
        with smtplib.SMTP(LOOPBACK, self.port, timeout=60) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                started = time.perf_counter()
                try:
                    client.sendmail("probe@example.com", ["probe@example.com"], small_message(n))
                except smtplib.SMTPException:
                    self.errors += 1
                    continue
                self.latencies.append(time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=40, help="message size in MB (default 40)")
    parser.add_argument("--readers", type=int, default=10, help="parallel GETs (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of parallel GETs")
    parser.add_argument("--path", choices=["view", "raw", "part"], default="view")
    parser.add_argument(
        "--distinct", action="store_true", help="store one copy per reader; each reads its own"
    )
    args = parser.parse_args(argv)
    data = big_message(args.size * 1_000_000)
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp, served(Path(tmp)) as srv:
        copies = args.readers if args.distinct else 1
        for _ in range(copies):
            with smtplib.SMTP(LOOPBACK, srv.smtp_port, timeout=120) as client:
                client.sendmail("bench@example.com", ["reader@example.com"], data)
        listing = http_json(f"{srv.base}/api/v1/messages?limit={copies}")
        assert isinstance(listing, dict)
        ids = [m["ID"] for m in listing["messages"]]
        db = srv.data_dir / "postroom.db"
        print(
            f"{copies} message(s) of {len(data) / MIB:,.1f} MiB; "
            f"database file {mib(db.stat().st_size)}"
        )
        suffix = {"view": "", "raw": "/raw", "part": "/part/2"}[args.path]
        urls = [
            f"{srv.base}/api/v1/message/{ids[i % len(ids)]}{suffix}" for i in range(args.readers)
        ]
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        prober = Prober(srv.smtp_port)
        prober.start()
        time.sleep(1)
        warm = len(prober.latencies)
        time.sleep(3)  # the same client without reads: the machine's own latency
        before = len(prober.latencies)
        quiet = prober.latencies[warm:before]
        failures: list[str] = []

        def read(url: str) -> None:
            try:
                with opener.open(url, timeout=300) as response:
                    while response.read(1 << 20):
                        pass
            except OSError as exc:
                failures.append(repr(exc))

        _, rest = srv.rss()
        started = time.perf_counter()
        with RssSampler(srv.process.pid) as sampler:
            for _ in range(args.rounds):
                readers = [threading.Thread(target=read, args=(url,)) for url in urls]
                for thread in readers:
                    thread.start()
                for thread in readers:
                    thread.join()
        seconds = time.perf_counter() - started
        prober.stop.set()
        prober.join()
        during = prober.latencies[before:]
        print(f"{args.readers} parallel GET {suffix or '(view)'} x {args.rounds}: {seconds:.2f} s")
        if failures:
            print(f"  failed reads: {len(failures)} ({failures[0]})")
        print(
            f"server RSS (main + writer): at rest {mib(rest)}, peak {mib(sampler.peak_total)}, "
            f"growth {mib(sampler.peak_total - rest)} (bar: < 200 MB)"
        )
        if quiet:
            print(
                f"SMTP acceptance latency without reads ({len(quiet)} messages in 3 s): "
                f"p50 {statistics.median(quiet) * 1000:.1f} ms, "
                f"p99 {percentile(quiet, 0.99) * 1000:.1f} ms"
            )
        if during:
            print(
                f"SMTP acceptance latency during the reads ({len(during)} messages): "
                f"p50 {statistics.median(during) * 1000:.1f} ms, "
                f"p99 {percentile(during, 0.99) * 1000:.1f} ms, "
                f"max {max(during) * 1000:.1f} ms (bar: p99 < 100 ms); errors {prober.errors}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
