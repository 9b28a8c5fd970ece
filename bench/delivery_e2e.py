"""End to end: accepted, queued, signed and relayed until the sink has every message.

The same client, Postfix's `smtp-source`, sends the same load (default 20 parallel sessions,
20,000 messages of 2,048 octets, one message per connection) to:

  postfix   a private Postfix instance (fsync before 250) relaying to an `smtp-sink`;
  postroom  `postroom serve` with a **live** project set up through the real CLI: an IP
            credential for 127.0.0.1 (smtp-source does not authenticate), the sender's domain
            verified against a loopback DNS server with an active DKIM key (every message is
            signed), and `--routes example.com=smtp+plain://127.0.0.1:SINK`, so the delivery
            worker relays the queue to an `smtp-sink` on loopback;
  sink      `smtp-sink` alone: the ceiling of the client on this machine.

The figure is the time from `smtp-source`'s start until the sink has counted every message
(for `sink`, the `smtp-source` run itself). Also printed: the `smtp-source` wall time
(acceptance), loss (sink count below the messages sent, after the drain timeout) and
duplicates (sink count above them, read again 1 s after the last one arrived). For Postroom
the queue's states are read from the API at the end.

    .venv/bin/python bench/delivery_e2e.py [--messages N] [--sessions N] [--size N]
        [--only sink|postfix|postroom] [--rounds N] [--dkim rsa|ed25519] [--src DIR ...]
        [--database-url postgresql://...] [--serve-arg=--delivery-concurrency=40] [--keep]

`--src DIR` (repeatable) runs Postroom (the server and the CLI that prepares it) from another
source tree (`PYTHONPATH=DIR`, e.g. `src/` of a `git worktree` of main): each round runs every
tree in turn (A, B, A, B, ...), labelled `postroom#1`, `postroom#2`, ..., with their medians.

See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.dnszone, as postfix_instance

from tests.dnszone import DnsZone

from postfix_instance import (
    LOOPBACK,
    BenchError,
    PrivatePostfix,
    SmtpSink,
    ensure_postfix_installed,
    free_port,
    postfix_version,
    tail,
    wait_for_port,
)
from served import tree_cpu
from smtp_acceptance import (
    RECIPIENT,
    SENDER,
    Load,
    _http_json,
    _positive,
    exit_on_signals,
    postroom_command,
    running_postroom,
    smtp_source,
)

TARGETS = ("sink", "postfix", "postroom")
TARGET_RATIO = 2.5
PROJECT = "bench"
DOMAIN = SENDER.rpartition("@")[2]
RECIPIENT_DOMAIN = RECIPIENT.rpartition("@")[2]


@dataclasses.dataclass(frozen=True)
class Result:
    target: str
    messages: int
    accepted: float  # smtp-source wall time
    seconds: float  # smtp-source start -> the sink counted every message
    received: int  # the sink's count at the end
    check: str
    round: int = 1
    cpu: float | None = None  # CPU seconds of the server (and its children) meanwhile

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.received == self.messages


def wait_for_sink(sink: SmtpSink, messages: int, start: float, timeout: float) -> float:
    """Poll the sink's counter until it reaches `messages`; seconds since `start` (when it
    did), or raise when `timeout` seconds passed without it."""
    deadline = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        if sink.messages() >= messages:
            return now - start
        if now > deadline:
            raise BenchError(
                f"the sink counted {sink.messages()} of {messages} after {timeout:.0f} s"
            )
        time.sleep(0.02)


def settled_count(sink: SmtpSink) -> int:
    """The sink's count once it has not moved for a second (late duplicates show here)."""
    count = sink.messages()
    while True:
        time.sleep(1.0)
        again = sink.messages()
        if again == count:
            return count
        count = again


def _drain_timeout(load: Load, accepted: float) -> float:
    return max(120.0, 5 * accepted)


def _verdict(received: int, messages: int) -> str:
    if received == messages:
        return f"sink counted {received}, no loss, no duplicate"
    if received < messages:
        return f"LOSS: sink counted {received} of {messages}"
    return f"DUPLICATES: sink counted {received} for {messages} ({received - messages} extra)"


# -- targets -------------------------------------------------------------------------------


def bench_sink(load: Load, workdir: Path) -> Result:
    with SmtpSink(workdir) as sink:
        start = time.perf_counter()
        accepted = smtp_source(load, sink.port, workdir, "sink")
        seconds = wait_for_sink(sink, load.messages, start, 10.0)
        received = settled_count(sink)
    return Result(
        "sink", load.messages, accepted, seconds, received, _verdict(received, load.messages)
    )


def bench_postfix(load: Load, workdir: Path) -> Result:
    with (
        SmtpSink(workdir) as sink,
        PrivatePostfix(workdir, sink.port, load.sessions, load.size) as postfix,
    ):
        print(f"  private Postfix on {LOOPBACK}:{postfix.port} -> smtp-sink :{sink.port}")
        start = time.perf_counter()
        accepted = smtp_source(load, postfix.port, workdir, "postfix")
        seconds = wait_for_sink(sink, load.messages, start, _drain_timeout(load, accepted))
        received = settled_count(sink)
        sent = postfix.sent()
    check = f"{_verdict(received, load.messages)}; maillog status=sent {sent}"
    return Result("postfix", load.messages, accepted, seconds, received, check)


def cli(data: list[str], *args: str) -> dict[str, object]:
    """`postroom ARGS --json STORAGE`; its JSON object (BenchError on a non-zero exit)."""
    argv = [str(postroom_command()), *args, "--json", *data]
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {done.stdout}{done.stderr}")
    parsed: dict[str, object] = json.loads(done.stdout)
    return parsed


def prepare_live_project(data: list[str], zone: DnsZone, algorithm: str) -> str:
    """The live project, its IP credential and its verified domain, through the CLI; returns
    the active DKIM selector."""
    resolver = ["--resolver", zone.nameserver, "--hostname", "postroom-bench.localhost"]
    cli(
        data,
        "project",
        "create",
        PROJECT,
        "--mode",
        "live",
        "--daily-quota",
        "0",
        "--rate-limit",
        "0",
    )
    cli(data, "ipcredential", "create", f"{LOOPBACK}/32", "--project", PROJECT)
    added = cli(
        data, "domain", "add", DOMAIN, "--project", PROJECT, "--algorithm", algorithm, *resolver
    )
    records = added["records"]
    assert isinstance(records, list)
    for record in records:
        if record["type"] == "TXT" and record["required"]:
            zone.add_txt(record["name"], record["value"])
    checked = cli(data, "domain", "verify", DOMAIN, "--project", PROJECT, *resolver)
    if checked.get("verified") is not True:
        raise BenchError(f"domain {DOMAIN} not verified: {checked}")
    keys = [r for r in records if r.get("kind") == "dkim"]
    return str(keys[0]["name"]).split(".", 1)[0] if keys else "?"


def queue_states(base: str) -> dict[str, int]:
    status, body = _http_json(f"{base}/api/v2/projects/{PROJECT}/queue")
    if status != 200 or not isinstance(body, dict):
        return {}
    states = body.get("states", body.get("counts", {}))
    return {str(k): int(v) for k, v in states.items()} if isinstance(states, dict) else {}


@contextlib.contextmanager
def source_tree(src: str) -> Iterator[None]:
    """Postroom's processes started meanwhile (the CLI, the server) import `src` first."""
    if not src:
        yield
        return
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = src
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def bench_postroom(load: Load, workdir: Path, args: argparse.Namespace) -> Result:
    data_dir = workdir / "postroom-data"
    data = ["--data-dir", str(data_dir)]
    if args.database_url:
        data += ["--database-url", args.database_url]
    submission = free_port()
    with SmtpSink(workdir) as sink, DnsZone() as zone:
        selector = prepare_live_project(data, zone, args.dkim)
        listeners = [
            "--submission",
            f"{LOOPBACK}:{submission}",
            "--smtp",  # the capture door, unused: any free port (1025 may be taken)
            f"{LOOPBACK}:{free_port()}",
            "--routes",
            f"{RECIPIENT_DOMAIN}=smtp+plain://{LOOPBACK}:{sink.port}",
            *args.serve_arg,
        ]
        print(
            f"  live project {PROJECT!r}, {DOMAIN} signed with {args.dkim} key {selector!r}, "
            f"route to smtp-sink :{sink.port}",
            flush=True,
        )
        with running_postroom(workdir, listeners, load.sessions, args.database_url, data_dir) as (
            base,
            process,
        ):
            wait_for_port(submission, 10.0, process)
            cpu = tree_cpu(process.pid)
            start = time.perf_counter()
            try:
                accepted = smtp_source(load, submission, workdir, "postroom")
                seconds = wait_for_sink(sink, load.messages, start, _drain_timeout(load, accepted))
                cpu = tree_cpu(process.pid) - cpu
            except BenchError as exc:
                raise BenchError(f"{exc}\n{tail(workdir / 'postroom.log')}") from exc
            received = settled_count(sink)
            states = queue_states(base)
    shown = ", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "unreadable"
    per = 1000 * cpu / load.messages
    check = f"{_verdict(received, load.messages)}; server CPU {per:.2f} ms/msg; queue: {shown}"
    return Result("postroom", load.messages, accepted, seconds, received, check, cpu=cpu)


# -- driver --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="smtp-source -> Postfix / Postroom (live, DKIM) -> smtp-sink, end to end."
    )
    parser.add_argument("--messages", type=_positive, default=20_000, help="default 20000")
    parser.add_argument("--sessions", type=_positive, default=20, help="default 20")
    parser.add_argument("--size", type=_positive, default=2048, help="payload octets, 2048")
    parser.add_argument("--only", choices=TARGETS, action="append", help="this target (repeat)")
    parser.add_argument("--rounds", type=_positive, default=1, help="interleaved rounds")
    parser.add_argument(
        "--dkim",
        choices=("rsa", "ed25519"),
        default="rsa",
        help="the domain's DKIM key (default rsa, 2048 bits)",
    )
    parser.add_argument("--database-url", help="postgresql://... (an empty database)")
    parser.add_argument(
        "--src",
        action="append",
        default=[],
        help="run Postroom from this source tree (repeat: trees interleaved per round)",
    )
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        help="one more `postroom serve` argument (repeat), e.g. "
        "--serve-arg=--delivery-concurrency=40",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds one smtp-source run may take (default 900)",
    )
    return parser.parse_args(argv)


def print_table(results: list[Result], failures: list[tuple[str, str]]) -> None:
    width = 16
    print()
    print(
        f"{'round/target':<{width}} {'messages':>8} {'accept s':>9} {'e2e s':>8} "
        f"{'e2e msg/s':>9}  check"
    )
    for r in results:
        print(
            f"{f'{r.round}/{r.target}':<{width}} {r.messages:>8} {r.accepted:>9.2f} "
            f"{r.seconds:>8.2f} {r.rate:>9.1f}  {r.check}"
        )
    for label, reason in failures:
        first = (reason.strip().splitlines() or ["?"])[0]
        print(f"{label:<{width}} FAILED: {first}")
    rates: dict[str, list[float]] = {}
    for r in results:
        rates.setdefault(r.target, []).append(r.rate)
    medians = {t: statistics.median(v) for t, v in rates.items()}
    for target, rate in medians.items():
        cpus = [1000 * r.cpu / r.messages for r in results if r.target == target and r.cpu]
        cpu = f"  server CPU {statistics.median(cpus):.2f} ms/msg" if cpus else ""
        print(f"{'median/' + target:<{width}} {'':>8} {'':>9} {'':>8} {rate:>9.1f}{cpu}")
    for target, rate in medians.items():
        if target.startswith("postroom") and "postfix" in medians:
            ratio = rate / medians["postfix"]
            verdict = "met" if ratio >= TARGET_RATIO else "not met"
            print(
                f"ratio {target}/postfix end to end: {ratio:.2f}x "
                f"(target >= {TARGET_RATIO:.1f}x: {verdict})"
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = Load(args.messages, args.sessions, args.size, args.timeout)
    targets = args.only or list(TARGETS)
    trees: list[str] = args.src or [""]
    with exit_on_signals():
        try:
            ensure_postfix_installed()
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        workdir = Path(tempfile.mkdtemp(prefix="postroom-bench-"))
        workdir.chmod(0o755)  # Postfix daemons run as the postfix user
        print(
            f"delivery end to end: {load.messages} messages x {load.size} octets over "
            f"{load.sessions} sessions, {os.cpu_count()} cores, Postfix {postfix_version()}, "
            f"DKIM {args.dkim}, load average {os.getloadavg()[0]:.1f}, work dir {workdir}",
            flush=True,
        )
        results: list[Result] = []
        failures: list[tuple[str, str]] = []
        try:
            runs = [
                (target, tree, index)
                for target in targets
                for index, tree in enumerate(trees if target == "postroom" else [""], 1)
            ]
            for round_ in range(1, args.rounds + 1):
                for target, tree, index in runs:
                    name = f"{target}#{index}" if target == "postroom" and args.src else target
                    label = f"{round_}/{name}"
                    print(f"[{label}] load average {os.getloadavg()[0]:.1f}", flush=True)
                    run_dir = workdir / f"{round_}-{name}"
                    run_dir.mkdir(mode=0o755)
                    try:
                        if target == "sink":
                            result = bench_sink(load, run_dir)
                        elif target == "postfix":
                            result = bench_postfix(load, run_dir)
                        else:
                            with source_tree(tree):
                                result = bench_postroom(load, run_dir, args)
                        results.append(dataclasses.replace(result, target=name, round=round_))
                    except (BenchError, OSError) as exc:
                        print(f"  {label} failed: {exc}", file=sys.stderr, flush=True)
                        failures.append((label, str(exc)))
        finally:
            if args.keep:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        for index, tree in enumerate(args.src, 1):
            print(f"postroom#{index}: {tree}")
        print_table(results, failures)
    return 0 if not failures and all(r.ok for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
