from __future__ import annotations

import pytest

from postroom.core.errors import NotFound
from postroom.core.types import AttachmentInfo
from postroom.mime.view import (
    ListUnsubscribe,
    canonical_header_name,
    get_part,
    html_to_text,
    parse_list_unsubscribe,
    parse_message,
)
from tests.unit.mime.support import fixture


def test_alternative_bodies_and_headers() -> None:
    view = parse_message(fixture("alternative.eml"))
    assert view.text.startswith("This week: three stories about mail servers.\r\n")
    assert view.html.startswith("<!DOCTYPE html>")
    assert "<script>" in view.html  # the view returns the HTML as sent; sanitising is the UI's job
    assert view.attachments == ()
    assert view.inline == ()
    assert view.headers[0] == ("From", "Newsletter <news@letters.example>")
    assert [name for name, _ in view.headers] == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    ]
    assert view.header_map["Message-Id"] == ["<digest-2025-01@letters.example>"]
    assert view.header_map["Mime-Version"] == ["1.0"]
    assert view.summary.subject == "Weekly digest"
    assert view.list_unsubscribe == ListUnsubscribe("", "", (), "")


def test_header_values_are_decoded_and_repeated_headers_grouped() -> None:
    view = parse_message(fixture("plain.eml"))
    assert view.header_map["Subject"] == ["Your order № 1042 has shipped"]
    received = view.header_map["Received"]
    assert len(received) == 1
    assert "\n" not in received[0] and received[0].startswith("from mail.shop.example")
    raw = b"Received: one\r\nX-A: 1\r\nReceived: two\r\n\r\nbody"
    grouped = parse_message(raw)
    assert grouped.header_map["Received"] == ["one", "two"]
    assert grouped.headers == (("Received", "one"), ("X-A", "1"), ("Received", "two"))


def test_inline_and_attachments_split() -> None:
    view = parse_message(fixture("nested.eml"))
    assert view.text.startswith("Spring catalogue: see the attached PDF for prices.")
    assert '<img src="cid:banner@brand.example">' in view.html
    assert view.inline == (
        AttachmentInfo("1.2.2", "banner.png", "image/png", "banner@brand.example", 69, True),
    )
    assert view.attachments == (
        AttachmentInfo("2", "catalogue.pdf", "application/pdf", "", 77, False),
    )


def test_charset_bodies_are_decoded() -> None:
    assert parse_message(fixture("koi8r.eml")).text == "Привет, Мир!\r\nВстреча в пятницу.\r\n"
    assert parse_message(fixture("shift-jis.eml")).text.startswith("来週の会議は")
    assert "Café öffnet" in parse_message(fixture("latin1.eml")).text


def test_defects_are_reported() -> None:
    view = parse_message(fixture("malformed-base64.eml"))
    assert "2: invalid base64 data" in view.defects
    assert parse_message(fixture("alternative.eml")).defects == ()


def test_list_unsubscribe_one_click() -> None:
    view = parse_message(fixture("list-unsubscribe.eml"))
    assert view.list_unsubscribe == ListUnsubscribe(
        header=(
            "<mailto:unsubscribe@promo.example?subject=unsubscribe>, "
            "<https://promo.example/unsubscribe?u=991&t=abc>"
        ),
        header_post="List-Unsubscribe=One-Click",
        links=(
            "mailto:unsubscribe@promo.example?subject=unsubscribe",
            "https://promo.example/unsubscribe?u=991&t=abc",
        ),
        errors="",
    )


@pytest.mark.parametrize(
    ("header", "post", "links", "error"),
    [
        ("<https://a.example/u>", "", ("https://a.example/u",), ""),
        ("https://a.example/u", "", (), "no link in angle brackets"),
        ("<https://a.example/u> <mailto:u@a.example>", "", None, "separated by commas"),
        ("<ftp://a.example/u>", "", (), "neither a mailto: nor an http(s) link"),
        ("<mailto:nobody>", "", (), "not a valid mailto: link"),
        ("<https://a.example/u x>", "", (), "must not contain spaces"),
        ("<https:///nohost>", "", (), "not a valid http(s) link"),
        ("<mailto:u@a.example>", "List-Unsubscribe=One-Click", None, "needs an https link"),
        ("<https://a.example/u>", "One-Click", None, 'must be "List-Unsubscribe=One-Click"'),
        ("", "List-Unsubscribe=One-Click", (), "there is no List-Unsubscribe header"),
        (
            "<https://a.example/1>, <https://a.example/2>, <mailto:x@a.example>",
            "",
            ("https://a.example/1", "mailto:x@a.example"),
            "",
        ),
    ],
)
def test_parse_list_unsubscribe(
    header: str, post: str, links: tuple[str, ...] | None, error: str
) -> None:
    result = parse_list_unsubscribe(header, post)
    if links is not None:
        assert result.links == links
    if error:
        assert error in result.errors
    else:
        assert result.errors == ""


def test_canonical_header_name() -> None:
    assert canonical_header_name("message-id") == "Message-Id"
    assert canonical_header_name("X-MAILER") == "X-Mailer"
    assert canonical_header_name("DKIM-Signature") == "Dkim-Signature"
    assert canonical_header_name("Bad Name") == "Bad Name"


def test_get_part_attachment_bytes() -> None:
    raw = fixture("attachments-encoded-names.eml")
    pdf = get_part(raw, "2")
    assert pdf.content_type == "application/pdf"
    assert pdf.filename == "résumé für Müller.pdf"
    assert pdf.data.startswith(b"%PDF-1.4\n") and len(pdf.data) == 77
    csv = get_part(raw, "3")
    assert csv.content_type == "text/csv; charset=utf-8"
    assert csv.data == b"month,total\r\njan,10"  # the CRLF before a boundary is not data


def test_get_part_inline_image_in_nested_tree() -> None:
    image = get_part(fixture("nested.eml"), "1.2.2")
    assert image.content_type == "image/png"
    assert image.data.startswith(b"\x89PNG\r\n\x1a\n")


def test_get_part_attached_message() -> None:
    part = get_part(fixture("forwarded-rfc822.eml"), "2")
    assert part.content_type == "message/rfc822"
    assert part.filename == "Meeting notes.eml"
    assert part.data.startswith(b"From: Carol <carol@example.org>\r\n")
    assert part.data.rstrip().endswith(b"Notes: ship on Monday.")
    assert parse_message(part.data).summary.subject == "Meeting notes"


def test_get_part_of_single_part_message() -> None:
    part = get_part(fixture("latin1.eml"), "1")
    assert part.content_type == "text/plain; charset=iso-8859-1"
    assert part.data.startswith("Grüße".encode("iso-8859-1"))


@pytest.mark.parametrize("part_id", ["0", "9", "1.1", "2.1", "", "a", "1..2", "-1", "١"])
def test_get_part_unknown_ids(part_id: str) -> None:
    with pytest.raises(NotFound):
        get_part(fixture("forwarded-rfc822.eml"), part_id)


def test_get_part_on_garbage_is_not_found() -> None:
    with pytest.raises(NotFound):
        get_part(b"\x00\xff garbage", "3")


def test_html_to_text() -> None:
    html = (
        "<html><head><title>Hidden title</title><style>p {color: red}</style></head><body>"
        "<h1>Welcome&nbsp;back</h1><p>Line   one<br>Line two</p>"
        "<script>document.write('x')</script><ul><li>A &amp; B</li><li>&lt;C&gt;</li></ul>"
        "</body></html>"
    )
    assert html_to_text(html) == "Welcome back\n\nLine one\nLine two\n\nA & B\n\n<C>"


def test_html_to_text_unclosed_style_in_head_does_not_hide_body() -> None:
    assert html_to_text("<head><title>x</head><body><p>shown</p></body>") == "shown"
    assert html_to_text("") == ""
    assert html_to_text("<![if !mso]><p>odd</p><![endif]><!-- c -->") == "odd"


def test_attached_multipart_message_round_trips() -> None:
    inner = fixture("nested.eml")
    raw = (
        b'Subject: outer\r\nContent-Type: multipart/mixed; boundary="o"\r\n\r\n'
        b"--o\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--o\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--o--\r\n"
    )
    view = parse_message(raw)
    assert [(a.part_id, a.filename) for a in view.attachments] == [("2", "Spring catalogue.eml")]
    again = parse_message(get_part(raw, "2").data)
    assert again.summary == parse_message(inner).summary


def test_delivery_status_part_is_listed_with_its_fields() -> None:
    raw = (
        b"Subject: Undelivered\r\nContent-Type: multipart/report; report-type=delivery-status; "
        b'boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"\r\n--r--\r\n"
    )
    view = parse_message(raw)
    assert view.text.startswith("Delivery failed.")
    (status,) = view.attachments
    assert (status.part_id, status.content_type, status.filename) == (
        "2",
        "message/delivery-status",
        "",
    )
    data = get_part(raw, "2").data
    assert b"Reporting-MTA: dns; mx.example.net\r\n" in data
    assert b"Status: 5.1.1\r\n" in data


def test_html_to_text_limit_stops_early_but_keeps_the_start() -> None:
    html = "<p>start</p>" + "<div>filler text</div>" * 20_000 + "<p>the end</p>"
    full = html_to_text(html)
    assert full.endswith("the end")
    limited = html_to_text(html, limit=1000)
    assert limited.startswith("start\n\nfiller text")
    assert 1000 <= len(limited) < len(full) // 10
    # A tag cut by a chunk boundary is still parsed as a tag.
    split = "x" * (16 * 1024 - 3) + "<script>hidden()</script>shown"
    assert html_to_text(split) == "x" * (16 * 1024 - 3) + "shown"


def test_html_charset_from_meta_when_the_header_has_none() -> None:
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
    raw = b"Content-Type: text/html\r\n\r\n" + (html + "<p>Привет</p>").encode("windows-1251")
    assert "<p>Привет</p>" in parse_message(raw).html
    declared = b"Content-Type: text/html; charset=koi8-r\r\n\r\n" + (
        '<meta charset="windows-1251"><p>Привет</p>'.encode("koi8-r")
    )
    assert "<p>Привет</p>" in parse_message(declared).html  # the header wins


def test_html_to_text_can_show_link_addresses() -> None:
    from postroom.mime.htmltext import html_to_text

    html = (
        '<p><a href="https://x.test/c?t=1&amp;u=2">Confirm</a> '
        '<a href="https://y.test">https://y.test</a> <a href="javascript:alert(1)">bad</a> '
        '<a href="mailto:a@b.test">a@b.test</a> <a href="mailto:c@d.test">write</a></p>'
    )
    assert html_to_text(html) == "Confirm https://y.test bad a@b.test write"
    assert html_to_text(html, links=True) == (
        "Confirm ( https://x.test/c?t=1&u=2 ) https://y.test bad a@b.test write ( mailto:c@d.test )"
    )
