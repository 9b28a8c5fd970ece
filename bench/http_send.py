"""Acceptance rate of the HTTP sending APIs, against the SMTP submission door in the same run.

Starts `postroom serve` with `--submission` and `--ses` in a temporary data directory holding
a live project "bench" (domain example.com with an active DKIM key, RSA 2048 by default, as
bench/submission_acceptance.py prepares it) and a capture project "benchcap", then measures in
turn, each answer given only after the message and its queue entries are durably committed:

1. the SMTP submission door: `--clients` aiosmtplib clients, STARTTLS + AUTH, `--messages`
   messages of ~`--size` octets each (bench/submission_acceptance.py's clients);
2. the native API, `POST /api/v2/messages`, live project: `--clients` clients on keep-alive
   HTTP/1.1 connections (a minimal asyncio client), the same number of ~`--size`-octet
   messages each;
3. the same into the capture project;
4. SES `SendBulkEmail` with `--destinations` entries per call (one templated message each),
   live then capture: `--bulk-clients` threads with their own boto3 sesv2 client make
   `--bulk-calls` calls each; the figure is recipients per second.

Besides each rate it prints the server's CPU time per message or recipient (its process,
not the writer child), a figure less sensitive to the other loads of a shared machine.
Everything listens on 127.0.0.1 only; the server is stopped at the end, also on errors.

    .venv/bin/python bench/http_send.py [--clients 8] [--messages 100] [--size 2048]
        [--destinations 50] [--bulk-clients 4] [--bulk-calls 10] [--key rsa|ed25519|none]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from postroom.core.clock import SystemClock
from postroom.core.platform import ApiKey, Project
from postroom.core.secrets import new_api_key
from postroom.platform.ses_keys import SesKeyService
from postroom.smtp.tls import generate_self_signed
from postroom.storage.engine import open_platform_store
from postroom.storage.sealing import SecretBox
from postroom.storage.sending_store import SqlSendingStore
from submission_acceptance import LOOPBACK, free_port, prepare, run_clients


def prepare_http(data_dir: Path) -> dict[str, Any]:
    """The capture project, a send key and an SES key pair for each project."""
    now = datetime.now(UTC)
    store = open_platform_store(str(data_dir))
    try:
        store.create_project(Project("benchcap", "Bench capture", "capture", now))
        tokens = {}
        for project in ("bench", "benchcap"):
            issued = new_api_key()
            store.add_api_key(
                ApiKey(issued.key_id, project, "bench", ("send",), issued.digest, now)
            )
            tokens[project] = issued.token
        keys = SesKeyService(
            store, SqlSendingStore(store), SecretBox.load_or_create(data_dir), SystemClock()
        )
        ses = {}
        for project in ("bench", "benchcap"):
            pair = keys.create(project)
            ses[project] = (pair.key.id, pair.secret)
        return {"tokens": tokens, "ses": ses}
    finally:
        store.close()


def body_text(size: int) -> str:
    line = "The quick brown fox jumps over the lazy dog, again and again. 0123456789\r\n"
    text = (line * (size // len(line) + 1))[:size]
    return text[: text.rfind("\r\n") + 2]


async def native(
    port: int, token: str, clients: int, messages: int, size: int
) -> tuple[int, float]:
    """`clients` keep-alive HTTP/1.1 connections, each posting `messages` messages one after
    the other. A minimal client (asyncio streams, requests written whole, answers read by
    Content-Length): a full client library costs more CPU than the server on this machine."""
    text = body_text(size)

    async def client(number: int) -> int:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        sent = 0
        try:
            for i in range(messages):
                payload = json.dumps(
                    {
                        "from": "Bench <bench@example.com>",
                        "to": "rcpt@example.net",
                        "subject": f"message {number}-{i}",
                        "text": text,
                    }
                ).encode()
                writer.write(
                    b"POST /api/v2/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + f"Authorization: Bearer {token}\r\n".encode()
                    + b"Content-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1]
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                answer = await reader.readexactly(length)
                if status != b"200":
                    raise RuntimeError(f"native send: {status!r} {answer[:300]!r}")
                sent += 1
        finally:
            writer.close()
        return sent

    start = time.perf_counter()
    counts = await asyncio.gather(*(client(n) for n in range(clients)))
    return sum(counts), time.perf_counter() - start


def bulk(
    endpoint: str, pair: tuple[str, str], threads: int, calls: int, destinations: int
) -> tuple[int, float]:
    def ses() -> Any:
        return boto3.client(
            "sesv2",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=pair[0],
            aws_secret_access_key=pair[1],
            config=botocore.config.Config(retries={"max_attempts": 1}, max_pool_connections=2),
        )

    ses().create_email_template(
        TemplateName="bench",
        TemplateContent={"Subject": "Hello {{name}}", "Text": "Dear {{name}},\n" + body_text(1800)},
    )

    def worker(number: int) -> int:
        client = ses()
        done = 0
        for call in range(calls):
            entries = [
                {
                    "Destination": {"ToAddresses": [f"r{number}-{call}-{i}@example.net"]},
                    "ReplacementEmailContent": {
                        "ReplacementTemplate": {
                            "ReplacementTemplateData": json.dumps({"name": f"n{i}"})
                        }
                    },
                }
                for i in range(destinations)
            ]
            answer = client.send_bulk_email(
                FromEmailAddress="bench@example.com",
                DefaultContent={"Template": {"TemplateName": "bench", "TemplateData": "{}"}},
                BulkEmailEntries=entries,
            )
            results = answer["BulkEmailEntryResults"]
            failed = [r for r in results if r["Status"] != "SUCCESS"]
            if failed:
                raise RuntimeError(f"bulk: {failed[0]}")
            done += len(results)
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(worker, range(threads)))
    return total, time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_cpu() -> float:
    """This process's user + system CPU time so far (the benchmark's clients)."""
    times = os.times()
    return times.user + times.system


def children_cpu(pid: int) -> float:
    """CPU time of the process's live children (the writer child), which `cpu_seconds` does
    not count until they have exited."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            with contextlib.suppress(OSError):
                total += cpu_seconds(int(kid))
    return total


def wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(log.read_text())
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--messages", type=int, default=100, help="per client")
    parser.add_argument("--size", type=int, default=2048, help="body octets per message")
    parser.add_argument("--destinations", type=int, default=50, help="entries per bulk call")
    parser.add_argument("--bulk-clients", type=int, default=4)
    parser.add_argument("--bulk-calls", type=int, default=10, help="per bulk client")
    parser.add_argument("--key", choices=("rsa", "ed25519", "none"), default="rsa")
    parser.add_argument(
        "--only",
        choices=("all", "bulk", "bulk-capture", "native"),
        default="all",
        help="bulk: only the SendBulkEmail runs (live and capture); bulk-capture: capture only; "
        "native: only the native API runs",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="postroom-http-send-bench-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        data_dir = workdir / "data"
        password = prepare(data_dir, "", args.key, None)
        secrets = prepare_http(data_dir)
        cert, key = workdir / "cert.pem", workdir / "key.pem"
        generate_self_signed(cert, key, "localhost")
        submission, http_port, ses_port = free_port(), free_port(), free_port()
        argv = [
            sys.executable, "-c", "from postroom.cli import main; main()", "serve",
            "--data-dir", str(data_dir),
            "--smtp", f"{LOOPBACK}:{free_port()}",
            "--http", f"{LOOPBACK}:{http_port}",
            "--submission", f"{LOOPBACK}:{submission}",
            "--ses", f"{LOOPBACK}:{ses_port}",
            "--tls-cert", str(cert), "--tls-key", str(key),
            "--no-delivery", "--log-level", "warning",
        ]  # fmt: skip
        log = workdir / "server.log"
        process = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        for port in (submission, http_port, ses_port):
            wait_for(port, process, log)
        context = ssl.create_default_context(cafile=str(cert))
        n, m, size = args.clients, args.messages, args.size
        pid = process.pid
        print(f"{n} clients x {m} messages of ~{size} octets; DKIM {args.key}; SQLite")
        print(f"server pid {pid}", flush=True)

        def report(
            label: str, count: int, seconds: float, cpu: float, unit: str, writer: float
        ) -> None:
            print(
                f"  {label}: {count / seconds:7.0f} {unit}/s "
                f"(server CPU {1000 * cpu / count:.2f} ms per {unit.removesuffix('s')}, "
                f"writer child {1000 * writer / count:.2f} ms)"
            )

        if args.only == "all":
            cpu, child = cpu_seconds(pid), children_cpu(pid)
            sent, seconds = asyncio.run(run_clients(submission, context, password, n, m, size))
            used, child = cpu_seconds(pid) - cpu, children_cpu(pid) - child
            report("SMTP submission (live, STARTTLS + AUTH)", sent, seconds, used, "msgs", child)
        for project, label in (("bench", "live"), ("benchcap", "capture")):
            if args.only not in ("all", "native"):
                break
            token = secrets["tokens"][project]
            cpu, child = cpu_seconds(pid), children_cpu(pid)
            sent, seconds = asyncio.run(native(http_port, token, n, m, size))
            used, child = cpu_seconds(pid) - cpu, children_cpu(pid) - child
            report(
                f"native POST /api/v2/messages ({label}, keep-alive)",
                sent,
                seconds,
                used,
                "msgs",
                child,
            )
        endpoint = f"http://{LOOPBACK}:{ses_port}"
        for project, label in (("bench", "live"), ("benchcap", "capture")):
            if args.only == "native" or (args.only == "bulk-capture" and project == "bench"):
                continue
            pair = secrets["ses"][project]
            cpu, child, own = cpu_seconds(pid), children_cpu(pid), process_cpu()
            total, seconds = bulk(
                endpoint, pair, args.bulk_clients, args.bulk_calls, args.destinations
            )
            used, child = cpu_seconds(pid) - cpu, children_cpu(pid) - child
            print(f"  (the boto3 clients' CPU: {1000 * (process_cpu() - own) / total:.2f} ms each)")
            report(
                f"SES SendBulkEmail ({label}, {args.destinations} destinations per call, "
                f"{args.bulk_clients} clients)",
                total,
                seconds,
                used,
                "recipients",
                child,
            )
        return 0
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
