"""Acceptance rate of a live project's submission door under `smtp-source` (no delivery).

The acceptance half of bench/delivery_e2e.py: the same live project set up through the real
CLI (an IP credential for 127.0.0.1, the sender's domain verified against a loopback DNS server
with an active DKIM key, so every message is signed and queued), the same `smtp-source` load
(default 20 parallel sessions, 5,000 messages of 2,048 octets, one message per connection), but
`postroom serve --roles smtp,http`: nothing is delivered, so the figure is the rate at which
the submission door commits messages (250 only after the commit), alone on the machine.

`--src DIR` (repeatable) runs the server (and the CLI that prepares it) from another source
tree (`PYTHONPATH=DIR`), e.g. a `git worktree` of main, to compare two versions in one run:
the rounds interleave the trees (A, B, A, B, ...) and the medians are printed.
`--profile FILE` records the server of each run with `py-spy` (when installed) into
FILE.<round>.<tree>.txt (py-spy's "raw" format, for speedscope or flamegraph.pl); with `--gil`
only the thread holding the GIL is sampled (where the server's Python time goes).

    .venv/bin/python bench/live_acceptance.py [--messages N] [--sessions N] [--size N]
        [--rounds N] [--src DIR ...] [--dkim rsa|ed25519] [--profile FILE] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.dnszone

from tests.dnszone import DnsZone

from postfix_instance import LOOPBACK, BenchError, free_port, tail, wait_for_port
from served import tree_cpu
from smtp_acceptance import SENDER, Load, _positive, _wait_ready, smtp_source, stop_process

PROJECT = "bench"
DOMAIN = SENDER.rpartition("@")[2]


def _env(src: str) -> dict[str, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    return env


def _command() -> list[str]:
    return [sys.executable, "-c", "from postroom.cli import main; main()"]


def cli(src: str, data: list[str], *args: str) -> dict[str, object]:
    argv = [*_command(), *args, "--json", *data]
    done = subprocess.run(
        argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=_env(src)
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)} exited {done.returncode}: {done.stdout}{done.stderr}")
    parsed: dict[str, object] = json.loads(done.stdout)
    return parsed


def prepare(src: str, data: list[str], zone: DnsZone, algorithm: str) -> None:
    resolver = ["--resolver", zone.nameserver, "--hostname", "postroom-bench.localhost"]
    cli(src, data, "project", "create", PROJECT, "--mode", "live", "--daily-quota", "0")
    cli(src, data, "ipcredential", "create", f"{LOOPBACK}/32", "--project", PROJECT)
    added = cli(
        src, data, "domain", "add", DOMAIN, "--project", PROJECT, "--algorithm", algorithm,
        *resolver,
    )  # fmt: skip
    records = added["records"]
    assert isinstance(records, list)
    for record in records:
        if record["type"] == "TXT" and record["required"]:
            zone.add_txt(record["name"], record["value"])
    checked = cli(src, data, "domain", "verify", DOMAIN, "--project", PROJECT, *resolver)
    if checked.get("verified") is not True:
        raise BenchError(f"domain {DOMAIN} not verified: {checked}")


@contextlib.contextmanager
def serving(
    src: str, workdir: Path, data: list[str], port: int
) -> Iterator[subprocess.Popen[bytes]]:
    http = free_port()
    argv = [
        *_command(), "serve", *data,
        "--roles", "smtp,http",
        "--submission", f"{LOOPBACK}:{port}",
        "--http", f"{LOOPBACK}:{http}",
        "--smtp", f"{LOOPBACK}:{free_port()}",
        "--log-level", "warning", "--max-messages", "0",
    ]  # fmt: skip
    log = workdir / "postroom.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=workdir, env=_env(src),
        )  # fmt: skip
        try:
            _wait_ready(f"http://{LOOPBACK}:{http}", process, log, timeout=60.0)
            wait_for_port(port, 10.0, process)
            yield process
        finally:
            stop_process(process, grace=15.0)


def one_run(
    src: str, load: Load, workdir: Path, algorithm: str, profile: Path | None, gil: bool
) -> tuple[float, float]:
    """(messages per second, server CPU ms per message) of one run."""
    data = ["--data-dir", str(workdir / "data")]
    port = free_port()
    with DnsZone() as zone:
        prepare(src, data, zone, algorithm)
    with serving(src, workdir, data, port) as process:
        spy: subprocess.Popen[bytes] | None = None
        spy_bin = Path(sys.executable).parent / "py-spy"
        if profile is not None and spy_bin.exists():
            spy = subprocess.Popen(
                [str(spy_bin), "record", "-p", str(process.pid), "-f", "raw", "-r", "200",
                 "-o", str(profile), "--nonblocking", *(["--gil"] if gil else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
        cpu = tree_cpu(process.pid)
        try:
            seconds = smtp_source(load, port, workdir, "postroom")
        except BenchError as exc:
            raise BenchError(f"{exc}\n{tail(workdir / 'postroom.log')}") from exc
        cpu = tree_cpu(process.pid) - cpu
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
    return load.messages / seconds, 1000 * cpu / load.messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=_positive, default=5000)
    parser.add_argument("--sessions", type=_positive, default=20)
    parser.add_argument("--size", type=_positive, default=2048)
    parser.add_argument("--rounds", type=_positive, default=1)
    parser.add_argument("--src", action="append", default=[], help="source tree (repeat)")
    parser.add_argument("--dkim", choices=("rsa", "ed25519"), default="rsa")
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--gil", action="store_true", help="profile only the GIL's holder")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    trees = args.src or [""]
    load = Load(args.messages, args.sessions, args.size, 900.0)
    workdir = Path(tempfile.mkdtemp(prefix="postroom-live-acceptance-"))
    rates: dict[str, list[float]] = {tree: [] for tree in trees}
    try:
        for round_ in range(1, args.rounds + 1):
            for index, tree in enumerate(trees):
                run_dir = workdir / f"{round_}-{index}"
                run_dir.mkdir()
                profile = None
                if args.profile is not None:
                    profile = args.profile.with_name(f"{args.profile.name}.{round_}.{index}.txt")
                rate, cpu = one_run(tree, load, run_dir, args.dkim, profile, args.gil)
                rates[tree].append(rate)
                print(
                    f"round {round_} {tree or 'this tree'}: {rate:.1f} msg/s, "
                    f"server CPU {cpu:.2f} ms/msg",
                    flush=True,
                )
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"live submission door, IP credential, DKIM {args.dkim}: {load.messages} messages x "
        f"{load.size} octets, {load.sessions} smtp-source sessions, one message per connection"
    )
    for tree, values in rates.items():
        print(f"  median {tree or 'this tree'}: {statistics.median(values):.1f} msg/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
