from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from postroom.core.types import Address, AttachmentInfo
from postroom.mime.summary import SEARCH_TEXT_LIMIT, SNIPPET_LENGTH, summarize
from tests.unit.mime.support import fixture


def test_plain_message() -> None:
    summary = summarize(fixture("plain.eml"))
    assert summary.from_ == Address("Café Shop", "orders@shop.example")
    assert summary.to == (Address("Bob Martin", "bob+orders@example.net"),)
    assert summary.cc == (
        Address("Doe, Jane", "jane@example.net"),
        Address("", "accounts@example.net"),
    )
    assert summary.bcc == ()
    assert summary.reply_to == (Address("Support", "support@shop.example"),)
    assert summary.subject == "Your order № 1042 has shipped"
    assert summary.message_id == "20250114100000.1042@shop.example"
    assert summary.date == datetime(2025, 1, 14, 10, tzinfo=UTC)
    assert summary.date is not None and summary.date.utcoffset() == timedelta(hours=1)
    assert summary.return_path == "bounces+4711@mail.shop.example"
    assert summary.header_tags == ("orders", "Shipping Notice", "receipts")
    assert summary.attachments == ()
    assert summary.defects == ()
    # Quoted-printable soft line break joined, whitespace collapsed, cut at 250 characters.
    assert summary.snippet.startswith("Hello Bob, Good news: your order № 1042 has shipped")
    assert "within two to three business days" in summary.snippet
    assert summary.snippet.endswith("...")
    assert len(summary.snippet) <= SNIPPET_LENGTH + 3
    assert "espresso beans, 500 g" in summary.search_text
    assert summary.search_text == summary.search_text.lower()
    assert "\n" not in summary.search_text


def test_short_body_snippet_is_not_cut() -> None:
    raw = b"Subject: hi\r\n\r\nHello   there,\r\n\r\n  friend.\r\n"
    summary = summarize(raw)
    assert summary.snippet == "Hello there, friend."
    assert summary.search_text == "hello there, friend."


def test_alternative_prefers_text_part() -> None:
    summary = summarize(fixture("alternative.eml"))
    assert summary.snippet == "This week: three stories about mail servers. Read more on the site."
    assert summary.date == datetime(2025, 1, 6, 8, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert summary.attachments == ()


def test_html_only_message_uses_html_as_text() -> None:
    summary = summarize(fixture("list-unsubscribe.eml"))
    assert summary.snippet == "Everything is 50% off this weekend. Unsubscribe"
    assert "<p>" not in summary.search_text


def test_html_body_without_text_drops_scripts_and_titles() -> None:
    raw = (
        b"Content-Type: text/html\r\n\r\n<html><head><title>T</title><style>x{}</style></head>"
        b"<body><p>One&amp;two</p><script>var s = 1;</script><div>three</div></body></html>"
    )
    assert summarize(raw).snippet == "One&two three"


def test_inline_cid_image_and_explicit_attachment() -> None:
    summary = summarize(fixture("html-inline-cid.eml"))
    assert summary.attachments == (
        AttachmentInfo("2", "logo.png", "image/png", "logo-1@studio.example", 69, inline=True),
        AttachmentInfo("3", "spare.png", "image/png", "unused-2@studio.example", 69, inline=False),
    )
    assert summary.attachment_count == 1
    assert summary.snippet == "Here is the new logo: Let me know what you think."


def test_encoded_attachment_names() -> None:
    summary = summarize(fixture("attachments-encoded-names.eml"))
    assert [(a.part_id, a.filename, a.content_type, a.size) for a in summary.attachments] == [
        ("2", "résumé für Müller.pdf", "application/pdf", 77),  # RFC 2231, UTF-8
        ("3", "Jahresübersicht 2024.csv", "text/csv", 19),  # RFC 2231 continuations, Latin-1
        (
            "4",
            "Отчёт.xlsx",  # RFC 2047 inside the quoted parameter
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            10,
        ),
        ("5", "secret.bin", "application/octet-stream", 10),  # directories removed
    ]
    assert all(not a.inline for a in summary.attachments)
    assert summary.snippet == "Attached are this month's reports."


def test_nested_mixed_alternative_related() -> None:
    summary = summarize(fixture("nested.eml"))
    assert summary.to == (Address("Renée", "renee@example.net"),)
    assert summary.attachments == (
        AttachmentInfo("1.2.2", "banner.png", "image/png", "banner@brand.example", 69, True),
        AttachmentInfo("2", "catalogue.pdf", "application/pdf", "", 77, False),
    )
    assert summary.snippet == "Spring catalogue: see the attached PDF for prices."


def test_attached_message_is_an_eml_attachment() -> None:
    summary = summarize(fixture("forwarded-rfc822.eml"))
    assert len(summary.attachments) == 1
    attached = summary.attachments[0]
    assert (attached.part_id, attached.filename, attached.content_type) == (
        "2",
        "Meeting notes.eml",
        "message/rfc822",
    )
    assert not attached.inline  # listed as an attachment despite Content-Disposition: inline
    assert attached.size > 150
    # Free text finds the attached message's words (issue 12: Mailpit does); the snippet
    # stays this message's own text.
    assert "ship on monday" in summary.search_text
    assert "meeting notes" in summary.search_text and "carol@example.org" in summary.search_text
    assert summary.snippet == "See the message below."


def test_charsets() -> None:
    latin = summarize(fixture("latin1.eml"))
    assert latin.from_ == Address("Jürgen Müller", "juergen@example.de")
    assert latin.subject == "Grüße aus Köln"
    assert latin.snippet.startswith("Grüße aus Köln! Das Café öffnet")
    japanese = summarize(fixture("shift-jis.eml"))
    assert japanese.from_ == Address("山田太郎", "yamada@example.jp")
    assert japanese.subject == "会議のお知らせ"
    assert japanese.snippet == "来週の会議は月曜日の十時からです。 よろしくお願いします。"
    russian = summarize(fixture("koi8r.eml"))
    assert russian.from_ == Address("Иван Петров", "ivan@example.ru")
    assert russian.subject == "Встреча"
    assert russian.search_text == "привет, мир! встреча в пятницу."


def test_raw_utf8_headers() -> None:
    summary = summarize(fixture("smtputf8.eml"))
    assert summary.from_ == Address("Zoë Ångström", "zoë@exämple.org")
    assert summary.to == (
        Address("用户", "用户@例子.广告"),
        Address("", "plain+smtputf8@example.net"),
    )
    assert summary.subject == "Grüße — ünïcödé in raw headers"
    assert summary.message_id == "utf8-headers@exämple.org"
    assert summary.header_tags == ("Überprüfung",)
    assert summary.snippet == "Raw UTF-8 everywhere: naïve café, 日本語."


def test_broken_boundary_keeps_the_text_and_reports_it() -> None:
    summary = summarize(fixture("malformed-boundary.eml"))
    assert summary.subject == "Broken boundary"
    assert "the boundary above never matches the declared one" in summary.search_text
    assert "message: start boundary not found" in summary.defects


def test_bad_base64_is_decoded_leniently_and_reported() -> None:
    summary = summarize(fixture("malformed-base64.eml"))
    assert summary.snippet.startswith("Hello world!")
    assert summary.attachments[0].filename == "broken.bin"
    assert summary.attachments[0].size == 9  # "AAEC", "AwQF", "BgcI": three whole groups
    assert "1: invalid base64 data" in summary.defects
    assert "2: invalid base64 data" in summary.defects
    assert "message: close boundary not found" in summary.defects


def test_garbage_headers() -> None:
    summary = summarize(fixture("malformed-headers.eml"))
    assert summary.from_ == Address("Unclosed quote", "nobody@example.com")
    assert Address("", "good@example.net") in summary.to
    assert summary.subject == "café and =?utf-8?b?!!!invalid!!!?="
    assert summary.message_id == "no-brackets-here@example.com"
    assert summary.date is None
    assert "message: unreadable Date header" in summary.defects
    assert "message: missing header body separator" in summary.defects
    # The header block ended at the line without a colon; the rest is body text.
    assert "caf\u00e9." in summary.snippet
    assert "\x00" not in summary.search_text


def test_no_headers_at_all() -> None:
    summary = summarize(fixture("no-headers.eml"))
    assert summary.from_ is None
    assert summary.subject == ""
    assert summary.date is None
    assert summary.snippet == "Just a body line, no headers at all. Another line of text."
    assert summary.defects[0] == "message: no headers"


def test_empty_input() -> None:
    summary = summarize(b"")
    assert summary.from_ is None
    assert summary.snippet == ""
    assert summary.search_text == ""


def test_search_text_is_bounded() -> None:
    raw = b"Subject: big\r\n\r\n" + b"Word " * 40_000
    summary = summarize(raw)
    assert len(summary.search_text) == SEARCH_TEXT_LIMIT
    assert summary.search_text.startswith("word word")


def test_multiple_address_headers_are_combined() -> None:
    raw = (
        b"To: a@example.com\r\nTo: B <b@example.com>\r\nX-Tags: one\r\nX-Tags: two, three\r\n\r\n."
    )
    summary = summarize(raw)
    assert summary.to == (Address("", "a@example.com"), Address("B", "b@example.com"))
    assert summary.header_tags == ("one", "two", "three")


def test_attachment_only_message_is_part_one() -> None:
    raw = (
        b"Content-Type: application/pdf; name=doc.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
    )
    summary = summarize(raw)
    assert summary.attachments == (
        AttachmentInfo("1", "doc.pdf", "application/pdf", "", 5, inline=False),
    )
    assert summary.snippet == ""


def test_extra_text_parts_outside_alternative_are_appended() -> None:
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsecond\r\n"
        b"--b--\r\n"
    )
    assert summarize(raw).snippet == "first second"


def test_extra_alternatives_are_ignored() -> None:
    raw = (
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nother plain version\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>html version</p>\r\n"
        b"--b--\r\n"
    )
    summary = summarize(raw)
    assert summary.snippet == "plain version"
    assert summary.attachments == ()


def test_deep_nesting_is_bounded() -> None:
    depth = 60
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    raw = head + b"Content-Type: text/plain\r\n\r\ndeep text" + tail
    summary = summarize(raw)
    assert "message: nested too deeply, ignored" not in summary.defects  # ids name the part
    assert any("nested too deeply" in defect for defect in summary.defects)
    assert summary.snippet == ""
