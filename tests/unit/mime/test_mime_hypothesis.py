"""Property-based fuzzing of the MIME parser (tree, summary, view) with hypothesis: random
bytes, generated MIME structures, and mutations of the fixtures and of the bounce corpus in
../shared/corpora/bounces (read from there, never copied here) never raise, and never reach
the internal-failure fallbacks. The settings profile is in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.mime import tree
from tests.services import SHARED
from tests.unit.mime.support import FIXTURES, all_fixtures
from tests.unit.mime.test_mime_fuzz import TOKENS, check

BOUNCES = SHARED / "corpora" / "bounces"


def corpus(folder: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(folder.glob("*.eml"))]


FIXTURE_BYTES = [(FIXTURES / name).read_bytes() for name in all_fixtures()]


def full_check(raw: bytes) -> None:
    check(raw)
    root = tree.parse(raw)
    tree.serialize(root)
    walked = tree.walk(root)
    for part_id in ("1", "1.1", "2", "0", "", "1.1.1.1"):
        tree.find(root, part_id)
    assert walked is not None


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    buffer = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 5))
        position = draw(st.integers(0, len(buffer)))
        if op == 0 and buffer:
            buffer[min(position, len(buffer) - 1)] = draw(st.integers(0, 255))
        elif op == 1:
            buffer[position:position] = draw(st.sampled_from(TOKENS) | st.binary(max_size=16))
        elif op == 2 and buffer:
            del buffer[position : position + draw(st.integers(1, 200))]
        elif op == 3 and buffer:
            start = draw(st.integers(0, len(buffer) - 1))
            buffer[position:position] = buffer[start : start + draw(st.integers(1, 400))]
        elif op == 4:
            del buffer[position:]
        else:
            buffer[position:position] = draw(header())
    return bytes(buffer)


CONTENT_TYPES = st.sampled_from(
    [
        "text/plain",
        "text/html",
        "multipart/mixed",
        "multipart/alternative",
        "multipart/related",
        "multipart/digest",
        "message/rfc822",
        "message/global",
        "message/delivery-status",
        "message/feedback-report",
        "application/octet-stream",
        "image/png",
        "text/rfc822-headers",
        "multipart/",
        "/",
        "",
    ]
)
CHARSETS = st.sampled_from(
    ["utf-8", "us-ascii", "iso-8859-1", "koi8-r", "shift_jis", "utf-7", "bogus", "", "utf-16"]
)
ENCODINGS = st.sampled_from(
    ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "bogus", ""]
)


@st.composite
def header(draw: st.DrawFn) -> bytes:
    name = draw(
        st.sampled_from(
            [
                "Subject",
                "From",
                "To",
                "Cc",
                "Date",
                "Message-ID",
                "Content-Type",
                "Content-Disposition",
                "Content-Transfer-Encoding",
                "Content-ID",
                "List-Unsubscribe",
                "X-Tags",
                "Received",
            ]
        )
    )
    value = draw(
        st.sampled_from(
            [
                "=?utf-8?b?w6k=?=",
                "=?koi8-r?q?=F0=D2=C9?=",
                "=?bogus?x?abc?=",
                '"Name, with comma" <a@b.c>, undisclosed:;',
                "<https://x.test/u>, <mailto:u@x.test?subject=stop>",
                "attachment; filename*0*=utf-8''%C3%A9; filename*1=\"x.txt\"",
                "Tue, 31 Feb 2024 25:61:61 +9999",
                "",
            ]
        )
        | st.text(max_size=60)
    )
    return f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")


@st.composite
def mime_entity(draw: st.DrawFn, depth: int = 0) -> bytes:
    ctype = draw(CONTENT_TYPES)
    boundary = draw(st.sampled_from(["b1", "b2", "", "=_x", "b1 b1", "a" * 80]))
    headers = bytearray(b"".join(draw(st.lists(header(), max_size=3))))
    headers += (
        f'Content-Type: {ctype}; charset="{draw(CHARSETS)}"; boundary="{boundary}"\r\n'.encode()
    )
    headers += f"Content-Transfer-Encoding: {draw(ENCODINGS)}\r\n".encode()
    if draw(st.booleans()):
        headers += b'Content-Disposition: attachment; filename="f.bin"\r\n'
    if ctype.startswith("multipart/") and depth < 4:
        children = draw(st.lists(mime_entity(depth + 1), max_size=3))
        body = b"preamble\r\n"
        for child in children:
            body += f"--{boundary}\r\n".encode() + child + b"\r\n"
        if draw(st.booleans()):
            body += f"--{boundary}--\r\n".encode()
        body += draw(st.sampled_from([b"", b"epilogue\r\n", b"--"]))
    elif ctype.startswith("message/") and depth < 4:
        body = draw(mime_entity(depth + 1))
    else:
        body = draw(
            st.sampled_from([b"", b"aGVsbG8=", b"=C3=A9=\r\n", b"<p>hi</p>", b"begin 644 x\r\n"])
            | st.binary(max_size=120)
        )
    return bytes(headers) + b"\r\n" + body


@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    full_check(raw)


@given(mime_entity())
def test_generated_mime_structures_never_raise(raw: bytes) -> None:
    full_check(b"From: a@b.c\r\nMIME-Version: 1.0\r\n" + raw)


@given(mutated(FIXTURE_BYTES))
def test_mutated_fixtures_never_raise(raw: bytes) -> None:
    full_check(raw)


BOUNCE_BYTES = corpus(BOUNCES) if BOUNCES.is_dir() else []


@pytest.mark.skipif(not BOUNCE_BYTES, reason=f"shared material absent: {BOUNCES}")
@given(st.data())
def test_mutated_bounces_never_raise(data: st.DataObject) -> None:
    full_check(data.draw(mutated(BOUNCE_BYTES)))


@pytest.mark.skipif(not BOUNCE_BYTES, reason=f"shared material absent: {BOUNCES}")
def test_every_bounce_as_it_is() -> None:
    for raw in BOUNCE_BYTES:
        full_check(raw)
