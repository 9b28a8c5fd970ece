from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from postroom.api.send import build_message
from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput


def test_builds_envelope_and_crlf_message() -> None:
    envelope, data = build_message(
        {
            "From": {"Email": "a@example.com", "Name": "Ä Sender"},
            "To": [{"Email": "b@example.com"}],
            "Bcc": ["c@example.com"],
            "Subject": "Grüße",
            "Text": "line one\nline two",
        },
        FakeClock(),
        "postroom.test",
    )
    assert envelope.mail_from == "a@example.com"
    assert envelope.recipients == ("b@example.com", "c@example.com")
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    parsed = message_from_bytes(data, policy=policy.default)
    assert parsed["Subject"] == "Grüße"
    assert parsed["Bcc"] is None
    assert parsed["Message-ID"].endswith("@postroom.test>")


def test_utf8_address_uses_smtputf8() -> None:
    envelope, data = build_message(
        {"From": {"Email": "jörg@exämple.com"}, "To": [{"Email": "b@example.com"}]},
        FakeClock(),
        "h",
    )
    assert "SMTPUTF8" in envelope.mail_params
    assert "jörg@exämple.com".encode() in data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"From": "a@b.c", "To": []}, "From"),
        ({"From": {"Email": "a@b.c"}, "To": "x@y.z"}, "To"),
        ({"From": {"Email": "a@b.c"}, "To": [{"Email": "x@y.z"}], "Tags": "t"}, "Tags"),
        (
            {"From": {"Email": "a@b.c"}, "To": [{"Email": "x@y.z"}], "Headers": {"Bad Name": "v"}},
            "Headers",
        ),
        ({"From": {"Email": "a@b.c"}, "Bcc": [1]}, "Bcc"),
        (
            {
                "From": {"Email": "a@b.c"},
                "To": [{"Email": "x@y.z"}],
                "Attachments": [{"Content": "YQ=="}],
            },
            "Attachments[0].Filename",
        ),
        (
            {
                "From": {"Email": "a@b.c"},
                "To": [{"Email": "x@y.z"}],
                "Attachments": [{"Filename": "a", "Content": "YQ==", "ContentType": "bogus"}],
            },
            "Attachments[0].ContentType",
        ),
    ],
)
def test_invalid_bodies_name_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        build_message(body, FakeClock(), "h")
    assert info.value.field == field
