from __future__ import annotations

import pytest

from .support import Client, make_policy


def in_transaction(client: Client | None = None, params: str = "") -> Client:
    client = client or Client(ehlo=True)
    assert client.codes(f"MAIL FROM:<a@example.com>{params}\r\n".encode()) == ["250 2.1.0"]
    return client


def test_rcpt_before_mail_is_503() -> None:
    assert Client(ehlo=True).codes(b"RCPT TO:<b@example.org>\r\n") == ["503 5.5.1"]
    assert Client().codes(b"RCPT TO:<b@example.org>\r\n") == ["503 5.5.1"]


def test_recipients_accumulate_in_order() -> None:
    client = in_transaction()
    assert client.replies(b"RCPT TO:<b@example.org>\r\n") == [
        "250 2.1.5 Recipient <b@example.org> ok"
    ]
    assert client.codes(b"rcpt to: <c@example.org>\r\n") == ["250 2.1.5"]
    envelope = client.session.envelope
    assert envelope is not None
    assert envelope.recipients == ("b@example.org", "c@example.org")
    assert envelope.rcpt_params == ({}, {})


@pytest.mark.parametrize("name", ["postmaster", "Postmaster", "POSTMASTER"])
def test_bare_postmaster_is_allowed(name: str) -> None:
    client = in_transaction()
    assert client.codes(f"RCPT TO:<{name}>\r\n".encode()) == ["250 2.1.5"]
    assert client.session.envelope is not None
    assert client.session.envelope.recipients == (name,)


def test_source_route_is_stripped() -> None:
    client = in_transaction()
    assert client.codes(b"RCPT TO:<@hop.example:b@example.org>\r\n") == ["250 2.1.5"]
    assert client.session.envelope is not None
    assert client.session.envelope.recipients == ("b@example.org",)


@pytest.mark.parametrize(
    "arg",
    ["TO:<>", "TO:b@example.org", "TO:<b@>", "TO:<b>", "TO:<b@@example.org>", "TO:<b c@d.e>"],
)
def test_bad_recipient_syntax_is_501_5_1_3(arg: str) -> None:
    client = in_transaction()
    assert client.codes(f"RCPT {arg}\r\n".encode()) == ["501 5.1.3"]
    assert client.session.envelope is not None
    assert client.session.envelope.recipients == ()


@pytest.mark.parametrize("arg", ["", "TO", "FROM:<b@example.org>"])
def test_missing_to_is_501_5_5_4(arg: str) -> None:
    assert in_transaction().codes(f"RCPT {arg}\r\n".encode()) == ["501 5.5.4"]


@pytest.mark.parametrize(
    ("param", "stored"),
    [
        ("NOTIFY=NEVER", {"NOTIFY": "NEVER"}),
        ("notify=success,delay", {"NOTIFY": "SUCCESS,DELAY"}),
        ("NOTIFY=FAILURE", {"NOTIFY": "FAILURE"}),
        ("ORCPT=rfc822;b+40example.org", {"ORCPT": "rfc822;b+40example.org"}),
        (
            "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org",
            {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;b@example.org"},
        ),
    ],
)
def test_dsn_parameters_are_stored(param: str, stored: dict[str, str]) -> None:
    client = in_transaction()
    assert client.codes(f"RCPT TO:<b@example.org> {param}\r\n".encode()) == ["250 2.1.5"]
    assert client.session.envelope is not None
    assert client.session.envelope.rcpt_params == (stored,)


@pytest.mark.parametrize(
    "param",
    [
        "NOTIFY=NEVER,SUCCESS",
        "NOTIFY=SOMETIMES",
        "NOTIFY=SUCCESS,SUCCESS",
        "NOTIFY=",
        "NOTIFY=SUCCESS,",
        "ORCPT=rfc822",
        "ORCPT=rfc822;",
        "ORCPT=;b@example.org",
        "ORCPT=rfc822;b+zz",
        "ORCPT=rfc822;" + "x" * 500,
    ],
)
def test_bad_dsn_values_are_501(param: str) -> None:
    client = in_transaction()
    assert client.codes(f"RCPT TO:<b@example.org> {param}\r\n".encode()) == ["501 5.5.4"]


def test_unknown_rcpt_parameter_is_555() -> None:
    client = in_transaction()
    assert client.codes(b"RCPT TO:<b@example.org> SIZE=10\r\n") == ["555 5.5.4"]
    assert client.codes(b"RCPT TO:<b@example.org> XFOO\r\n") == ["555 5.5.4"]


def test_non_ascii_recipient_needs_smtputf8_on_mail() -> None:
    line = "RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>\r\n".encode()
    assert in_transaction().codes(line) == ["553 5.6.7"]
    assert in_transaction(params=" SMTPUTF8").codes(line) == ["250 2.1.5"]


def test_utf8_orcpt_is_allowed_with_smtputf8() -> None:
    client = in_transaction(params=" SMTPUTF8")
    line = "RCPT TO:<b@example.org> ORCPT=utf-8;jöran@example.org\r\n".encode()
    assert client.codes(line) == ["250 2.1.5"]


def test_too_many_recipients_is_452_and_not_an_error() -> None:
    client = in_transaction(Client(make_policy(max_recipients=2, max_errors=2), ehlo=True))
    assert client.codes(b"RCPT TO:<1@example.org>\r\nRCPT TO:<2@example.org>\r\n") == [
        "250 2.1.5",
        "250 2.1.5",
    ]
    for _ in range(3):
        assert client.replies(b"RCPT TO:<3@example.org>\r\n") == ["452 4.5.3 Too many recipients"]
    assert client.session.errors == 0
    assert not client.session.closed
    assert client.session.envelope is not None
    assert len(client.session.envelope.recipients) == 2
