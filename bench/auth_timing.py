"""Can a client tell an unknown SMTP user from a wrong password by the time AUTH takes?

Starts `postroom serve` with `--submission` (AUTH allowed without TLS, throttling and the error
limit off) in a temporary data directory holding one SMTP credential, opens one connection
and sends `--attempts` failing `AUTH PLAIN` commands of each kind, interleaved in a random
order (seeded, `--seed`): an unknown user name, and the existing user with a wrong password.
Prints, per kind, the median and the 10th and 90th percentiles of the time from writing the
command to reading the 535 reply, and the difference of the medians. Everything listens on
127.0.0.1 only; the server is stopped at the end, also on errors and Ctrl-C.

    .venv/bin/python bench/auth_timing.py [--attempts 100] [--seed 1] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from postroom.core.platform import Project, SmtpCredential
from postroom.core.secrets import new_secret, secret_digest
from postroom.smtp.tls import generate_self_signed
from postroom.storage.engine import open_platform_store

LOOPBACK = "127.0.0.1"
USER = "bench-user"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def prepare(data_dir: Path) -> None:
    now = datetime.now(UTC)
    store = open_platform_store(str(data_dir))
    try:
        store.create_project(Project("bench", "Bench", "live", now))
        secret = secret_digest(new_secret("prs"))
        store.add_smtp_credential(SmtpCredential("c1", "bench", USER, secret, (), now))
    finally:
        store.close()


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n") or data.split(b"\r\n")[-2][3:4] == b"-":
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    return data


def measure(port: int, attempts: int, seed: int) -> dict[str, list[float]]:
    lines = {
        "unknown user": b"AUTH PLAIN "
        + base64.b64encode(b"\0no-such-user\0wrong-password")
        + b"\r\n",
        "wrong password": b"AUTH PLAIN "
        + base64.b64encode(b"\0" + USER.encode() + b"\0wrong-password")
        + b"\r\n",
    }
    times: dict[str, list[float]] = {kind: [] for kind in lines}
    rng = random.Random(seed)
    with socket.create_connection((LOOPBACK, port), timeout=30) as sock:
        read_reply(sock)
        sock.sendall(b"EHLO bench.test\r\n")
        read_reply(sock)
        for _ in range(attempts):
            order = list(lines.items())
            rng.shuffle(order)
            for kind, line in order:
                started = time.perf_counter()
                sock.sendall(line)
                reply = read_reply(sock)
                times[kind].append(time.perf_counter() - started)
                if not reply.startswith(b"535 "):
                    raise RuntimeError(f"expected 535, got {reply!r}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=100, help="per kind")
    parser.add_argument("--seed", type=int, default=1, help="for the order of the attempts")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="postroom-auth-bench-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        data_dir = workdir / "data"
        prepare(data_dir)
        cert, key = workdir / "cert.pem", workdir / "key.pem"
        generate_self_signed(cert, key, "localhost")
        port = free_port()
        argv = [
            sys.executable, "-c", "from postroom.cli import main; main()", "serve",
            "--data-dir", str(data_dir),
            "--smtp", f"{LOOPBACK}:{free_port()}",
            "--http", f"{LOOPBACK}:{free_port()}",
            "--submission", f"{LOOPBACK}:{port}",
            "--submission-allow-insecure-auth",
            "--submission-auth-max-failures", "0",
            "--max-errors", "0",
            "--tls-cert", str(cert), "--tls-key", str(key),
            "--log-level", "warning",
        ]  # fmt: skip
        log = (workdir / "server.log").open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                print((workdir / "server.log").read_text(), file=sys.stderr)
                return 1
            try:
                with socket.create_connection((LOOPBACK, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    print("the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
        times = measure(port, args.attempts, args.seed)
        print(f"failed AUTH PLAIN on the submission door, {args.attempts} attempts per kind")
        medians: list[float] = []
        for kind, values in times.items():
            cuts = statistics.quantiles(values, n=10)
            median = statistics.median(values)
            medians.append(median)
            print(
                f"  {kind:15} median {median * 1e3:8.3f} ms   "
                f"p10 {cuts[0] * 1e3:8.3f} ms   p90 {cuts[-1] * 1e3:8.3f} ms"
            )
        print(f"  difference of the medians: {abs(medians[0] - medians[1]) * 1e6:.0f} µs")
        return 0
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
