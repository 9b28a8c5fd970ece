from __future__ import annotations

from postroom.smtp.protocol import Reply

from .support import Client, make_policy

BASE_KEYWORDS = [
    "PIPELINING",
    "SIZE 41943040",
    "8BITMIME",
    "SMTPUTF8",
    "CHUNKING",
    "BINARYMIME",
    "ENHANCEDSTATUSCODES",
    "DSN",
]


def ehlo_lines(client: Client, name: str = "client.test") -> list[str]:
    replies = client.replies(f"EHLO {name}\r\n".encode())
    assert len(replies) == 1
    lines = replies[0].split("\n")
    assert all(line.startswith("250-") for line in lines[:-1])
    assert lines[-1].startswith("250 ")
    return [line[4:] for line in lines]


def test_greeting_names_the_host() -> None:
    client = Client()
    assert client.greeting == [Reply(b"220 mx.test ESMTP Postroom ready\r\n")]


def test_ehlo_advertises_extensions_in_order() -> None:
    client = Client()
    assert ehlo_lines(client) == ["mx.test Hello client.test", *BASE_KEYWORDS, "HELP"]
    assert client.session.helo == "client.test"
    assert client.session.esmtp is True


def test_ehlo_is_case_insensitive() -> None:
    client = Client()
    assert client.codes(b"ehlo client.test\r\n") == ["250"]


def test_size_shows_the_policy_limit() -> None:
    client = Client(make_policy(max_message_size=1234))
    assert "SIZE 1234" in ehlo_lines(client)


def test_starttls_advertised_only_when_available_and_not_active() -> None:
    assert "STARTTLS" in ehlo_lines(Client(make_policy(starttls_available=True)))
    assert "STARTTLS" not in ehlo_lines(Client(make_policy(starttls_available=True), tls=True))
    assert "STARTTLS" not in ehlo_lines(Client(make_policy(starttls_available=False)))


def test_auth_advertised_when_allowed_now() -> None:
    assert "AUTH PLAIN LOGIN" in ehlo_lines(Client(make_policy(), tls=True))
    assert "AUTH PLAIN LOGIN" in ehlo_lines(Client(make_policy(auth_without_tls=True)))
    assert not any(k.startswith("AUTH") for k in ehlo_lines(Client(make_policy())))
    no_mechs = make_policy(auth_mechanisms=(), auth_without_tls=True)
    assert not any(k.startswith("AUTH") for k in ehlo_lines(Client(no_mechs)))
    assert "AUTH LOGIN" in ehlo_lines(Client(make_policy(auth_mechanisms=("LOGIN",)), tls=True))


def test_auth_not_advertised_once_authenticated() -> None:
    client = Client(make_policy(auth_without_tls=True), ehlo=True)
    client.feed(b"AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n")
    assert client.codes(outputs=client.session.auth_result("bob")) == ["235 2.7.0"]
    assert not any(k.startswith("AUTH") for k in ehlo_lines(client))


def test_ehlo_accepts_an_address_literal() -> None:
    client = Client()
    assert ehlo_lines(client, "[192.0.2.1]")[0] == "mx.test Hello [192.0.2.1]"


def test_ehlo_without_argument_is_501() -> None:
    client = Client()
    assert client.codes(b"EHLO\r\n") == ["501 5.5.4"]
    assert client.codes(b"EHLO   \r\n") == ["501 5.5.4"]
    assert client.session.helo == ""


def test_ehlo_with_two_arguments_is_501() -> None:
    client = Client()
    assert client.codes(b"EHLO my host\r\n") == ["501 5.5.4"]


def test_ehlo_resets_the_transaction() -> None:
    client = Client(ehlo=True)
    client.start_transaction()
    assert client.session.envelope is not None
    assert client.codes(b"EHLO again.test\r\n") == ["250"]
    assert client.session.envelope is None
    assert client.codes(b"RCPT TO:<x@example.org>\r\n") == ["503 5.5.1"]
    assert client.session.helo == "again.test"
