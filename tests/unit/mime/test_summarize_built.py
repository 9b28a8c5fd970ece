"""A message the send APIs write gets the summary parsing it would give, without parsing its
body: `summarize_built` (used by api/native_message.build) must agree with `summarize` on the
message as written, and as stored (a Received header above it), for any subject, names,
addresses, text, HTML and tags the API accepts; where it cannot be sure it answers None."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from postroom.api.native_message import build
from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput
from postroom.mime.summary import summarize, summarize_built

CLOCK = FakeClock(datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC))
LINE = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)))
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=3000)
NAME = st.text(
    st.characters(blacklist_characters='\r\n<>,;"', blacklist_categories=("Cs",)), max_size=40
)
LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True)
DOMAIN = st.sampled_from(["example.com", "example.net", "xn--bcher-kva.example"])


@st.composite
def address(draw: st.DrawFn) -> dict[str, str]:
    return {"email": f"{draw(LOCAL)}@{draw(DOMAIN)}", "name": draw(NAME)}


def check(body: dict[str, Any]) -> bool:
    """Whether the built message's summary (if it has one) is the parsed one."""
    try:
        built = build(body, CLOCK, "mail.example.org")
    except InvalidInput:
        return False
    if built.summary is None:
        return False
    assert built.summary == summarize(built.data)
    received = b"Received: from client (127.0.0.1) by me; Thu, 1 Jan 2026 12:00:00 +0000\r\n"
    assert built.summary == summarize(received + built.data)
    return True


@given(
    subject=LINE,
    sender=address(),
    to=st.lists(address(), min_size=1, max_size=3),
    cc=st.lists(address(), max_size=2),
    reply_to=st.lists(address(), max_size=2),
    text=TEXT,
    html=st.one_of(st.just(""), TEXT.map(lambda t: f"<p>{t}</p>")),
    tags=st.lists(st.from_regex(r"[A-Za-z0-9:_ -]{1,20}", fullmatch=True), max_size=4),
)
def test_summary_of_a_built_message_is_the_parsed_one(
    subject: str,
    sender: dict[str, str],
    to: list[dict[str, str]],
    cc: list[dict[str, str]],
    reply_to: list[dict[str, str]],
    text: str,
    html: str,
    tags: list[str],
) -> None:
    check(
        {
            "from": sender,
            "to": to,
            "cc": cc,
            "bcc": ["hidden@example.org"],
            "reply_to": reply_to,
            "subject": subject,
            "text": text,
            "html": html or None,
            "tags": [t for t in tags if t.strip()] or None,
        }
    )


def test_common_messages_use_it_and_others_parse() -> None:
    base = {"from": "App <app@example.com>", "to": ["a@example.net"], "subject": "Hi"}
    assert check({**base, "text": "Hello\nthere", "tags": ["welcome"]})
    assert check({**base, "text": "Grüße — 你好 " * 200, "html": "<b>x</b>"})
    assert check({**base, "text": "CRLF\r\nlines, a bare\rCR and\n\n\rmixed\r\n"})
    # HTML only, whitespace-only text, attachments: parsed as before.
    assert not check({**base, "html": "<p>only html</p>"})
    assert not check({**base, "text": "  \n ", "html": "<p>x</p>"})
    attached = {"filename": "a.txt", "content": "aGk=", "content_type": "text/plain"}
    assert not check({**base, "text": "x", "attachments": [attached]})
    assert summarize_built(b"no header end", "text") is None
