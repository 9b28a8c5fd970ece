"""Durable SMTP acceptance: Postroom's capture door against a private Postfix instance.

The same client, Postfix's own `smtp-source`, sends the same load (default 20 parallel
sessions, 20,000 messages of 2,048 octets, one message per connection) to:

  sink      `smtp-sink`, which acknowledges and discards: the ceiling of client + loopback;
  postfix   a private Postfix instance that queues each message durably (fsync before 250)
            and relays it to an smtp-sink;
  postroom  `postroom serve`, whose capture door commits each message durably before 250.

It prints the wall time of each `smtp-source` run, the rate, and the ratio postroom/postfix.
Everything listens on 127.0.0.1 only, and every process started is stopped at the end,
also on errors and Ctrl-C.

    .venv/bin/python bench/smtp_acceptance.py [--messages N] [--sessions N] [--size N]
        [--only sink|postfix|postroom] [--database-url postgresql://...]
        [--sqlite-fulltext on|off]
        [--keep]

See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

from postfix_instance import (
    LOOPBACK,
    SMTP_SOURCE,
    BenchError,
    PrivatePostfix,
    SmtpSink,
    ensure_postfix_installed,
    free_port,
    postfix_version,
    stop_process,
    tail,
    wait_for_port,
)

TARGETS = ("sink", "postfix", "postroom")
SENDER = "bench@example.com"
RECIPIENT = "sink@example.com"
TARGET_RATIO = 3.0


@dataclasses.dataclass(frozen=True)
class Load:
    messages: int
    sessions: int
    size: int
    timeout: float


@dataclasses.dataclass(frozen=True)
class Result:
    target: str
    messages: int
    seconds: float
    check: str
    ok: bool = True
    round: int = 1
    # CPU milliseconds per message: Postroom's processes, and the PostgreSQL backends
    # serving its database (None: not measured)
    cpu_ms: float | None = None
    pg_cpu_ms: float | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


# -- the client ----------------------------------------------------------------------------


def smtp_source(load: Load, port: int, workdir: Path, label: str) -> float:
    """Run smtp-source against 127.0.0.1:port; return its wall time in seconds."""
    argv = [
        str(SMTP_SOURCE),
        "-s",
        str(load.sessions),
        "-m",
        str(load.messages),
        "-l",
        str(load.size),
        "-f",
        SENDER,
        "-t",
        RECIPIENT,
        f"{LOOPBACK}:{port}",
    ]
    errors = workdir / f"smtp-source-{label}.err"
    print(f"  {' '.join(argv)}", flush=True)
    with errors.open("wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=load.timeout)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"smtp-source did not finish within {load.timeout:.0f} s") from exc
        finally:
            stop_process(process, grace=2.0)
        seconds = time.perf_counter() - start
    if code != 0:
        raise BenchError(f"smtp-source exited {code}:\n{tail(errors)}")
    return seconds


# -- the three targets ---------------------------------------------------------------------


def bench_sink(load: Load, workdir: Path) -> Result:
    with SmtpSink(workdir) as sink:
        seconds = smtp_source(load, sink.port, workdir, "sink")
        time.sleep(0.2)  # let the counter line reach its file
        got = sink.messages()
    return Result("sink", load.messages, seconds, f"smtp-sink counted {got}", got >= load.messages)


def bench_postfix(load: Load, workdir: Path) -> Result:
    with (
        SmtpSink(workdir) as sink,
        PrivatePostfix(workdir, sink.port, load.sessions, load.size) as postfix,
    ):
        print(f"  private Postfix on {LOOPBACK}:{postfix.port} -> smtp-sink :{sink.port}")
        seconds = smtp_source(load, postfix.port, workdir, "postfix")
        drained = postfix.wait_drained(timeout=max(60.0, 3 * seconds))
        sent, relayed, deferred = postfix.sent(), sink.messages(), postfix.deferred()
    check = f"relayed {sent}/{load.messages} to smtp-sink (sink counted {relayed})"
    if drained is None:
        check += f"; queue not empty, {deferred} deferred"
    else:
        check += f"; queue empty {drained:.1f} s later"
    if sent < load.messages:
        print(f"  WARNING: Postfix relayed only {sent} of {load.messages}", file=sys.stderr)
    return Result("postfix", load.messages, seconds, check)


def _http_json(url: str) -> tuple[int, object]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    try:
        with opener.open(url, timeout=10.0) as response:
            status: int = response.status
            body = response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, None
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise BenchError(f"postroom serve exited {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError):
            if _http_json(f"{base}/readyz")[0] == 200:
                return
        if time.monotonic() > deadline:
            raise BenchError(f"GET /readyz not 200 after {timeout:.0f} s:\n{tail(log)}")
        time.sleep(0.1)


def _total(base: str) -> int:
    status, body = _http_json(f"{base}/api/v1/messages?limit=1")
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("total"), int):
        raise BenchError(f"GET /api/v1/messages?limit=1 answered {status}: {body!r}")
    total: int = body["total"]
    return total


def postroom_command() -> Path:
    """The `postroom` script next to this interpreter, else the repository's venv."""
    beside = Path(sys.executable).parent / "postroom"
    if beside.exists():
        return beside
    return Path(__file__).resolve().parent.parent / ".venv" / "bin" / "postroom"


@contextlib.contextmanager
def running_postroom(
    workdir: Path,
    listeners: list[str],
    sessions: int,
    database_url: str | None,
    data_dir: Path | None = None,
    extra: Sequence[str] = (),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`postroom serve` with these listener options (e.g. `["--smtp", "127.0.0.1:P"]`) and an
    HTTP listener, in `data_dir` (default `<workdir>/postroom-data`); yields the HTTP base URL
    and the process once `GET /readyz` answers 200, and stops the server (SIGTERM, SIGKILL
    after 15 s) at the end. Its log is `<workdir>/postroom.log`."""
    data_dir = data_dir or workdir / "postroom-data"
    http_port = free_port()
    argv = [
        str(postroom_command()),
        "serve",
        "--data-dir",
        str(data_dir),
        *listeners,
        "--http",
        f"{LOOPBACK}:{http_port}",
        "--log-level",
        "warning",
        "--max-messages",
        "0",
    ]
    if sessions > 100:
        argv += ["--max-connections-per-ip", str(sessions)]
    if database_url:
        argv += ["--database-url", database_url]
    argv += extra
    log = workdir / "postroom.log"
    base = f"http://{LOOPBACK}:{http_port}"
    print(f"  postroom serve {' '.join(listeners)}, HTTP {base}", flush=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
        )
        try:
            _wait_ready(base, process, log, timeout=60.0)
            yield base, process
        finally:
            stop_process(process, grace=15.0)


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 when it is gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _session_cpu(session: int) -> float:
    """CPU seconds of every live process of this session (`postroom serve` and its children),
    with those of the children they waited for (cutime, cstime: e.g. the block summariser's,
    storage/block_summaries.py)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:
            total += sum(int(f) for f in fields[11:15]) / _TICK
    return total


def _pg_backends(database_url: str) -> dict[int, float]:
    """pid -> CPU seconds of the PostgreSQL backends connected to the URL's database (read
    from /proc: the server must run on this machine)."""
    import psycopg  # only with --database-url
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        pids = [
            int(row[0])
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (url.database,),
            )
        ]
    return {pid: _cpu_seconds(pid) for pid in pids}


def _index_catch_up(database: Path, pid: int, load: Load, limit: float = 300.0) -> None:
    """Print how long after the burst SQLite's full-text index held every message (the writer
    process indexes the waiting ones in its pauses: storage/fulltext.py IDLE_DRAIN) and the
    CPU Postroom's processes spent meanwhile, per message of the burst."""
    cpu_before, start = _session_cpu(pid), time.monotonic()
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        while True:
            waiting = db.execute("SELECT count(*) FROM messages_fts_pending").fetchone()[0]
            if waiting == 0 or time.monotonic() - start > limit:
                break
            time.sleep(0.05)
    seconds = time.monotonic() - start
    cpu_ms = (_session_cpu(pid) - cpu_before) * 1000 / load.messages
    state = "indexed" if waiting == 0 else f"{waiting} still waiting"
    print(f"  full-text index: {state} {seconds:.2f} s after the burst, cpu {cpu_ms:.3f} ms/msg")


def bench_postroom(
    load: Load,
    workdir: Path,
    database_url: str | None,
    fulltext: str | None = None,
    name: str = "postroom",
    extra: Sequence[str] = (),
) -> Result:
    smtp_port = free_port()
    if fulltext:  # SQLite's full-text index, made or dropped before the server starts
        subprocess.run(
            [
                str(postroom_command()),
                "fulltext",
                fulltext,
                "--data-dir",
                str(workdir / "postroom-data"),
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    with running_postroom(
        workdir, ["--smtp", f"{LOOPBACK}:{smtp_port}"], load.sessions, database_url, extra=extra
    ) as (base, process):
        wait_for_port(smtp_port, 10.0, process)
        before = _total(base)
        cpu_before = _session_cpu(process.pid)
        pg_before = _pg_backends(database_url) if database_url else {}
        seconds = smtp_source(load, smtp_port, workdir, name)
        cpu = _session_cpu(process.pid) - cpu_before
        pg_after = _pg_backends(database_url) if database_url else {}
        after = _total(base)
        if fulltext == "on":
            _index_catch_up(workdir / "postroom-data" / "postroom.db", process.pid, load)
    pg_cpu = sum(t - pg_before.get(pid, 0.0) for pid, t in pg_after.items())
    per = 1000 / load.messages
    cpu_ms, pg_cpu_ms = cpu * per, (pg_cpu * per if database_url else None)
    stored = after - before
    check = f"API total {after}" + (f" ({stored} new)" if before else "")
    if stored != load.messages:
        print(
            f"  ERROR: Postroom acknowledged {load.messages} messages but stores {stored}",
            file=sys.stderr,
        )
        return Result(name, load.messages, seconds, check + " MISMATCH", ok=False)
    return Result(name, load.messages, seconds, check, cpu_ms=cpu_ms, pg_cpu_ms=pg_cpu_ms)


# -- PostgreSQL with and without the trigram index (--pg-trigram-ab) -----------------------

TRIGRAM_INDEX = "ix_messages_search_trgm"  # storage/fulltext.py PG_INDEX (migration 0018)
AB_TARGETS = ("pg+trgm", "pg-trgm")
SHORT_TARGET = "pg+trgm+short"  # --pg-short-index


@contextlib.contextmanager
def ab_databases(
    server_url: str, variants: list[str], short: bool = False
) -> Iterator[dict[str, str]]:
    """Fresh databases on the server of `server_url` (whose database is used to create and
    drop them), migrated: `pg+trgm` as migrated, `pg-trgm` with the trigram index dropped,
    with `short` `pg+trgm+short` with the index of 1-2 character terms made too (`postroom
    fulltext on`), and one `pg+trgm[NAME]` per variant "NAME=PARAMS" with `ALTER INDEX ... SET
    (PARAMS)`. Yields target -> URL; every database is dropped at the end."""
    import psycopg
    from sqlalchemy.engine import make_url

    from postroom.storage import fulltext

    changes: dict[str, str | None] = {"pg+trgm": "", "pg-trgm": None}
    if short:
        changes[SHORT_TARGET] = "+short"
    for variant in variants:
        name, _, params = variant.partition("=")
        changes[f"pg+trgm[{name}]"] = params
    with fresh_databases(server_url, list(changes)) as urls:
        for target, change in changes.items():
            dsn = make_url(urls[target]).set(drivername="postgresql")
            plain = dsn.render_as_string(hide_password=False)
            with psycopg.connect(plain, autocommit=True) as conn:
                if change is None:
                    conn.execute(f"DROP INDEX {TRIGRAM_INDEX}")
                elif change == "+short":
                    conn.execute(fulltext.pg_short_create_statement())
                elif change:
                    conn.execute(f"ALTER INDEX {TRIGRAM_INDEX} SET ({change})")
                found = conn.execute(
                    "SELECT reloptions FROM pg_class WHERE relname = %s", (TRIGRAM_INDEX,)
                ).fetchone()
                short_made = conn.execute(
                    "SELECT 1 FROM pg_class WHERE relname = %s", (fulltext.PG_SHORT_INDEX,)
                ).fetchone()
            shown = "dropped" if found is None else f"index options {found[0] or 'default'}"
            shown += ", index of short terms made" if short_made else ""
            print(f"  {target}: {shown}", flush=True)
        yield urls


# -- PostgreSQL with and without the block summariser (--pg-blocks-ab) ---------------------

BLOCKS_TARGETS = ("pg-blocks", "pg+blocks")


@contextlib.contextmanager
def fresh_databases(server_url: str, targets: Sequence[str]) -> Iterator[dict[str, str]]:
    """A fresh, migrated database per target on the server of `server_url`; target -> URL.
    Every database is dropped at the end."""
    import asyncio
    import secrets

    import psycopg
    from sqlalchemy.engine import make_url

    from postroom.core.clock import SystemClock
    from postroom.storage import open_store

    url = make_url(server_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    stem = f"postroom_ab_{secrets.token_hex(3)}"
    made: list[str] = []
    try:
        urls = {}
        for n, target in enumerate(targets):
            name = f"{stem}_{n}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            made.append(name)
            urls[target] = url.set(drivername="postgresql+psycopg", database=name).render_as_string(
                hide_password=False
            )
            asyncio.run(open_store(urls[target], SystemClock()).close())  # migrates
            print(f"  {target}: database {name}", flush=True)
        yield urls
    finally:
        for name in made:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if made:
            print(f"dropped databases {', '.join(made)}", flush=True)


# -- driver --------------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="smtp-source against smtp-sink, a private Postfix and Postroom (127.0.0.1)."
    )
    parser.add_argument("--messages", type=_positive, default=20_000, help="default 20000")
    parser.add_argument("--sessions", type=_positive, default=20, help="default 20")
    parser.add_argument("--size", type=_positive, default=2048, help="payload octets, 2048")
    parser.add_argument("--only", choices=TARGETS, help="run just this target")
    parser.add_argument(
        "--database-url", help="postgresql://... to bench Postroom on PostgreSQL (not SQLite)"
    )
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=1,
        help="repeat all targets this many times, interleaved; the ratio uses medians",
    )
    parser.add_argument(
        "--sqlite-fulltext",
        choices=("on", "off"),
        help="run `postroom fulltext on|off` on Postroom's data directory first (SQLite's "
        "index, on by default in a new database)",
    )
    parser.add_argument(
        "--pg-trigram-ab",
        action="store_true",
        help="PostgreSQL A/B: bench Postroom with and without the trigram index (migration "
        "0018), interleaved, each in a fresh database created on --database-url's server "
        "(dropped at the end); sink and Postfix are not run",
    )
    parser.add_argument(
        "--pg-index-variant",
        action="append",
        default=[],
        metavar="NAME=PARAMS",
        help="with --pg-trigram-ab, one more target pg+trgm[NAME] whose index gets ALTER INDEX "
        "... SET (PARAMS), e.g. 'pend64=gin_pending_list_limit=65536' (repeatable)",
    )
    parser.add_argument(
        "--pg-short-index",
        action="store_true",
        help=f"with --pg-trigram-ab, one more target {SHORT_TARGET}: the trigram index and "
        "the index of 1-2 character terms (`postroom fulltext on`, off by default)",
    )
    parser.add_argument(
        "--pg-blocks-ab",
        action="store_true",
        help="PostgreSQL A/B: bench Postroom without the block summariser "
        "(--block-summaries-interval 0, target pg-blocks) and with it (pg+blocks, every "
        "--blocks-interval), interleaved, each in a fresh database created on "
        "--database-url's server (dropped at the end); sink and Postfix are not run",
    )
    parser.add_argument(
        "--blocks-interval",
        default="5s",
        help="with --pg-blocks-ab, pg+blocks' --block-summaries-interval (default 5s, so that "
        "it works during the run; the server's default is 60s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds one smtp-source run may take before it is stopped (default 900)",
    )
    args = parser.parse_args(argv)
    if args.pg_trigram_ab and not args.database_url:
        parser.error("--pg-trigram-ab needs --database-url postgresql://...")
    if args.pg_blocks_ab and (not args.database_url or args.pg_trigram_ab):
        parser.error("--pg-blocks-ab needs --database-url postgresql://..., not --pg-trigram-ab")
    return args


def _median_rates(results: list[Result]) -> dict[str, float]:
    rates: dict[str, list[float]] = {}
    for result in results:
        rates.setdefault(result.target, []).append(result.rate)
    return {target: statistics.median(values) for target, values in rates.items()}


def _median_cpu(results: list[Result], attribute: str) -> dict[str, float]:
    found: dict[str, list[float]] = {}
    for result in results:
        value = getattr(result, attribute)
        if value is not None:
            found.setdefault(result.target, []).append(value)
    return {target: statistics.median(values) for target, values in found.items()}


def _cpu_text(cpu_ms: float | None, pg_cpu_ms: float | None) -> str:
    if cpu_ms is None:
        return ""
    text = f"cpu {cpu_ms:.2f} ms/msg"
    return text if pg_cpu_ms is None else f"{text}, pg {pg_cpu_ms:.2f} ms/msg"


def print_table(results: list[Result], failures: list[tuple[str, str]], load: Load) -> None:
    rounds = len({r.round for r in results}) > 1 or any(r.round > 1 for r in results)
    name = "round/target" if rounds else "target"
    medians = _median_rates(results)
    labels = [name, *(f"median/{t}" for t in medians if rounds), *(f for f, _ in failures)]
    width = max(9, *(len(label) for label in labels))
    print()
    print(f"{name:<{width}} {'messages':>9} {'seconds':>9} {'msg/s':>9}  check")
    for result in results:
        label = f"{result.round}/{result.target}" if rounds else result.target
        print(
            f"{label:<{width}} {result.messages:>9} {result.seconds:>9.2f} "
            f"{result.rate:>9.1f}  {result.check}"
            + (
                f"; {_cpu_text(result.cpu_ms, result.pg_cpu_ms)}"
                if result.cpu_ms is not None
                else ""
            )
        )
    for label, reason in failures:
        lines = [line.strip() for line in reason.splitlines() if line.strip()] or ["?"]
        why = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        print(f"{label:<{width}} {load.messages:>9} {'-':>9} {'-':>9}  FAILED: {why}")
    if rounds:
        cpu, pg_cpu = _median_cpu(results, "cpu_ms"), _median_cpu(results, "pg_cpu_ms")
        for target, rate in medians.items():
            print(
                f"{'median/' + target:<{width}} {'':>9} {'':>9} {rate:>9.1f}  "
                + _cpu_text(cpu.get(target), pg_cpu.get(target))
            )
    if "pg-trgm" in medians:
        base = {r.round: r.rate for r in results if r.target == "pg-trgm"}
        for target in (t for t in medians if t.startswith("pg+trgm")):
            change = medians[target] / medians["pg-trgm"] - 1
            paired = [
                r.rate / base[r.round] - 1
                for r in results
                if r.target == target and r.round in base
            ]
            pairs = f", paired per round {statistics.median(paired):+.1%}" if paired else ""
            print(
                f"full-text indexes: acceptance {change:+.1%} (median {target} vs pg-trgm{pairs})"
            )
    if "postroom" in medians and "postfix" in medians:
        ratio = medians["postroom"] / medians["postfix"]
        verdict = "met" if ratio >= TARGET_RATIO else "not met"
        print(f"ratio postroom/postfix: {ratio:.2f}x (target >= {TARGET_RATIO:.1f}x: {verdict})")
    if "postroom" in medians and "sink" in medians:
        share = medians["postroom"] / medians["sink"]
        print(f"postroom reaches {share:.0%} of the smtp-sink ceiling")


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into exceptions so that every `finally` cleans up.

    SIGINT is set explicitly because a shell starts background jobs with it ignored.
    """

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous: dict[signal.Signals, Callable[[int, FrameType | None], object] | int | None] = {}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_target(
    target: str,
    load: Load,
    run_dir: Path,
    round_: int,
    args: argparse.Namespace,
    ab_urls: dict[str, str] | None = None,
) -> Result:
    if target in BLOCKS_TARGETS and ab_urls is not None:
        interval = args.blocks_interval if target == "pg+blocks" else "0"
        extra = ["--block-summaries-interval", interval]
        result = bench_postroom(load, run_dir, ab_urls[target], name=target, extra=extra)
    elif ab_urls is not None:
        result = bench_postroom(load, run_dir, ab_urls[target], name=target)
    elif target == "sink":
        result = bench_sink(load, run_dir)
    elif target == "postfix":
        result = bench_postfix(load, run_dir)
    else:
        result = bench_postroom(load, run_dir, args.database_url, args.sqlite_fulltext)
    return dataclasses.replace(result, round=round_)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = Load(args.messages, args.sessions, args.size, args.timeout)
    targets = (
        [
            *AB_TARGETS,
            *([SHORT_TARGET] if args.pg_short_index else []),
            *(f"pg+trgm[{v.partition('=')[0]}]" for v in args.pg_index_variant),
        ]
        if args.pg_trigram_ab
        else list(BLOCKS_TARGETS)
        if args.pg_blocks_ab
        else [args.only]
        if args.only
        else list(TARGETS)
    )
    with exit_on_signals(), contextlib.ExitStack() as stack:
        try:
            ensure_postfix_installed()
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        workdir = Path(tempfile.mkdtemp(prefix="postroom-bench-"))
        workdir.chmod(0o755)  # Postfix daemons run as the postfix user
        print(
            f"smtp acceptance: {load.messages} messages x {load.size} octets over "
            f"{load.sessions} sessions, {os.cpu_count()} cores, Postfix {postfix_version()}, "
            f"work dir {workdir}",
            flush=True,
        )
        results: list[Result] = []
        failures: list[tuple[str, str]] = []
        try:
            ab_urls = (
                stack.enter_context(
                    ab_databases(args.database_url, args.pg_index_variant, args.pg_short_index)
                )
                if args.pg_trigram_ab
                else stack.enter_context(fresh_databases(args.database_url, BLOCKS_TARGETS))
                if args.pg_blocks_ab
                else None
            )
            for round_ in range(1, args.rounds + 1):
                # A/B: the order alternates from round to round (ABBA...)
                order = targets[::-1] if ab_urls is not None and round_ % 2 == 0 else targets
                for target in order:
                    label = f"{round_}/{target}" if args.rounds > 1 else target
                    print(f"[{label}]", flush=True)
                    run_dir = workdir / f"{round_}-{target}"
                    run_dir.mkdir(mode=0o755)
                    try:
                        results.append(run_target(target, load, run_dir, round_, args, ab_urls))
                    except (BenchError, OSError) as exc:
                        print(f"  {label} failed: {exc}", file=sys.stderr, flush=True)
                        failures.append((label, str(exc)))
        except (KeyboardInterrupt, SystemExit):
            print("interrupted: stopping what was started", file=sys.stderr, flush=True)
            raise
        finally:
            if args.keep:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        print_table(results, failures, load)
    return 0 if not failures and all(r.ok for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
