from __future__ import annotations

import pytest

from .support import Client, make_policy


def mail(line: str, client: Client | None = None) -> list[str]:
    client = client or Client(ehlo=True)
    return client.codes(f"MAIL {line}\r\n".encode())


def test_mail_accepts_a_sender() -> None:
    client = Client(ehlo=True)
    assert client.replies(b"MAIL FROM:<a@example.com>\r\n") == [
        "250 2.1.0 Sender <a@example.com> ok"
    ]
    envelope = client.session.envelope
    assert envelope is not None
    assert envelope.mail_from == "a@example.com"
    assert envelope.recipients == ()


@pytest.mark.parametrize(
    "line",
    [
        "from:<a@example.com>",
        "FROM: <a@example.com>",
        "FROM:   <a@example.com>",
        "From:<a@example.com>   ",
    ],
)
def test_mail_is_lenient_with_case_and_spaces(line: str) -> None:
    assert mail(line) == ["250 2.1.0"]


def test_null_sender_is_allowed() -> None:
    client = Client(ehlo=True)
    assert client.codes(b"MAIL FROM:<>\r\n") == ["250 2.1.0"]
    assert client.session.envelope is not None
    assert client.session.envelope.mail_from == ""


def test_source_route_is_stripped() -> None:
    client = Client(ehlo=True)
    assert client.codes(b"MAIL FROM:<@relay.one,@relay.two:user@example.com>\r\n") == ["250 2.1.0"]
    assert client.session.envelope is not None
    assert client.session.envelope.mail_from == "user@example.com"


@pytest.mark.parametrize(
    "address",
    [
        '"john doe"@example.com',
        '"a>b"@example.com',
        '"quoted\\"quote"@example.com',
        "user+tag@example.com",
        "first.last@sub.example.co.uk",
        "a@[192.0.2.1]",
        "a@[IPv6:2001:db8::1]",
        "a@localhost",
        "o'brien@example.com",
    ],
)
def test_valid_sender_syntax(address: str) -> None:
    client = Client(ehlo=True)
    assert client.codes(f"MAIL FROM:<{address}>\r\n".encode()) == ["250 2.1.0"]
    assert client.session.envelope is not None
    assert client.session.envelope.mail_from == address


@pytest.mark.parametrize(
    "line",
    [
        "FROM:a@example.com",
        "FROM:<a@example.com",
        "FROM:<a@>",
        "FROM:<@example.com>",
        "FROM:<a>",
        "FROM:<a b@example.com>",
        "FROM:<a..b@example.com>",
        "FROM:<.a@example.com>",
        "FROM:<a@example..com>",
        "FROM:<a@-example.com>",
        "FROM:<a@example.com.>",
        "FROM:<a@exa_mple.com>",
        "FROM:<a@[300.1.1.1]>",
        "FROM:<a@[IPv6:zz::1]>",
        "FROM:<a@[192.0.2.1>",
        "FROM:<a@example.com>junk",
        'FROM:<"unterminated@example.com>',
        "FROM:<@bad route:a@example.com>",
        "FROM:<@relay.one:>",
        "FROM:<" + "a" * 250 + "@example.com>",
        "FROM:<a@" + "b" * 64 + ".com>",
    ],
)
def test_bad_sender_syntax_is_501_5_1_7(line: str) -> None:
    client = Client(ehlo=True)
    assert mail(line, client) == ["501 5.1.7"]
    assert client.session.envelope is None


@pytest.mark.parametrize("line", ["", "FROM", "TO:<a@example.com>", "FROMx:<a@example.com>"])
def test_missing_from_is_501_5_5_4(line: str) -> None:
    client = Client(ehlo=True)
    assert client.codes(f"MAIL {line}\r\n".encode()) == ["501 5.5.4"]


def test_mail_before_ehlo_is_503() -> None:
    assert Client().codes(b"MAIL FROM:<a@example.com>\r\n") == ["503 5.5.1"]


def test_nested_mail_is_503() -> None:
    client = Client(ehlo=True)
    client.start_transaction()
    assert client.codes(b"MAIL FROM:<other@example.com>\r\n") == ["503 5.5.1"]
    assert client.session.envelope is not None
    assert client.session.envelope.mail_from == "a@example.com"


def test_non_ascii_sender_needs_smtputf8() -> None:
    client = Client(ehlo=True)
    line = "MAIL FROM:<jöran@exämple.com>\r\n".encode()
    assert client.codes(line) == ["553 5.6.7"]
    line = "MAIL FROM:<jöran@exämple.com> SMTPUTF8\r\n".encode()
    assert client.codes(line) == ["250 2.1.0"]
    envelope = client.session.envelope
    assert envelope is not None
    assert envelope.mail_from == "jöran@exämple.com"
    assert envelope.mail_params == {"SMTPUTF8": ""}


def test_parameters_are_stored_with_upper_case_keys() -> None:
    client = Client(ehlo=True)
    line = b"MAIL FROM:<a@example.com> size=100 body=8bitmime ret=hdrs envid=QQ+2B1 auth=<>\r\n"
    assert client.codes(line) == ["250 2.1.0"]
    envelope = client.session.envelope
    assert envelope is not None
    assert envelope.mail_params == {
        "SIZE": "100",
        "BODY": "8BITMIME",
        "RET": "HDRS",
        "ENVID": "QQ+2B1",
        "AUTH": "<>",
    }


@pytest.mark.parametrize("body", ["7BIT", "8BITMIME", "BINARYMIME"])
def test_body_values(body: str) -> None:
    assert mail(f"FROM:<a@example.com> BODY={body.lower()}") == ["250 2.1.0"]


@pytest.mark.parametrize(
    "params",
    [
        "SIZE=abc",
        "SIZE=-1",
        "SIZE=" + "9" * 21,
        "BODY=9BIT",
        "SMTPUTF8=yes",
        "RET=ALL",
        "ENVID=a+zz",
        "ENVID=" + "x" * 101,
        "AUTH=a+g0",
        "SIZE=1 SIZE=2",
        "=5",
        "SIZE=",
        "-X=1",
    ],
)
def test_bad_parameter_values_are_501_5_5_4(params: str) -> None:
    client = Client(ehlo=True)
    assert mail(f"FROM:<a@example.com> {params}", client) == ["501 5.5.4"]
    assert client.session.envelope is None


def test_unknown_parameter_is_555() -> None:
    client = Client(ehlo=True)
    assert mail("FROM:<a@example.com> FOO=bar", client) == ["555 5.5.4"]
    assert mail("FROM:<a@example.com> NOTIFY=NEVER", client) == ["555 5.5.4"]
    assert client.session.envelope is None


def test_declared_size_over_limit_is_552() -> None:
    client = Client(make_policy(max_message_size=1000), ehlo=True)
    assert mail("FROM:<a@example.com> SIZE=1001", client) == ["552 5.3.4"]
    assert client.session.errors == 0
    assert mail("FROM:<a@example.com> SIZE=1000", client) == ["250 2.1.0"]


def test_tls_required_before_mail() -> None:
    policy = make_policy(tls_required=True, starttls_available=True)
    client = Client(policy, ehlo=True)
    assert client.replies(b"MAIL FROM:<a@example.com>\r\n") == [
        "530 5.7.0 Must issue a STARTTLS command first"
    ]
    assert mail("FROM:<a@example.com>", Client(policy, tls=True, ehlo=True)) == ["250 2.1.0"]


def test_auth_required_before_mail() -> None:
    policy = make_policy(auth_required=True, auth_without_tls=True)
    client = Client(policy, ehlo=True)
    assert client.replies(b"MAIL FROM:<a@example.com>\r\n") == ["530 5.7.0 Authentication required"]
    client.feed(b"AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n")
    client.session.auth_result("bob")
    assert mail("FROM:<a@example.com>", client) == ["250 2.1.0"]
