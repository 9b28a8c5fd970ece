"""The fast parse of simple messages builds exactly the tree the feed parser builds.

`tree.parse` skips the `email` feed parser for simple messages (CRLF headers, no multipart).
Every message here goes through both; where the fast path takes a message, the trees and
the summaries must be identical, and it must decline anything the feed parser would treat
specially.
"""

from __future__ import annotations

from email.message import Message

import pytest

from postroom.mime.summary import summary_of
from postroom.mime.tree import _PARSER, _parse_simple, walk
from tests.services import require_shared
from tests.unit.mime.support import all_fixtures, fixture

HANDMADE = {
    "plain": b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nbody\r\n",
    "folded": b"Subject: one\r\n two\r\n\tthree\r\nTo: x@example.com\r\n\r\nbody",
    "empty value": b"X-Empty:\r\nX-Blank: \t \r\nSubject:\r\n folded only\r\n\r\n",
    "empty body": b"Subject: nothing follows\r\n\r\n",
    "trailing spaces": b"Subject: spaced   \r\nX-Tab:\tvalue\t\r\n\r\nbody\r\n",
    "eight bit": "Subject: caf\u00e9 \u2603\r\nFrom: J\u00fcrgen <j@example.com>\r\n\r\n"
    "\u00fcber\r\n".encode(),
    "bare lf in body": b"Subject: x\r\n\r\nline one\nline two\rline three\r\n",
    "text html": b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>",
    "qp": b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9\r\n",
    "multipart": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
    "multipart folded": b"Content-Type:\r\n multipart/alternative; boundary=b\r\n\r\n--b--\r\n",
    "multipart spaced": b"Content-Type: multipart /mixed\r\n\r\nbody",
    "rfc822": b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n",
    "delivery status": b"Content-Type: message/delivery-status\r\n\r\nStatus: 5.0.0\r\n\r\n",
    "unix from": b"From someone Mon Jan  1 00:00:00 2026\r\nSubject: x\r\n\r\nbody",
    "from later": b"Subject: x\r\nFrom someone else\r\n\r\nbody",
    "no name": b": value\r\nSubject: x\r\n\r\nbody",
    "space in name": b"Bad Name: value\r\n\r\nbody",
    "continuation first": b" leading\r\nSubject: x\r\n\r\nbody",
    "no separator": b"Subject: x\r\nTo: y@example.com\r\n",
    "no headers": b"\r\n\r\nbody only",
    "body without blank": b"Subject: x\r\nnot a header\r\n\r\nbody",
    "bare lf headers": b"Subject: x\nTo: y@example.com\n\nbody",
    "bare cr header": b"Subject: x\rTo: y\r\n\r\nbody",
    "form feed header": b"Subject: x\x0cy\r\n\r\nbody",
    "vertical tab header": b"Subject: x\x0by\r\n\r\nbody",
    "duplicate content type": b"Content-Type: text/plain\r\nContent-Type: multipart/mixed\r\n\r\nx",
    "nul": b"Subject: a\x00b\r\n\r\nbody\x00",
}


def _same_tree(fast: Message, slow: Message) -> None:
    assert fast._headers == slow._headers  # type: ignore[attr-defined]
    assert fast._payload == slow._payload  # type: ignore[attr-defined]
    assert fast.defects == slow.defects == []
    assert fast.get_unixfrom() == slow.get_unixfrom() is None
    assert (fast.preamble, fast.epilogue) == (slow.preamble, slow.epilogue)
    assert fast.get_content_type() == slow.get_content_type()
    assert summary_of(fast, walk(fast)) == summary_of(slow, walk(slow))


def _check(raw: bytes) -> bool:
    """Compare both parsers on `raw`; whether the fast path took it."""
    fast = _parse_simple(raw)
    slow = _PARSER.parsebytes(raw)
    if fast is None:
        return False
    _same_tree(fast, slow)
    return True


@pytest.mark.parametrize("name", sorted(HANDMADE))
def test_handmade_messages(name: str) -> None:
    taken = _check(HANDMADE[name])
    declined = {
        "multipart", "multipart folded", "multipart spaced", "rfc822", "delivery status",
        "unix from", "from later", "no name", "space in name", "continuation first",
        "no separator", "no headers", "body without blank", "bare lf headers",
        "bare cr header", "form feed header", "vertical tab header",
    }  # fmt: skip
    assert taken == (name not in declined)


@pytest.mark.parametrize("name", all_fixtures())
def test_fixtures(name: str) -> None:
    _check(fixture(name))


def test_the_bounce_corpus() -> None:
    corpus = require_shared("corpora/bounces")
    taken = sum(_check(path.read_bytes()) for path in sorted(corpus.glob("*.eml")))
    assert taken > 0  # some real messages are simple enough
