"""Big messages read as streams (mime/stream.py): the small copy parses like the original,
parts stream out decoded, and memory stays far below the message size."""

from __future__ import annotations

import base64
import tracemalloc
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from postroom.core.errors import NotFound
from postroom.core.types import AttachmentInfo
from postroom.mime.stream import shrink
from postroom.mime.summary import summarize
from postroom.mime.tree import TEXT_KEEP
from postroom.mime.view import get_part, get_part_stream, parse_message, parse_message_stream
from tests.unit.mime.support import FIXTURES

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpora" / "bounces"
# Hand-written fixtures in odd chunk sizes too; the corpus of real bounces in big chunks.
SAMPLES = [(path, chunk) for path in sorted(FIXTURES.glob("*.eml")) for chunk in (13, 1 << 20)]
SAMPLES += [(path, 1 << 20) for path in sorted(CORPUS.glob("*.eml"))]


def _chunks(raw: bytes, size: int) -> Iterator[bytes]:
    return (raw[i : i + size] for i in range(0, len(raw), size))


def _files(items: tuple[AttachmentInfo, ...]) -> tuple[AttachmentInfo, ...]:
    # An attached message's size is its bytes as received when streamed, as re-serialised
    # by the full parse: the two may differ by header spacing.
    return tuple(a for a in items if not a.content_type.startswith("message/"))


@pytest.mark.parametrize(("path", "chunk"), SAMPLES, ids=lambda v: getattr(v, "name", str(v)))
def test_small_copy_shows_what_the_message_shows(path: Path, chunk: int) -> None:
    raw = path.read_bytes()
    shrunk = shrink(_chunks(raw, chunk), keep=0)  # every body left out
    full = parse_message(raw)
    small = parse_message(shrunk.data, shrunk.elided)
    assert small.headers == full.headers
    assert _files(small.attachments) == _files(full.attachments)
    assert _files(small.inline) == _files(full.inline)
    assert [a.part_id for a in small.attachments] == [a.part_id for a in full.attachments]
    if path.name != "lhost-x1-02.eml":  # an unclosed multipart: one trailing newline differs
        assert small.text == full.text
        assert small.summary.snippet == full.summary.snippet
    assert small.html == full.html
    assert small.summary.subject == full.summary.subject
    for item in _files((*full.attachments, *full.inline)):
        streamed = get_part_stream(_chunks(raw, chunk), item.part_id)
        part = get_part(raw, item.part_id)
        assert b"".join(streamed.chunks) == part.data
        assert (streamed.content_type, streamed.filename) == (part.content_type, part.filename)


def _big_message(attachment: bytes, html_size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["To"] = "b@example.com"
    msg["Subject"] = "big"
    msg.set_content("plain body\n")
    msg.add_alternative("<p>" + "x" * html_size + "</p>", subtype="html")
    msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="a.bin")
    msg.add_attachment(b"small", maintype="application", subtype="octet-stream", filename="s.bin")
    return msg.as_bytes().replace(b"\n", b"\r\n")


def test_big_message_summary_parts_and_cut_text() -> None:
    attachment = bytes(range(256)) * 8_000  # 2 MB
    raw = _big_message(attachment, TEXT_KEEP + 1000)
    full = parse_message(raw)
    streamed = parse_message_stream(_chunks(raw, 1 << 20))
    assert streamed.attachments == full.attachments
    assert streamed.text == full.text
    assert streamed.html == full.html[: len(streamed.html)]
    assert len(streamed.html.encode()) == TEXT_KEEP
    assert any("cut for display" in d for d in streamed.defects)
    assert summarize(raw).attachments == full.attachments
    part = get_part_stream(_chunks(raw, 65536), full.attachments[0].part_id)
    chunks = list(part.chunks)
    assert b"".join(chunks) == attachment
    assert max(len(c) for c in chunks) < 3 * (1 << 20)
    with pytest.raises(NotFound):
        get_part_stream(_chunks(raw, 65536), "9")


def test_invalid_base64_is_noted_as_the_full_parse_notes_it() -> None:
    body = base64.encodebytes(b"y" * 200_000).replace(b"\n", b"\r\n")
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + body[:5000]
        + b"!!!\r\n"
        + body[5000:]
        + b"\r\n--b--\r\n"
    )
    full = parse_message(raw)
    streamed = parse_message_stream([raw])
    assert streamed.attachments == full.attachments
    assert "1: invalid base64 data" in full.defects
    assert "1: invalid base64 data" in streamed.defects


def test_parsing_a_big_message_as_a_stream_holds_little_memory() -> None:
    attachment = bytes(range(256)) * 32_000  # 8 MB, 11 MB in base64
    raw = _big_message(attachment, 1000)
    tracemalloc.start()
    try:
        parse_message_stream(_chunks(raw, 1 << 18))
        _, stream_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        parts = get_part_stream(_chunks(raw, 1 << 18), "3")
        for _ in parts.chunks:
            pass
        _, part_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The whole-message parse holds the message several times over (about 80 MB here).
    assert stream_peak < 4 * 1024 * 1024  # the message is 11 MB
    assert part_peak < 4 * 1024 * 1024
