"""The long fuzz run: the hypothesis properties of tests/unit/smtp/test_session_fuzz.py (and,
with --mime, tests/unit/mime/test_mime_hypothesis.py) with fresh random examples, round after
round, until a number of SMTP session inputs has been driven or a time is up. Prints how many
cases (hypothesis examples), session inputs (a session fed one whole input, at random cuts or
octet by octet: most examples drive three), octets fed and CPU seconds used, and the first
failure with its shrunk example, if any (exit status 1).

    nice -n 10 .venv/bin/python bench/fuzz_long.py --sessions 1000000 --seconds 1800
    .venv/bin/python bench/fuzz_long.py --seconds 60 --mime       # a quick look

One core: hypothesis runs in this process. A failure found here becomes a regression test.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, settings
from tests.unit.smtp import fuzz_support, test_session_fuzz

SESSION_PROPERTIES = [
    test_session_fuzz.test_any_input_split_anywhere_gives_the_same_well_formed_replies,
    test_session_fuzz.test_starttls_and_closing_sessions_never_raise,
    test_session_fuzz.test_data_ends_only_at_crlf_dot_crlf,
    test_session_fuzz.test_a_correct_client_gets_its_exact_message,
    test_session_fuzz.test_bdat_messages_end_only_with_the_last_chunk,
    test_session_fuzz.test_held_input_is_replayed_in_order_after_each_answer,
]


def mime_properties() -> list[Callable[..., Any]]:
    from tests.unit.mime import test_mime_hypothesis as mime

    found = [
        mime.test_random_bytes_never_raise,
        mime.test_generated_mime_structures_never_raise,
        mime.test_mutated_fixtures_never_raise,
    ]
    if mime.BOUNCE_BYTES:
        found.append(mime.test_mutated_bounces_never_raise)
    else:
        print(f"bounce corpus absent ({mime.BOUNCES}): its mutations are skipped")
    return found


class Counted:
    """Counts the examples a property runs."""

    def __init__(self) -> None:
        self.cases = 0


def prepare(prop: Callable[..., Any], examples: int, counter: Counted) -> Callable[[], None]:
    """`prop` with fresh random examples, `examples` a call, counting the cases it runs."""
    inner = prop.hypothesis.inner_test  # type: ignore[attr-defined]

    def counting(*args: Any, **kwargs: Any) -> Any:
        counter.cases += 1
        return inner(*args, **kwargs)

    prop.hypothesis.inner_test = counting  # type: ignore[attr-defined]
    return settings(  # type: ignore[no-any-return]
        max_examples=examples,
        deadline=None,
        derandomize=False,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )(prop)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000, help="stop after this many")
    parser.add_argument("--seconds", type=float, default=1800.0, help="stop after this long")
    parser.add_argument("--round", type=int, default=100, help="examples per property per round")
    parser.add_argument("--mime", action="store_true", help="also run the MIME properties")
    args = parser.parse_args()

    props = list(SESSION_PROPERTIES) + (mime_properties() if args.mime else [])
    counters = {prop.__name__: Counted() for prop in props}
    runs = [(prop.__name__, prepare(prop, args.round, counters[prop.__name__])) for prop in props]
    start = time.monotonic()
    cpu_start = time.process_time()
    deadline = start + args.seconds
    rounds = 0
    failed: BaseException | None = None
    last_report = start
    while fuzz_support.COUNTERS["sessions"] < args.sessions and time.monotonic() < deadline:
        rounds += 1
        for name, run in runs:
            if time.monotonic() >= deadline:
                break
            try:
                run()
            except BaseException as exc:  # a property failed: report it
                failed = exc
                print(f"\nFAILED: {name}\n{exc}", flush=True)
                break
        if failed is not None:
            break
        now = time.monotonic()
        if now - last_report >= 60:
            last_report = now
            print(
                f"  {now - start:7.0f} s  round {rounds}  "
                f"sessions {fuzz_support.COUNTERS['sessions']:,}  "
                f"cases {sum(c.cases for c in counters.values()):,}  "
                f"cpu {time.process_time() - cpu_start:.0f} s",
                flush=True,
            )
    elapsed = time.monotonic() - start
    cases = sum(c.cases for c in counters.values())
    cpu = time.process_time() - cpu_start
    print(f"fuzz_long: {elapsed:.0f} s elapsed, {cpu:.0f} s of CPU, {rounds} rounds")
    for name, counter in counters.items():
        print(f"  {counter.cases:>10,} cases  {name}")
    sessions = fuzz_support.COUNTERS["sessions"]
    octets = fuzz_support.COUNTERS["octets"]
    print(f"cases: {cases:,}")
    print(
        f"SMTP session inputs: {sessions:,} ({sessions / elapsed:,.0f}/s), octets fed: {octets:,}"
    )
    print("result: FAILED" if failed is not None else "result: no failure")
    return 1 if failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
