"""HTTP body limits: the server's memory while clients send bodies far above the limit.

Starts `postroom serve` (default --max-message-size 40MB), then sends to `POST /api/v1/send`
and `POST /api/v2/projects`, over raw sockets:

* `declared`: a Content-Length of --size bytes, then the body at full speed;
* `chunked`: Transfer-Encoding chunked, --size bytes in 1 MiB chunks;

each until the server answers (413) or closes, and prints the status, how many bytes the
client managed to send before the answer, and the RSS of the server (main process + writer
child) before and at its peak (sampled every 20 ms). Before body limits, a 300 MB JSON body
grew the main process by about 2.6 GB.

    .venv/bin/python bench/http_body_limits.py [--size 300MB]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

from served import LOOPBACK, RssSampler, mib, served


def push(port: int, path: str, size: int, chunked: bool) -> tuple[str, int]:
    """Send one oversized request; (status line or what happened, bytes sent)."""
    head = f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    block = b"x" * (1024 * 1024)
    sent = 0
    with socket.create_connection((LOOPBACK, port)) as sock:
        sock.sendall(head.encode())
        sock.settimeout(30)
        try:
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                sent += len(block)
                sock.setblocking(False)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.settimeout(30)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
        except (ConnectionResetError, TimeoutError) as exc:
            answer = f"no answer ({type(exc).__name__})"
    return answer or "closed", sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="300MB", help="body size to attempt (default 300MB)")
    args = parser.parse_args(argv)
    size = int(float(args.size.upper().removesuffix("MB")) * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp, served(Path(tmp)) as srv:
        time.sleep(1)
        _, base_total = srv.rss()
        print(f"server RSS at rest (main + writer): {mib(base_total)}")
        print(f"{'endpoint':<20} {'body':<9} {'answer':<34} {'client sent':>12} {'peak RSS':>10}")
        worst = 0
        for path in ("/api/v1/send", "/api/v2/projects"):
            for chunked in (False, True):
                with RssSampler(srv.process.pid) as sampler:
                    answer, sent = push(srv.http_port, path, size, chunked)
                    time.sleep(0.3)
                worst = max(worst, sampler.peak_total)
                kind = "chunked" if chunked else "declared"
                print(
                    f"{path:<20} {kind:<9} {answer[:34]:<34} {mib(sent):>12} "
                    f"{mib(sampler.peak_total):>10}"
                )
        print(f"peak growth over rest: {mib(worst - base_total)} (body attempted: {mib(size)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
