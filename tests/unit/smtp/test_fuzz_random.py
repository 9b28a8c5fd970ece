"""The seeded fuzz generator of bench/fuzz_long.py: a short pass of every case kind, and proof
that its checks fail on a session that misbehaves (a fuzzer that cannot fail proves nothing)."""

from __future__ import annotations

import random

import pytest

from postroom.smtp.protocol import SmtpSession
from tests.unit.mime.support import FIXTURES

from .fuzz_random import Cases, carried, case_seed, session_input
from .fuzz_support import HarnessError, make_policy, run

CORPUS = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]


@pytest.mark.parametrize(
    "kind", ["split", "starttls", "framing", "exact", "bdat", "held", "corpus", "mime"]
)
def test_each_case_kind_holds_on_fixed_seeds(kind: str) -> None:
    cases = Cases(CORPUS, mime=True)
    method = getattr(cases, kind)
    for index in range(40):
        method(random.Random(case_seed(7, index)))


def test_a_case_is_reproduced_from_its_seed_and_index() -> None:
    first = session_input(random.Random(case_seed(3, 11)))
    assert first == session_input(random.Random(case_seed(3, 11)))
    assert first != session_input(random.Random(case_seed(3, 12)))


def test_a_correct_client_session_delivers_every_message() -> None:
    """The generator's reference: its wire really carries the messages (by DATA and BDAT)."""
    rng = random.Random(5)
    seen_bdat = seen_data = False
    for _ in range(50):
        wire, expected = carried(rng, [rng.randbytes(rng.randint(0, 200)) for _ in range(3)])
        seen_bdat |= b"BDAT" in wire
        seen_data |= b"\r\nDATA\r\n" in wire
        policy = make_policy(max_text_line=0, max_message_size=10_000, bare_line_endings="accept")
        assert [m.data for m in run(wire, [], policy).messages] == expected
    assert seen_bdat and seen_data


def test_a_session_that_loses_a_dot_fed_alone_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    feed = SmtpSession.feed

    def lossy(self: SmtpSession, data: bytes) -> list[object]:
        return feed(self, b"" if data == b"." else data)  # type: ignore[return-value]

    monkeypatch.setattr(SmtpSession, "feed", lossy)
    cases = Cases(CORPUS, mime=False)
    with pytest.raises(HarnessError):
        for index in range(200):
            cases.framing(random.Random(case_seed(1, index)))
