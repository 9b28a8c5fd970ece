"""summarize, parse_message and get_part never fail on hostile bytes (seeded, reproducible)."""

from __future__ import annotations

import random

import pytest

from postroom.core.errors import NotFound
from postroom.core.types import Summary
from postroom.mime.summary import summarize
from postroom.mime.view import ParsedMessage, get_part, parse_message
from tests.unit.mime.support import all_fixtures, fixture

TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"--",
    b"=?utf-8?b?",
    b"?=",
    b'boundary="',
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"charset=zlib",
    b"filename*0*=",
    b"\x00",
    b"\xff\xfe",
    b"<",
    b">",
    b'"',
    b":",
    b"\t",
    b"=",
    b"cid:",
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        position = rng.randint(0, len(buffer))
        if choice < 0.3 and buffer:
            buffer[min(position, len(buffer) - 1)] = rng.randrange(256)
        elif choice < 0.55:
            buffer[position:position] = rng.choice(TOKENS)
        elif choice < 0.75 and buffer:
            end = min(len(buffer), position + rng.randint(1, 64))
            del buffer[position:end]
        elif choice < 0.9 and buffer:
            start = rng.randint(0, len(buffer) - 1)
            chunk = buffer[start : start + rng.randint(1, 200)]
            buffer[position:position] = chunk
        else:
            del buffer[position:]  # truncation
    return bytes(buffer)


def check(raw: bytes) -> None:
    summary = summarize(raw)
    assert isinstance(summary, Summary)
    assert len(summary.snippet) <= 253
    # Internal failures are caught and reported as defects; fuzzing must not find any.
    internal = [d for d in summary.defects if "unreadable (" in d or "unparsable (" in d]
    assert internal == [], raw[:200]
    view = parse_message(raw)
    assert isinstance(view, ParsedMessage)
    for info in (*view.attachments, *view.inline):
        part = get_part(raw, info.part_id)
        assert isinstance(part.data, bytes)
    with pytest.raises(NotFound):
        get_part(raw, "99.99")


@pytest.mark.parametrize("name", all_fixtures())
def test_fixtures_survive_truncation_at_every_tenth(name: str) -> None:
    raw = fixture(name)
    for tenth in range(10):
        check(raw[: len(raw) * tenth // 10])


@pytest.mark.parametrize("name", all_fixtures())
def test_fixtures_survive_random_mutation(name: str) -> None:
    rng = random.Random(f"postroom-mime-{name}")
    raw = fixture(name)
    for _ in range(60):
        check(mutate(rng, raw))


def test_random_bytes() -> None:
    rng = random.Random(20250114)
    for _ in range(200):
        size = rng.randint(0, 600)
        check(bytes(rng.randrange(256) for _ in range(size)))


def test_fuzzing_does_reach_the_interesting_paths() -> None:
    """Guard against a mutator that only produces trivial input: mutants still have parts."""
    rng = random.Random(7)
    raw = fixture("nested.eml")
    with_parts = sum(1 for _ in range(50) if summarize(mutate(rng, raw)).attachments)
    assert with_parts > 10
