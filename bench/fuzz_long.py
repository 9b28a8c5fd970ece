"""The long fuzz run of the sans-IO SMTP session (and, with --mime, of the MIME parser).

Seeded random cases from tests/unit/smtp/fuzz_random.py, checked with the driver and the
properties of the hypothesis tests (tests/unit/smtp/test_session_fuzz.py, which keeps the
short run in `make test`): no exception, every reply well formed, the same outcome whatever
the split (down to every octet), DATA ends only at <CRLF>.<CRLF>, a correct client's DATA and
BDAT messages arrive intact with what follows them; the MIME parser never raises. Runs until
SESSIONS SMTP session inputs have been driven or SECONDS are up, then prints the number of
cases, session inputs (one session fed one whole input: most cases drive two or three, whole,
at random cuts, octet by octet), MIME inputs, octets fed, failures and the time taken.

    nice -n 10 .venv/bin/python bench/fuzz_long.py --sessions 1000000 --mime
    .venv/bin/python bench/fuzz_long.py --seconds 30 --mime           # a quick look
    .venv/bin/python bench/fuzz_long.py --seed S --replay INDEX       # one failing case again

One core, this process. Exit status 1 if any case failed; each failure is printed with the
command that replays it. A failure found here becomes a regression test.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.smtp import fuzz_support
from tests.unit.smtp.fuzz_random import Cases

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
BOUNCES = ROOT.parent / "shared" / "corpora" / "bounces"


def corpus() -> list[bytes]:
    found = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]
    if BOUNCES.is_dir():
        found += [path.read_bytes() for path in sorted(BOUNCES.glob("*.eml"))]
    else:
        print(f"bounce corpus absent ({BOUNCES}): only tests/fixtures are mutated")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000, help="stop after this many")
    parser.add_argument("--seconds", type=float, default=1800.0, help="stop after this long")
    parser.add_argument("--seed", type=int, default=None, help="default: from the clock")
    parser.add_argument("--mime", action="store_true", help="also fuzz the MIME parser")
    parser.add_argument("--replay", type=int, default=None, help="run only this case index")
    parser.add_argument("--max-failures", type=int, default=20, help="stop after this many")
    args = parser.parse_args()

    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000_007
    messages = corpus()
    cases = Cases(messages, mime=args.mime)
    if args.replay is not None:
        name = cases.run_case(seed, args.replay)
        print(f"case {args.replay} ({name}) of seed {seed}: passed")
        return 0

    print(f"fuzz_long: seed {seed}, {len(messages)} corpus messages, mime={args.mime}", flush=True)
    counters = fuzz_support.COUNTERS
    counters["sessions"] = counters["octets"] = 0
    by_kind: collections.Counter[str] = collections.Counter()
    failures = 0
    start = time.monotonic()
    cpu_start = time.process_time()
    deadline = start + args.seconds
    last_report = start
    index = 0
    while counters["sessions"] < args.sessions and failures < args.max_failures:
        if index % 256 == 0:
            now = time.monotonic()
            if now >= deadline:
                break
            if now - last_report >= 60:
                last_report = now
                print(
                    f"  {now - start:6.0f} s  cases {index:,}  "
                    f"sessions {counters['sessions']:,}  failures {failures}",
                    flush=True,
                )
        try:
            by_kind[cases.run_case(seed, index)] += 1
        except Exception as exc:  # a property failed or the code under test raised
            failures += 1
            print(
                f"\nFAILED case {index}: {type(exc).__name__}: {str(exc)[:2000]}\n"
                f"{''.join(traceback.format_tb(exc.__traceback__)[-3:])}"
                f"replay: .venv/bin/python bench/fuzz_long.py --seed {seed} --replay {index}"
                f"{' --mime' if args.mime else ''}\n",
                flush=True,
            )
        index += 1
    elapsed = time.monotonic() - start
    cpu = time.process_time() - cpu_start
    sessions, octets = counters["sessions"], counters["octets"]
    print(f"fuzz_long: seed {seed}, {elapsed:.0f} s elapsed, {cpu:.0f} s of CPU")
    for name, count in sorted(by_kind.items()):
        print(f"  {count:>10,} cases  {name}")
    print(f"cases: {index:,}")
    print(
        f"SMTP session inputs: {sessions:,} ({sessions / elapsed:,.0f}/s), octets fed: {octets:,}"
    )
    print(f"MIME inputs: {cases.tally.mime:,}")
    print(f"failures: {failures}")
    print("result: FAILED" if failures else "result: no failure")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
