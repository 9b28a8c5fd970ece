"""Many big messages over SMTP at once: the server's peak memory (main + writer child).

Issue 9, item 3: SMTP held each message whole (about 2.4 times its size in the server, up to
9 times in the writer child), with no limit across connections. Bar: 20 concurrent 40 MB
messages keep the server's RSS (main + child) under 500 MB.

What it does: starts `postroom serve` (SQLite, writer process, default spool threshold and
memory budget), then --clients raw-socket SMTP clients connect, say EHLO/MAIL/RCPT/DATA, wait
for each other and send one message of --size MB each at the same time (the same dot-stuffed
bytes object is shared by the clients, so the benchmark itself holds one copy), and wait for
the reply. The RSS of the server (main + writer child, from /proc) is sampled every 20 ms;
it prints the RSS at rest and at its peak, the replies (250, 452, ...) and the time taken.
--kind text sends a compressible text attachment (base64 of words); --kind noise a base64
attachment of random bytes (incompressible).

    .venv/bin/python bench/smtp_memory.py [--clients 20] [--size 40] [--kind text|noise]
    POSTROOM_SRC=/path/to/other/checkout/src .venv/bin/python bench/smtp_memory.py  # compare
"""

from __future__ import annotations

import argparse
import base64
import collections
import os
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from served import LOOPBACK, MIB, RssSampler, http_json, mib, served

WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
]  # fmt: skip


def big_message(size: int, kind: str) -> bytes:
    rng = random.Random(9)
    raw_size = size * 3 // 4
    if kind == "noise":
        content = os.urandom(raw_size)
    else:
        content = " ".join(rng.choice(WORDS) for _ in range(size // 8)).encode()[:raw_size]
    encoded = base64.encodebytes(content).replace(b"\n", b"\r\n")
    head = (
        b"From: bench@example.com\r\nTo: sink@example.com\r\nSubject: big message\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain\r\n\r\nThe body of a big message.\r\n"
        b"--b1\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="data.bin"\r\n\r\n'
    )
    return head + encoded + b"--b1--\r\n"


class Client(threading.Thread):
    """One SMTP client: the transaction up to the 354, then (when all are there) the data."""

    def __init__(self, port: int, wire: bytes, barrier: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.wire = wire
        self.barrier = barrier
        self.reply = ""
        self.seconds = 0.0

    def _read_reply(self, sock: socket.socket, buffer: bytearray) -> str:
        while True:
            end = buffer.find(b"\r\n")
            while end >= 0:
                line = bytes(buffer[:end]).decode("utf-8", "replace")
                del buffer[: end + 2]
                if len(line) < 4 or line[3] != "-":
                    return line
                end = buffer.find(b"\r\n")
            data = sock.recv(65536)
            if not data:
                return "(connection closed)"
            buffer += data

    def run(self) -> None:
        buffer = bytearray()
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=600) as sock:
                self._read_reply(sock, buffer)
                for command in (
                    b"EHLO bench.test",
                    b"MAIL FROM:<bench@example.com>",
                    b"RCPT TO:<sink@example.com>",
                ):
                    sock.sendall(command + b"\r\n")
                    self._read_reply(sock, buffer)
                self.barrier.wait()
                started = time.perf_counter()
                sock.sendall(b"DATA\r\n")
                answer = self._read_reply(sock, buffer)
                if not answer.startswith("354"):
                    self.reply = answer
                    return
                view = memoryview(self.wire)
                for i in range(0, len(view), 1 << 20):
                    sock.sendall(view[i : i + (1 << 20)])
                self.reply = self._read_reply(sock, buffer)
                self.seconds = time.perf_counter() - started
                sock.sendall(b"QUIT\r\n")
        except OSError as exc:
            self.reply = f"error: {exc!r}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent messages (20)")
    parser.add_argument("--size", type=int, default=40, help="message size in MB (40)")
    parser.add_argument("--kind", choices=["text", "noise"], default="text")
    parser.add_argument("extra", nargs="*", help="more `postroom serve` options (after --)")
    args = parser.parse_args(argv)
    data = big_message(args.size * 1_000_000, args.kind)
    wire = (b"\r\n" + data).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"
    del data
    with (
        tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp,
        served(Path(tmp), *args.extra) as srv,
    ):
        time.sleep(1)
        _, rest = srv.rss()
        barrier = threading.Barrier(args.clients)
        clients = [Client(srv.smtp_port, wire, barrier) for _ in range(args.clients)]
        started = time.perf_counter()
        with RssSampler(srv.process.pid) as sampler:
            for client in clients:
                client.start()
            for client in clients:
                client.join()
        seconds = time.perf_counter() - started
        replies = collections.Counter(" ".join(c.reply.split(" ")[:2]) for c in clients)
        listing = http_json(f"{srv.base}/api/v1/messages?limit=1")
        assert isinstance(listing, dict)
        spool = srv.data_dir / "spool"
        left = list(spool.iterdir()) if spool.exists() else []
        db = srv.data_dir / "postroom.db"
        print(
            f"{args.clients} concurrent messages of {len(wire) / MIB:,.1f} MiB ({args.kind}) "
            f"in {seconds:.1f} s; replies: "
            + ", ".join(f"{n} x {r}" for r, n in sorted(replies.items()))
        )
        accepted = [c.seconds for c in clients if c.reply.startswith("250")]
        if accepted:
            print(
                f"time per accepted message (DATA to 250): min {min(accepted):.1f} s, "
                f"max {max(accepted):.1f} s"
            )
        print(
            f"messages stored: {listing['messages_count']}; database file "
            f"{mib(db.stat().st_size)}; spool files left: {len(left)}"
        )
        print(
            f"server RSS (main + writer child): at rest {mib(rest)}, "
            f"peak {mib(sampler.peak_total)} (main alone: peak {mib(sampler.peak_main)}) "
            f"(bar: < 500 MB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
